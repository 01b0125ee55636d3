"""Sandbox fidelity: unmodelled calls answer 501; conversation topics; closing; phone types."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from gladly_sandbox import Sandbox
from gladly_sandbox.documented_routes import DOCUMENTED_ROUTES
from gladly_sandbox.route_table import ROUTES, UNMODELLED, match_route
from tests.gladly_sandbox._api import Api

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "seed": 31,
    "customers": 30,
    "now": NOW,
    "frozen_clock": True,
    "open_share": 0.3,
    "rate_limit_per_second": None,
}
ABSENT = "AAAAAAAAAAAAAAAAAAAAAA"
# Every (method, template) Gladly documents that the sandbox has no handler for.
NOT_MODELLED = sorted(
    (method, template)
    for template, methods in DOCUMENTED_ROUTES.items()
    for method in methods
    if not any(r.template == template and method in r.handlers for r in ROUTES)
)


def _filled(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    with Sandbox(**SPEC) as sb:
        yield sb


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A sandbox of its own, for tests that change data."""
    with Sandbox(**SPEC) as fresh:
        yield fresh


# --- routes Gladly documents but the sandbox does not model --------------------------------------


def test_the_calls_the_issue_names_are_not_modelled() -> None:
    for call in [
        ("GET", "/audiences"),
        ("POST", "/tasks"),
        ("GET", "/tasks/{taskId}"),
        ("PATCH", "/tasks/{taskId}"),
        ("POST", "/topics"),
        ("PATCH", "/topics/{topicId}"),
    ]:
        assert call in NOT_MODELLED
    assert ("POST", "/conversations/{conversationId}/topics") not in NOT_MODELLED  # modelled now


@pytest.mark.parametrize(("method", "template"), NOT_MODELLED, ids=" ".join)
def test_every_documented_call_without_a_handler_answers_501_not_modelled(
    shared: Sandbox, method: str, template: str
) -> None:
    answer = Api(shared)(method, _filled(template), json={})
    assert answer.status_code == 501
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "errors": [
            {
                "code": "not_modelled",
                "detail": f"the sandbox does not model {method} /api/v1{template}",
            }
        ]
    }


def test_a_501_still_needs_credentials(shared: Sandbox) -> None:
    anonymous = requests.post(f"{shared.base_url}/api/v1/tasks", json={}, timeout=10)
    assert anonymous.status_code == 401


def test_paths_and_methods_gladly_does_not_document_keep_gladly_s_404_and_405(
    shared: Sandbox,
) -> None:
    api = Api(shared)
    for path in ("/customer-profile", "/tasks/x1/unknown", "/gladly/webhook", "/audiences/x1"):
        missing = api("GET", path)
        assert missing.status_code == 404, path
        assert missing.json()["errors"][0]["code"] == "not_found"
    wrong = api("PUT", "/topics")  # Gladly has GET (modelled) and POST (not) on /topics
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, POST"
    assert api("DELETE", "/tasks/x1").status_code == 405  # Gladly has GET and PATCH only
    assert api("DELETE", f"/conversations/{ABSENT}").status_code == 405


def test_stats_name_an_unmodelled_call_by_its_template(sb: Sandbox) -> None:
    Api(sb)("PATCH", "/tasks/x1", json={})
    assert sb.stats()["by_route"] == {"PATCH /tasks/{taskId}": {"501": 1}}


def test_the_route_table_serves_only_documented_calls_and_no_path_is_ambiguous() -> None:
    for route in ROUTES:
        assert set(route.handlers) <= DOCUMENTED_ROUTES[route.template], route.template
    assert {r.template for r in (*ROUTES, *UNMODELLED)} == set(DOCUMENTED_ROUTES)
    for template in DOCUMENTED_ROUTES:
        matched = match_route(_filled(template))
        assert matched is not None, template
        assert matched[0].template == template


# --- POST /conversations/{id}/topics -------------------------------------------------------------


def _enabled_topics(sb: Sandbox) -> list[str]:
    return [t["id"] for t in sb.org.list_topics() if not t["disabled"]]


