"""GET /api/v1/events over real HTTP: what each change records, the window, the merge endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from gladly_sandbox import Sandbox
from tests.gladly_sandbox._api import Api

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "seed": 17,
    "customers": 40,
    "now": NOW,
    "frozen_clock": True,
    "open_share": 0.3,
    "merged_customers": 0.05,
    "rate_limit_per_second": 1000,
}
ALL = ["AGENT_AVAILABILITY", "AGENT_STATUS", "CONTACT", "CONVERSATION", "CUSTOMER"]
ALL += ["PAYMENT_REQUEST", "TASK"]
CLOSE = {"status": {"value": "CLOSED", "force": True}}


def _at(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class Org(Api):
    """One sandbox, raw HTTP with the admin's credentials, and the ids the tests need."""

    def events(
        self, entities: list[str] | None = None, since: timedelta = timedelta(hours=1), **query: Any
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "startAt": _at(self.sb.clock.now() - since),
            "entities": ALL if entities is None else entities,
            **query,
        }
        response = self("GET", "/events", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/x-jsonlines"
        text = response.content.decode("utf-8")
        assert text == "" or text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    def live(self, *, open_conversation: bool | None = None) -> list[str]:
        """Live customer ids with conversations; with or without an open one if asked."""
        found = []
        for customer_id in self.sb.org.customer_ids():
            raw = self.sb.org.raw_customer(customer_id) or {}
            if raw.get("merged_into") or raw.get("deleted") or not raw.get("conversationIds"):
                continue
            if open_conversation is None or (self.open_of(customer_id) is not None) == (
                open_conversation
            ):
                found.append(customer_id)
        return found

    def open_of(self, customer_id: str) -> str | None:
        conversations, _ = self.sb.org.list_conversations(customer_id)
        return next((c["id"] for c in conversations if c["status"] != "CLOSED"), None)

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = self("GET", f"/conversations/{conversation_id}")
        assert response.status_code == 200
        data: dict[str, Any] = response.json()
        return data

    def merge(self, body: Any) -> requests.Response:
        return requests.post(f"{self.sb.base_url}/_sandbox/merges", json=body, timeout=10)


def _assignee(conversation: dict[str, Any]) -> dict[str, str]:
    assignee = {"inboxId": conversation["inboxId"]}
    if "agentId" in conversation:
        assignee["agentId"] = conversation["agentId"]
    return assignee


def _ms(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@pytest.fixture
def org() -> Iterator[Org]:
    with Sandbox(**SPEC) as sb:
        yield Org(sb)


# --- the query ------------------------------------------------------------------------------------


def _q(**query: str) -> dict[str, str]:
    return {"startAt": "2025-06-02T11:00:00Z", "entities": "CUSTOMER", **query}


@pytest.mark.parametrize(
    ("query", "attr", "code", "says"),
    [
        ({"entities": "CUSTOMER"}, "startAt", "blank", "startAt"),
        (_q(startAt="yesterday"), "startAt", "invalid", "ISO 8601"),
        (_q(startAt="2025-06-02T11:00:00"), "startAt", "invalid", "offset"),
        (_q(startAt="2025-06-01T11:59:59Z"), "startAt", "invalid", "must be from last 24 hours"),
        (_q(startAt="2025-06-01T12:59:59+01:00"), "startAt", "invalid", "24 hours"),
        ({"startAt": "2025-06-02T11:00:00Z"}, "entities", "blank", "entit"),
        (_q(entities=""), "entities", "blank", "entit"),
        (_q(entities="CUSTOMERS"), "entities", "invalid", "CUSTOMERS"),
        (_q(entities="CUSTOMER,CONVERSATION"), "entities", "invalid", "CUSTOMER,CONVERSATION"),
        (_q(endAt="2025-06-02T10:00:00Z"), "endAt", "invalid", "before"),
        (_q(endAt="soon"), "endAt", "invalid", "ISO"),
    ],
)
def test_bad_queries_are_400(
    org: Org, query: dict[str, str], attr: str, code: str, says: str
) -> None:
    response = org("GET", "/events", params=query)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    (entry,) = response.json()["errors"]
    assert (entry["attr"], entry["code"]) == (attr, code)
    assert says in entry["detail"]


def test_start_exactly_24_hours_back_and_offsets_are_accepted(org: Org) -> None:
    assert org.events(since=timedelta(hours=24)) == []
    body = org(
        "GET", "/events", params={"startAt": "2025-06-02T03:00:00-09:00", "entities": "TASK"}
    )
    assert body.status_code == 200
    assert body.content == b""


# --- conversation events --------------------------------------------------------------------------


def test_close_reopen_and_reassign_record_the_state_before(org: Org) -> None:
    customer = org.live(open_conversation=True)[0]
    conversation_id = org.open_of(customer)
    assert conversation_id is not None
    before = org.conversation(conversation_id)
    inboxes = [i["id"] for i in org.sb.org.list_inboxes()]
    target = next(i for i in inboxes if i != before["inboxId"])
    assert org("PATCH", f"/conversations/{conversation_id}", json=CLOSE).status_code == 204
    org.sb.advance(seconds=30)
    reopen = {"status": {"value": "OPEN"}}
    assert org("PATCH", f"/conversations/{conversation_id}", json=reopen).status_code == 204
    org.sb.advance(seconds=30)
    move = {"assignee": {"inboxId": target}}
    assert org("PATCH", f"/conversations/{conversation_id}", json=move).status_code == 204
    # The same assignee again changes nothing, so it records nothing.
    assert org("PATCH", f"/conversations/{conversation_id}", json=move).status_code == 204

    events = org.events(["CONVERSATION"])
    assert [e["type"] for e in events] == [
        "CONVERSATION/CLOSED",
        "CONVERSATION/REOPENED",
        "CONVERSATION_ASSIGNEE/UPDATED",
    ]
    api = {"id": events[0]["initiator"]["id"], "type": "API"}
    closing = org("GET", f"/conversations/{conversation_id}/items").json()[-2]
    assert closing["content"] == {"type": "CONVERSATION_STATUS_CHANGE", "status": "CLOSED"}
    assert closing["initiator"] == api  # the same integration closed it
    context = {"assignee": _assignee(before)}
    for event in events:
        assert event["initiator"] == api
        assert event["content"]["customerId"] == customer
        assert event["content"]["conversationId"] == conversation_id
        assert len(event["id"]) == 22
    assert events[0]["content"] == {
        "customerId": customer,
        "conversationId": conversation_id,
        "context": context,
    }
    assert events[1]["content"]["context"] == context
    assert events[2]["content"] == {
        "customerId": customer,
        "conversationId": conversation_id,
        "reason": "MANUAL",
        "assignee": {"inboxId": target},
        "context": context,
    }
    assert [e["timestamp"] for e in events] == [
        _ms(NOW),
        _ms(NOW + timedelta(seconds=30)),
        _ms(NOW + timedelta(seconds=60)),
    ]
    assert org.conversation(conversation_id)["inboxId"] == target


def test_events_are_ordered_by_timestamp_then_id(org: Org) -> None:
    customers = org.live(open_conversation=True)[:4]
    for customer in customers:  # all at one frozen instant
        conversation_id = org.open_of(customer)
        assert org("PATCH", f"/conversations/{conversation_id}", json=CLOSE).status_code == 204
    events = org.events()
    assert [e["content"]["customerId"] for e in events] == customers
    assert [(e["timestamp"], e["id"]) for e in events] == sorted(
        (e["timestamp"], e["id"]) for e in events
    )
    assert len({e["id"] for e in events}) == len(events)


def test_contact_again_records_a_new_profile_and_conversation(org: Org) -> None:
    org.sb.configure(contact_again=True)
    customer = org.live(open_conversation=False)[0]
    assert org("DELETE", f"/customer-profiles/{customer}").status_code == 204
    fresh = (org.sb.org.raw_customer(customer) or {})["recontacted_as"]
    (new_conversation,) = org.sb.org.conversation_ids(fresh)
    conversation = org.conversation(new_conversation)
    assert conversation["status"] == "OPEN"
    events = org.events()
    assert [e["type"] for e in events] == [
        "CUSTOMER_PROFILE/DELETED",
        "CUSTOMER_PROFILE/CREATED",
        "CONVERSATION/CREATED",
    ]
    assert events[0]["content"] == {"customerId": customer}
    assert events[1]["content"] == {"customerId": fresh}
    assert events[2]["initiator"] == {"id": fresh, "type": "CUSTOMER"}
    assert events[2]["content"] == {
        "customerId": fresh,
        "conversationId": new_conversation,
        "context": {"assignee": _assignee(conversation)},
    }


# --- customer events ------------------------------------------------------------------------------


def test_profile_create_update_delete(org: Org) -> None:
    body = {"name": "Ada", "emails": [{"original": "ada@x.example"}]}
    created = org("POST", "/customer-profiles", json=body)
    assert created.status_code == 201
    customer = created.headers["Location"].rsplit("/", 1)[1]
    patch = {"customAttributes": {"loyalty": "gold"}}
    assert org("PATCH", f"/customer-profiles/{customer}", json=patch).status_code == 204
    assert org("GET", f"/customer-profiles/{customer}").json()["customAttributes"]["loyalty"] == (
        "gold"
    )
    assert org("DELETE", f"/customer-profiles/{customer}").status_code == 204
    events = org.events(["CUSTOMER"])
    assert [(e["type"], e["content"]) for e in events] == [
        ("CUSTOMER_PROFILE/CREATED", {"customerId": customer}),
        ("CUSTOMER_PROFILE/UPDATED", {"customerId": customer}),
        ("CUSTOMER_PROFILE/DELETED", {"customerId": customer}),
    ]
    assert all(set(e) == {"id", "type", "timestamp", "content"} for e in events)  # no initiator
    # A refused change records nothing.
    assert org("PATCH", f"/customer-profiles/{customer}", json=patch).status_code == 404
    assert len(org.events(["CUSTOMER"])) == 3


def test_profile_events_can_be_left_out_of_the_stream(org: Org) -> None:
    customer = org.live(open_conversation=True)[0]
    org("PATCH", f"/customer-profiles/{customer}", json={"name": "Renamed"})
    org("PATCH", f"/conversations/{org.open_of(customer)}", json=CLOSE)
    assert [e["type"] for e in org.events()] == ["CUSTOMER_PROFILE/UPDATED", "CONVERSATION/CLOSED"]
    org.sb.configure(profile_events_in_stream=False)
    assert [e["type"] for e in org.events()] == ["CONVERSATION/CLOSED"]
    settings = requests.get(f"{org.sb.base_url}/_sandbox/settings", timeout=10).json()
    assert settings["profile_events_in_stream"] is False
    org.sb.configure(profile_events_in_stream=True)
    assert len(org.events()) == 2


def test_entities_filter_the_stream(org: Org) -> None:
    customer = org.live(open_conversation=True)[0]
    org("PATCH", f"/customer-profiles/{customer}", json={"name": "Renamed"})
    org("PATCH", f"/conversations/{org.open_of(customer)}", json=CLOSE)
    both = org.events(["CUSTOMER", "CONVERSATION"])
    assert [e["type"] for e in org.events(["CUSTOMER"])] == ["CUSTOMER_PROFILE/UPDATED"]
    assert [e["type"] for e in org.events(["CONVERSATION"])] == ["CONVERSATION/CLOSED"]
    assert [e["type"] for e in both] == ["CUSTOMER_PROFILE/UPDATED", "CONVERSATION/CLOSED"]
    assert org.events(["AGENT_STATUS", "TASK", "CONTACT"]) == []
    assert org.events(["CUSTOMER", "CUSTOMER"]) == org.events(["CUSTOMER"])


def test_window_is_inclusive_and_events_last_24_hours(org: Org) -> None:
    customer = org.live(open_conversation=True)[0]
    org("PATCH", f"/conversations/{org.open_of(customer)}", json=CLOSE)
    (event,) = org.events()
    stamp = event["timestamp"]
    assert org.events(startAt=stamp, endAt=stamp) == [event]
    later = "2025-06-02T12:00:00.001Z"
    assert org.events(startAt=later, endAt="2025-06-02T13:00:00Z") == []
    future = org("GET", "/events", params={"startAt": later, "entities": "CONVERSATION"})
    assert future.status_code == 400  # endAt defaults to now, before that startAt
    assert org.events(endAt="2025-06-02T11:59:59.999Z") == []
    assert org.sb.org.counts()["events"] == 1
    org.sb.advance(hours=23, minutes=59)
    assert org.events(since=timedelta(hours=24)) == [event]
    org.sb.advance(minutes=2)
    assert org.events(since=timedelta(hours=24)) == []
    assert org.sb.org.counts()["events"] == 0


# --- merges ---------------------------------------------------------------------------------------


def test_merge_two_customers_with_open_conversations(org: Org) -> None:
    source, destination = org.live(open_conversation=True)[:2]
    source_open, destination_open = org.open_of(source), org.open_of(destination)
    assert source_open is not None
    assert destination_open is not None
    source_profile = org("GET", f"/customer-profiles/{source}").json()
    source_conversations = {
        c["id"] for c in org("GET", f"/customers/{source}/conversations").json()
    }
    source_items = org("GET", f"/conversations/{source_open}/items").json()
    destination_items = org("GET", f"/conversations/{destination_open}/items").json()
    counts = org.sb.org.counts()

    merged = org.merge({"source": source, "destination": destination})
    assert merged.status_code == 200
    content = {
        "destinationCustomerId": destination,
        "destinationConversationId": destination_open,
        "sourceCustomerId": source,
        "sourceConversationId": source_open,
    }
    assert merged.json() == content
    (event,) = org.events(["CUSTOMER"])
    assert event["type"] == "CUSTOMER/MERGED"
    assert event["content"] == content
    assert event["initiator"]["type"] == "AGENT"
    assert event["initiator"]["id"] in {a["id"] for a in org.sb.org.list_agents()}
    assert org.events(["CONVERSATION"]) == []

    moved = org("GET", f"/customer-profiles/{source}")
    assert moved.status_code == 301
    assert moved.json()["errors"][0]["meta"] == {"old": source, "new": destination}
    assert org("PATCH", f"/customer-profiles/{source}", json={"name": "x"}).status_code == 404
    assert org("GET", f"/conversations/{source_open}").status_code == 404
    now_theirs = {c["id"] for c in org("GET", f"/customers/{destination}/conversations").json()}
    assert source_conversations - {source_open} <= now_theirs
    combined = org("GET", f"/conversations/{destination_open}/items").json()
    assert sorted(i["id"] for i in combined) == sorted(
        i["id"] for i in source_items + destination_items
    )
    stamps = [datetime.fromisoformat(i["timestamp"]) for i in combined]
    assert stamps == sorted(stamps)
    for item in combined:
        assert item["customerId"] == destination
        assert item["conversationId"] == destination_open
    for before in source_items:  # content stays as written
        after = org("GET", f"/conversation-items/{before['id']}").json()
        assert after["content"] == before["content"]
        assert after["timestamp"] == before["timestamp"]
    emails = {
        e["original"] for e in org("GET", f"/customer-profiles/{destination}").json()["emails"]
    }
    assert {e["original"] for e in source_profile["emails"]} <= emails
    found = org(
        "GET", "/customer-profiles", params={"email": source_profile["emails"][0]["original"]}
    )
    assert [c["id"] for c in found.json()] == [destination]
    after = org.sb.org.counts()
    assert after["customers"] == counts["customers"] - 1
    assert after["merged_ids"] == counts["merged_ids"] + 1
    assert after["items"] == counts["items"]
    statuses = sum(counts[f"conversations_{s}"] for s in ("open", "waiting", "closed"))
    assert sum(after[f"conversations_{s}"] for s in ("open", "waiting", "closed")) == statuses - 1
    # The survivor's conversations can all be closed and the profile deleted as one.
    assert org("PATCH", f"/conversations/{destination_open}", json=CLOSE).status_code == 204
    assert org("DELETE", f"/customer-profiles/{destination}").status_code == 204
    assert org("GET", f"/customer-profiles/{source}").status_code == 404


def test_merge_moves_an_open_conversation_to_a_customer_without_one(org: Org) -> None:
    source = org.live(open_conversation=True)[0]
    destination = org.live(open_conversation=False)[0]
    source_open = org.open_of(source)
    content = org.sb.merge_customers(source, destination)
    assert content == {
        "destinationCustomerId": destination,
        "destinationConversationId": source_open,
        "sourceCustomerId": source,
    }
    conversation = org.conversation(str(source_open))
    assert conversation["customerId"] == destination
    assert org.open_of(destination) == source_open


def test_merge_refuses_unknown_equal_deleted_and_merged_ids(org: Org) -> None:
    first, second, third = org.live(open_conversation=False)[:3]
    assert org("DELETE", f"/customer-profiles/{third}").status_code == 204
    merged_away = next(
        c
        for c in org.sb.org.customer_ids()
        if (org.sb.org.raw_customer(c) or {}).get("merged_into")
    )
    cases = [
        ({"source": "nobody-here", "destination": first}, "source", "no customer profile"),
        ({"source": first, "destination": "nobody-here"}, "destination", "no customer profile"),
        ({"source": first, "destination": first}, "source", "same customer"),
        ({"source": third, "destination": first}, "source", "deleted"),
        ({"source": first, "destination": third}, "destination", "deleted"),
        ({"source": merged_away, "destination": first}, "source", "merged-away"),
        ({"source": first}, "destination", "customer id"),
        ({"source": first, "destination": second, "keep": "x"}, "keep", "unknown field"),
        ({"source": 5, "destination": second}, "source", "customer id"),
    ]
    for body, attr, says in cases:
        response = org.merge(body)
        assert response.status_code == 400, body
        (entry,) = response.json()["errors"]
        assert entry["attr"] == attr, body
        assert says in entry["detail"], body
    bad_json = requests.post(f"{org.sb.base_url}/_sandbox/merges", data=b"{", timeout=10)
    assert bad_json.status_code == 400
    assert requests.get(f"{org.sb.base_url}/_sandbox/merges", timeout=10).status_code == 405
    with pytest.raises(ValueError, match="same customer"):
        org.sb.merge_customers(first, first)
    assert [e["type"] for e in org.events()] == ["CUSTOMER_PROFILE/DELETED"]


def test_merge_in_process_mode() -> None:
    sb = Sandbox(seed=8, customers=12, now=NOW, process=True, rate_limit_per_second=None)
    with sb:
        session = requests.Session()
        session.auth = (sb.user, sb.api_token)
        url = f"{sb.base_url}/api/v1"
        ids: list[str] = []
        for n in range(2):
            created = session.post(f"{url}/customer-profiles", json={"name": f"P{n}"}, timeout=10)
            ids.append(created.headers["Location"].rsplit("/", 1)[1])
        assert sb.merge_customers(ids[0], ids[1]) == {
            "destinationCustomerId": ids[1],
            "sourceCustomerId": ids[0],
        }
        assert session.get(f"{url}/customer-profiles/{ids[0]}", timeout=10).status_code == 301
        with pytest.raises(ValueError, match="merged-away"):
            sb.merge_customers(ids[0], ids[1])
        start = _at(NOW - timedelta(hours=1))  # the running clock started at NOW
        lines = session.get(
            f"{url}/events", params={"startAt": start, "entities": "CUSTOMER"}, timeout=10
        ).text.splitlines()
        assert [json.loads(line)["type"] for line in lines] == [
            "CUSTOMER_PROFILE/CREATED",
            "CUSTOMER_PROFILE/CREATED",
            "CUSTOMER/MERGED",
        ]


# --- stats ----------------------------------------------------------------------------------------


def test_stats_and_faults_see_the_events_route(org: Org) -> None:
    org.sb.reset_stats()
    org.events()
    org.sb.configure(faults={"/events": {"error_rate": 1.0}})
    query = {"startAt": _at(NOW), "entities": "TASK"}
    assert org("GET", "/events", params=query).status_code >= 500
    org.sb.configure(faults={})
    assert org("POST", "/events").status_code == 405
    stats = org.sb.stats()
    assert stats["by_route"]["GET /events"]["200"] == 1
    assert sum(stats["by_route"]["GET /events"].values()) == 2
    assert stats["faults"] == {"error": 1}