def _conversation(sb: Sandbox, status: str, *, topics: bool) -> dict[str, Any]:
    """A conversation that is CLOSED, or not ("OPEN": OPEN or WAITING), with or without topics."""
    for conversation_id in sb.org.conversation_ids():
        conversation = sb.org.get_conversation(conversation_id)
        closed = conversation["status"] == "CLOSED"
        if closed == (status == "CLOSED") and bool(conversation["topicIds"]) == topics:
            return conversation
    raise AssertionError(f"the seeded org has no {status} conversation (topics={topics})")


def _events(api: Api) -> list[dict[str, Any]]:
    params = {"startAt": (NOW - timedelta(hours=1)).isoformat(), "entities": "CONVERSATION"}
    answer = api("GET", "/events", params=params)
    assert answer.status_code == 200
    return [json.loads(line) for line in answer.text.splitlines()]


def test_adding_topics_shows_in_the_conversation_its_timeline_events_and_export(
    sb: Sandbox,
) -> None:
    api = Api(sb)
    conversation = _conversation(sb, "CLOSED", topics=True)
    conversation_id, before = conversation["id"], conversation["topicIds"]
    fresh = [t for t in _enabled_topics(sb) if t not in before][:2]
    items_before = sb.org.list_items(conversation_id)[0]
    answer = api(
        "POST", f"/conversations/{conversation_id}/topics", json={"topicIds": [*fresh, before[0]]}
    )
    assert (answer.status_code, answer.content) == (204, b"")
    assert sb.org.get_conversation(conversation_id)["topicIds"] == [*before, *fresh]
    assert api("GET", f"/conversations/{conversation_id}").json()["topicIds"] == [*before, *fresh]
    items = sb.org.list_items(conversation_id)[0]
    assert items[:-1] == items_before
    change = items[-1]
    assert change["content"] == {"type": "TOPIC_CHANGE", "addedTopicIds": fresh}
    assert change["initiator"]["type"] == "API"
    added = [e for e in _events(api) if e["type"] == "CONVERSATION/TOPIC_ADDED"]
    assert [e["content"]["topicId"] for e in added] == fresh
    assert {e["content"]["conversationId"] for e in added} == {conversation_id}
    exported = sb.org.export_items(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert change in list(exported)


def test_adding_topics_it_already_has_changes_nothing(sb: Sandbox) -> None:
    api = Api(sb)
    conversation = _conversation(sb, "CLOSED", topics=True)
    before = sb.org.list_items(conversation["id"])[0]
    answer = api(
        "POST", f"/conversations/{conversation['id']}/topics", json=conversation["topicIds"][:1]
    )
    assert answer.status_code == 400  # a bare list is not the documented body
    again = {"topicIds": conversation["topicIds"]}
    assert api("POST", f"/conversations/{conversation['id']}/topics", json=again).status_code == 204
    assert sb.org.get_conversation(conversation["id"]) == conversation
    assert sb.org.list_items(conversation["id"])[0] == before
    assert not [e for e in _events(api) if e["type"] == "CONVERSATION/TOPIC_ADDED"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "blank"),
        ({"topicIds": []}, "blank"),
        ({"topicIds": "x"}, "invalid"),
        ({"topicIds": [7]}, "invalid"),
        ({"topicIds": [ABSENT]}, "invalid"),
        ("disabled", "invalid"),
    ],
    ids=["missing", "empty", "string", "number", "unknown-topic", "disabled-topic"],
)
def test_a_bad_topics_body_is_400_on_topic_ids_and_changes_nothing(
    shared: Sandbox, body: Any, code: str
) -> None:
    if body == "disabled":
        disabled = [t["id"] for t in shared.org.list_topics() if t["disabled"]]
        assert disabled, "the seeded org should have a disabled topic"
        body = {"topicIds": [*_enabled_topics(shared)[:1], disabled[0]]}
    conversation = _conversation(shared, "CLOSED", topics=False)
    before = shared.org.list_items(conversation["id"])[0]
    answer = Api(shared)("POST", f"/conversations/{conversation['id']}/topics", json=body)
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert (error["attr"], error["code"]) == ("topicIds", code)
    assert ABSENT not in error["detail"]  # what was sent is never echoed
    assert shared.org.get_conversation(conversation["id"]) == conversation
    assert shared.org.list_items(conversation["id"])[0] == before


def test_topics_on_an_unknown_conversation_are_404(shared: Sandbox) -> None:
    body = {"topicIds": _enabled_topics(shared)[:1]}
    answer = Api(shared)("POST", f"/conversations/{ABSENT}/topics", json=body)
    assert answer.status_code == 404
    assert answer.content == b""  # Gladly documents no body for this 404


# --- closing -------------------------------------------------------------------------------------


def test_topics_required_on_close_is_a_switch_that_topics_added_through_the_api_satisfy(
    sb: Sandbox,
) -> None:
    api = Api(sb)
    conversation = _conversation(sb, "OPEN", topics=False)
    path = f"/conversations/{conversation['id']}"
    close = {"status": {"value": "CLOSED", "force": True}}
    sb.configure(topics_required_to_close=True)
    refused = api("PATCH", path, json=close)
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": [
            {
                "code": "invalid_state",
                "detail": "topics are required before closing of conversation",
            }
        ]
    }
    assert sb.org.get_conversation(conversation["id"])["status"] == conversation["status"]
    topic = _enabled_topics(sb)[0]
    assert api("POST", f"{path}/topics", json={"topicIds": [topic]}).status_code == 204
    assert api("PATCH", path, json=close).status_code == 204
    assert sb.org.get_conversation(conversation["id"])["status"] == "CLOSED"


def test_topics_are_not_required_on_close_by_default(sb: Sandbox) -> None:
    conversation = _conversation(sb, "OPEN", topics=False)
    close = {"status": {"value": "CLOSED", "force": True}}
    assert Api(sb)("PATCH", f"/conversations/{conversation['id']}", json=close).status_code == 204
    assert sb.org.get_conversation(conversation["id"])["status"] == "CLOSED"


def test_closing_a_closed_conversation_with_its_own_assignee_is_accepted_and_changes_nothing(
    sb: Sandbox,
) -> None:
    api = Api(sb)
    conversation = next(
        c
        for c in (sb.org.get_conversation(i) for i in sb.org.conversation_ids())
        if c["status"] == "CLOSED" and c.get("agentId")
    )
    path = f"/conversations/{conversation['id']}"
    items = sb.org.list_items(conversation["id"])[0]
    events = sb.org.counts()["events"]
    same = {"inboxId": conversation["inboxId"], "agentId": conversation["agentId"]}
    body = {"status": {"value": "CLOSED"}, "assignee": same}
    assert api("PATCH", path, json=body).status_code == 204
    assert api("PATCH", path, json={"assignee": same}).status_code == 204
    assert sb.org.get_conversation(conversation["id"]) == conversation
    assert sb.org.list_items(conversation["id"])[0] == items
    assert sb.org.counts()["events"] == events
    # Still refused, as Gladly refuses it: a different assignee, or dropping the agent.
    other = next(a["id"] for a in sb.org.list_agents() if a["id"] != conversation["agentId"])
    for assignee in ({**same, "agentId": other}, {"inboxId": conversation["inboxId"]}):
        refused = api("PATCH", path, json={"status": {"value": "CLOSED"}, "assignee": assignee})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["detail"] == "closed conversation cannot be reassigned"
    assert sb.org.get_conversation(conversation["id"]) == conversation


# --- phones --------------------------------------------------------------------------------------


def _phone_types(sb: Sandbox) -> list[tuple[str, str | None]]:
    api = Api(sb)
    found = []
    for customer_id in sb.org.customer_ids():
        answer = api("GET", f"/customer-profiles/{customer_id}")
        if answer.status_code == 200:
            found += [(p["normalized"], p.get("type")) for p in answer.json()["phones"]]
    return found


def test_phone_numbers_carry_gladly_s_type_deterministically_per_seed(shared: Sandbox) -> None:
    types = _phone_types(shared)
    # Gladly's enum is HOME, MOBILE, OFFICE; a number without `type` is "other".
    assert {kind for _, kind in types} == {"HOME", "MOBILE", "OFFICE", None}
    with Sandbox(**SPEC) as twin:
        assert _phone_types(twin) == types
    with Sandbox(**{**SPEC, "seed": 32}) as other:
        assert _phone_types(other) != types
