"""Organisation: Gladly's documented rules for customers, conversations and items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.errors import ApiError
from gladly_sandbox.ids import parse_timestamp
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.store import Organisation

NOW = datetime(2025, 6, 1, tzinfo=UTC)
EVER = datetime(2000, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=365)
REDACTABLE = ["CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "VOICEMAIL", "WHATSAPP", "TWITTER"]
NOT_REDACTABLE = [
    "FACEBOOK_MESSAGE",
    "INSTAGRAM_DIRECT",
    "CONVERSATION_NOTE",
    "CUSTOMER_ACTIVITY",
    "TOPIC_CHANGE",
    "CONVERSATION_STATUS_CHANGE",
    "VOICE_AI_MESSAGE",
    "TEXT",
]


def make_org(customers: int = 120, **spec: Any) -> Organisation:
    spec.setdefault("now", NOW)
    return Organisation(OrgSpec(customers=customers, **spec), SandboxClock(NOW, frozen=True))


@pytest.fixture
def org() -> Organisation:
    return make_org()


def error(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call(*args, **kwargs)
    return raised.value


def live(org: Organisation) -> list[dict[str, Any]]:
    raws = (org.raw_customer(cid) for cid in org.customer_ids())
    return [r for r in raws if r and r["merged_into"] is None and not r["deleted"]]


def customer_with_status(org: Organisation, status: str) -> tuple[str, str]:
    """(customer id, conversation id) of a conversation in `status`."""
    for customer in live(org):
        for conversation in org.list_conversations(customer["id"])[0]:
            if conversation["status"] == status:
                return customer["id"], conversation["id"]
    raise AssertionError(f"no {status} conversation")


def closed_customer(org: Organisation) -> str:
    """A customer whose conversations (at least one) are all CLOSED, with a MOBILE phone."""
    for customer in live(org):
        conversations = org.list_conversations(customer["id"])[0]
        mobile = any(p.get("type") == "MOBILE" for p in customer["phones"])
        if conversations and mobile and all(c["status"] == "CLOSED" for c in conversations):
            return str(customer["id"])
    raise AssertionError("no closed customer")


def items_of_type(org: Organisation, content_type: str) -> list[dict[str, Any]]:
    return [i for i in org.export_items(EVER, LATER) if i["content"]["type"] == content_type]


def merged_pair(org: Organisation) -> tuple[str, str]:
    for cid in org.customer_ids():
        raw = org.raw_customer(cid)
        if raw and raw["merged_into"]:
            return cid, raw["merged_into"]
    raise AssertionError("no merged id")


def profile(email: str, mobile: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Test Person", "emails": [{"original": email}], **extra}
    if mobile:
        body["phones"] = [{"original": mobile, "type": "MOBILE"}]
    return body


# --- find ---


def test_find_by_email_is_case_insensitive(org: Organisation) -> None:
    customer = live(org)[0]
    original = customer["emails"][0]["original"]
    for query in (original.upper(), original.lower(), f"  {original}  "):
        assert [c["id"] for c in org.find_customers(email=query)] == [customer["id"]]


def test_find_by_e164_phone_and_legacy_external_id(org: Organisation) -> None:
    with_phone = next(c for c in live(org) if c["phones"] and c["phones"][0]["original"][0] == "(")
    phone = with_phone["phones"][0]
    assert with_phone["id"] in [c["id"] for c in org.find_customers(phone=phone["normalized"])]
    # Only E.164 is matched unless the lenient switch is on.
    assert org.find_customers(phone=phone["original"]) == []
    org.phone_search_exact = False
    assert with_phone["id"] in [c["id"] for c in org.find_customers(phone=phone["original"])]
    legacy = next(c for c in live(org) if "externalCustomerId" in c)
    found = org.find_customers(external_id=legacy["externalCustomerId"])
    assert [c["id"] for c in found] == [legacy["id"]]


def test_external_ids_map_is_searchable_only_with_the_switch(org: Organisation) -> None:
    mapped = next(c for c in live(org) if "externalCustomerIds" in c)
    value = next(iter(mapped["externalCustomerIds"].values()))
    assert org.find_customers(external_id=value) == []
    org.search_external_ids_map = True
    assert mapped["id"] in [c["id"] for c in org.find_customers(external_id=value)]


def test_find_with_no_match_is_an_empty_list(org: Organisation) -> None:
    assert org.find_customers(email="nobody@example.com") == []
    assert org.find_customers(phone="+19995550100") == []


@pytest.mark.parametrize(
    "criteria",
    [{}, {"email": "a@example.com", "phone": "+14155550100"}, {"email": "a@b", "external_id": "x"}],
)
def test_find_needs_exactly_one_criterion(org: Organisation, criteria: dict[str, str]) -> None:
    assert error(org.find_customers, **criteria).status == 400


def test_find_rejects_a_blank_criterion(org: Organisation) -> None:
    problem = error(org.find_customers, email=" ")
    assert (problem.status, problem.code, problem.attr) == (400, "blank", "email")


def test_find_returns_at_most_50_newest_first(org: Organisation) -> None:
    office = "+13125550177"
    created = []
    for n in range(55):
        body = profile(f"shared{n}@example.net")
        body["phones"] = [{"original": office, "type": "OFFICE"}]
        created.append(org.create_customer(body))
        org.clock.advance(timedelta(minutes=1))
    found = org.find_customers(phone=office)
    assert len(found) == 50
    assert [c["id"] for c in found] == list(reversed(created))[:50]
    stamps = [parse_timestamp(c["updatedAt"]) for c in found]
    assert stamps == sorted(stamps, reverse=True)


# --- get / create / update ---


def test_get_customer_shape(org: Organisation) -> None:
    customer = org.get_customer(live(org)[0]["id"])
    assert {"id", "name", "address", "emails", "phones", "customAttributes"} <= set(customer)
    assert {"createdAt", "updatedAt"} <= set(customer)
    assert "deleted" not in customer
    assert "merged_into" not in customer


def test_get_merged_id_is_moved_with_meta(org: Organisation) -> None:
    old, new = merged_pair(org)
    moved = error(org.get_customer, old)
    assert (moved.status, moved.code, moved.attr) == (301, "moved", "customerId")
    assert moved.meta == {"old": old, "new": new}


def test_get_unknown_is_404_with_the_object_quirk(org: Organisation) -> None:
    missing = error(org.get_customer, "Yq3nT0cUQ5mYbX1kR2hH_w")
    assert (missing.status, missing.code, missing.quirk) == (404, "not_exist", "object")
    assert missing.detail == "customer profile [Yq3nT0cUQ5mYbX1kR2hH_w] does not exist"


def test_create_then_get(org: Organisation) -> None:
    body = profile("New.Person@Example.com", "(415) 555-0199", customAttributes={"tier": "x"})
    body["id"] = "my-own-id_1"
    assert org.create_customer(body) == "my-own-id_1"
    customer = org.get_customer("my-own-id_1")
    assert customer["emails"] == [
        {"original": "New.Person@Example.com", "normalized": "new.person@example.com"}
    ]
    assert customer["phones"][0]["normalized"] == "+14155550199"
    assert customer["customAttributes"] == {"tier": "x"}
    assert customer["createdAt"].startswith("2025-06-01T00:00:00")
    generated = org.create_customer(profile("other@example.org"))
    assert len(generated) == 22
    assert org.get_customer(generated)["id"] == generated


def test_create_conflicts_are_409_taken(org: Organisation) -> None:
    existing = org.raw_customer(closed_customer(org))
    assert existing is not None
    taken_id = error(org.create_customer, {**profile("free@example.com"), "id": existing["id"]})
    assert (taken_id.status, taken_id.code, taken_id.attr) == (409, "taken", "id")
    assert taken_id.detail == "customer ID exists"
    email = existing["emails"][0]["original"].upper()
    assert error(org.create_customer, profile(email)).status == 409
    mobile = next(p for p in existing["phones"] if p.get("type") == "MOBILE")
    clash = error(org.create_customer, profile("free2@example.com", mobile["normalized"]))
    assert (clash.status, clash.attr) == (409, "phones")
    shared = profile("free3@example.com")
    shared["phones"] = [{"original": mobile["normalized"], "type": "HOME"}]
    assert org.create_customer(shared)  # only mobiles are unique


@pytest.mark.parametrize(
    "body",
    [
        {"id": "has space"},
        {"id": "x" * 50},
        {"emails": "a@example.com"},
        {"emails": [{"original": ""}]},
        {"phones": [{"original": "12"}]},
        {"phones": [{"original": "+14155550101", "type": "PAGER"}]},
        {"customAttributes": ["a"]},
        {"name": 7},
    ],
)
def test_create_rejects_invalid_bodies(org: Organisation, body: dict[str, Any]) -> None:
    assert error(org.create_customer, body).status == 400


def test_update_is_partial_and_replaces_arrays(org: Organisation) -> None:
    customer_id = closed_customer(org)
    before = org.get_customer(customer_id)
    org.clock.advance(timedelta(hours=1))
    org.update_customer(customer_id, {"name": "Renamed", "customAttributes": {"vip": "yes"}})
    after = org.get_customer(customer_id)
    assert after["name"] == "Renamed"
    assert after["emails"] == before["emails"]
    assert after["customAttributes"] == {**before["customAttributes"], "vip": "yes"}
    assert parse_timestamp(after["updatedAt"]) == NOW + timedelta(hours=1)
    org.update_customer(customer_id, {"emails": [{"original": "only@example.net"}]})
    assert [e["normalized"] for e in org.get_customer(customer_id)["emails"]] == [
        "only@example.net"
    ]
    old_email = before["emails"][0]["normalized"]
    assert org.find_customers(email=old_email) == []
    assert org.find_customers(email="only@example.net")[0]["id"] == customer_id


def test_update_merged_id_is_404_not_301(org: Organisation) -> None:
    old, _ = merged_pair(org)
    assert error(org.update_customer, old, {"name": "x"}).status == 404


def test_update_cannot_take_anothers_email(org: Organisation) -> None:
    first, second = live(org)[:2]
    taken = error(
        org.update_customer,
        first["id"],
        {"emails": [{"original": second["emails"][0]["original"]}]},
    )
    assert (taken.status, taken.code) == (409, "taken")


# --- delete ---


@pytest.mark.parametrize("status", ["OPEN", "WAITING"])
def test_delete_refused_while_a_conversation_is_not_closed(org: Organisation, status: str) -> None:
    customer_id, _ = customer_with_status(org, status)
    refused = error(org.delete_customer, customer_id)
    assert (refused.status, refused.code, refused.attr) == (400, "invalid_state", "conversation")
    assert refused.quirk == "object"
    assert refused.detail == (
        "Unable to delete the profile. Please close any open or waiting conversations."
    )
    assert org.get_customer(customer_id)["id"] == customer_id


def test_delete_removes_profile_conversations_and_items(org: Organisation) -> None:
    customer_id, conversation_id = customer_with_status(org, "WAITING")
    org.update_conversation(conversation_id, {"status": {"value": "CLOSED", "force": True}})
    customer = org.get_customer(customer_id)
    conversation_ids = org.conversation_ids(customer_id)
    theirs = [i for i in org.export_items(EVER, LATER) if i["customerId"] == customer_id]
    assert any(i["content"]["type"] == "CONVERSATION_STATUS_CHANGE" for i in theirs)
    before = org.counts()
    org.delete_customer(customer_id)
    after = org.counts()
    assert after["customers"] == before["customers"] - 1
    assert after["deleted_customers"] == before["deleted_customers"] + 1
    assert after["items"] == before["items"] - len(theirs)
    assert after["conversations_closed"] == before["conversations_closed"] - len(conversation_ids)
    assert error(org.get_customer, customer_id).status == 404
    assert org.find_customers(email=customer["emails"][0]["normalized"]) == []
    assert error(org.list_conversations, customer_id).status == 404
    assert error(org.get_conversation, conversation_ids[0]).status == 404
    assert error(org.list_items, conversation_ids[0]).status == 404
    assert error(org.get_item, theirs[0]["id"]).status == 404
    assert all(i["customerId"] != customer_id for i in org.export_items(EVER, LATER))
    assert org.export_customers([customer_id]) == []
    assert org.raw_customer(customer_id)["deleted"] is True  # type: ignore[index]
    again = error(org.delete_customer, customer_id)
    assert (again.status, again.quirk) == (404, "object")


def test_delete_unknown_is_404(org: Organisation) -> None:
    assert error(org.delete_customer, "Yq3nT0cUQ5mYbX1kR2hH_w").status == 404


def test_merged_delete_status_switch(org: Organisation) -> None:
    old, new = merged_pair(org)
    assert error(org.delete_customer, old).status == 404
    org.merged_delete_status = 301
    moved = error(org.delete_customer, old)
    assert (moved.status, moved.meta) == (301, {"old": old, "new": new})
    for conversation_id in org.conversation_ids(new):
        org.update_conversation(conversation_id, {"status": {"value": "CLOSED", "force": True}})
    org.merged_delete_status = 204
    org.delete_customer(old)
    assert error(org.get_customer, new).status == 404
    assert error(org.get_customer, old).status == 404  # a merged id dies with its survivor


def test_contact_again_makes_a_new_profile_with_one_open_conversation(org: Organisation) -> None:
    customer_id = closed_customer(org)
    before = org.get_customer(customer_id)
    org.contact_again = True
    org.clock.advance(timedelta(days=2))
    org.delete_customer(customer_id)
    new_id = org.raw_customer(customer_id)["recontacted_as"]  # type: ignore[index]
    assert new_id
    assert new_id != customer_id
    assert error(org.get_customer, customer_id).status == 404
    fresh = org.get_customer(new_id)
    assert fresh["emails"] == before["emails"]
    assert fresh["phones"] == before["phones"]
    for field in ("name", "address", "customAttributes"):
        assert fresh[field] == before[field]
    email = before["emails"][0]["normalized"]
    assert [c["id"] for c in org.find_customers(email=email)] == [new_id]
    conversations, _ = org.list_conversations(new_id)
    assert [c["status"] for c in conversations] == ["OPEN"]
    items, _ = org.list_items(conversations[0]["id"])
    assert len(items) == 1
    assert items[0]["initiator"] == {"id": new_id, "type": "CUSTOMER"}
    when = parse_timestamp(items[0]["timestamp"])
    assert timedelta(0) <= NOW + timedelta(days=2) - when < timedelta(seconds=1)
    assert error(org.delete_customer, new_id).code == "invalid_state"


# --- conversations ---


def test_list_conversations_is_ascending_and_capped_at_100() -> None:
    org = make_org(customers=40, busy_customers=1)
    busy = next(c for c in live(org) if len(org.conversation_ids(c["id"])) > 100)
    listed, truncated = org.list_conversations(busy["id"])
    assert truncated
    assert len(listed) == 100
    created = [parse_timestamp(c["createdAt"]) for c in listed]
    assert created == sorted(created)
    assert [c["id"] for c in listed] == org.conversation_ids(busy["id"])[:100]
    org.conversation_list_keeps = "newest"
    newest, _ = org.list_conversations(busy["id"])
    assert [c["id"] for c in newest] == org.conversation_ids(busy["id"])[-100:]


def test_list_conversations_of_a_merged_id_is_moved(org: Organisation) -> None:
    old, _ = merged_pair(org)
    assert error(org.list_conversations, old).status == 301


def test_close_without_force_when_open_appends_a_status_change(org: Organisation) -> None:
    org.clock.advance(timedelta(hours=3))
    _, conversation_id = customer_with_status(org, "OPEN")
    count_before = len(org.list_items(conversation_id)[0])
    org.update_conversation(conversation_id, {"status": {"value": "CLOSED"}})
    conversation = org.get_conversation(conversation_id)
    assert conversation["status"] == "CLOSED"
    items, _ = org.list_items(conversation_id)
    assert len(items) == count_before + 1
    last = items[-1]
    assert last["content"] == {"type": "CONVERSATION_STATUS_CHANGE", "status": "CLOSED"}
    assert parse_timestamp(last["timestamp"]) == parse_timestamp(conversation["closedAt"])
    assert parse_timestamp(last["timestamp"]) <= NOW + timedelta(hours=3)
    assert last in list(org.export_items(NOW, LATER))


def test_close_waiting_needs_force(org: Organisation) -> None:
    _, conversation_id = customer_with_status(org, "WAITING")
    refused = error(org.update_conversation, conversation_id, {"status": {"value": "CLOSED"}})
    assert (refused.status, refused.code, refused.quirk) == (400, "invalid_state", None)
    assert refused.detail == (
        "cannot close conversation, customer waiting for response, "
        "set 'status.force' to true to override"
    )
    org.update_conversation(conversation_id, {"status": {"value": "CLOSED", "force": True}})
    assert org.get_conversation(conversation_id)["status"] == "CLOSED"


def test_force_rule_is_switchable(org: Organisation) -> None:
    org.force_required_statuses = {"OPEN", "WAITING"}
    _, conversation_id = customer_with_status(org, "OPEN")
    assert (
        error(org.update_conversation, conversation_id, {"status": {"value": "CLOSED"}}).status
        == 400
    )


def test_closing_a_closed_conversation_is_a_no_op(org: Organisation) -> None:
    _, conversation_id = customer_with_status(org, "CLOSED")
    before = org.list_items(conversation_id)[0], org.get_conversation(conversation_id)
    org.update_conversation(conversation_id, {"status": {"value": "CLOSED"}})
    assert (org.list_items(conversation_id)[0], org.get_conversation(conversation_id)) == before


def test_topics_required_to_close(org: Organisation) -> None:
    org.topics_required_to_close = True
    for customer in live(org):
        for conversation in org.list_conversations(customer["id"])[0]:
            if conversation["status"] != "CLOSED" and not conversation["topicIds"]:
                body = {"status": {"value": "CLOSED", "force": True}}
                problem = error(org.update_conversation, conversation["id"], body)
                assert problem.detail == "topics are required before closing of conversation"
                return
    pytest.fail("the seeded org should have an open conversation without topics")


def test_reopen_respects_one_open_conversation(org: Organisation) -> None:
    histories = [org.list_conversations(customer["id"])[0] for customer in live(org)]
    closed = next(
        c
        for listed in histories
        if any(c["status"] != "CLOSED" for c in listed)
        for c in listed
        if c["status"] == "CLOSED"
    )
    assert error(org.update_conversation, closed["id"], {"status": {"value": "OPEN"}}).status == 400
    lone = closed_customer(org)
    target = org.conversation_ids(lone)[0]
    org.update_conversation(target, {"status": {"value": "OPEN"}})
    reopened = org.get_conversation(target)
    assert reopened["status"] == "OPEN"
    assert "closedAt" not in reopened
    assert org.list_items(target)[0][-1]["content"]["status"] == "OPEN"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "CLOSED"},
        {"status": {"value": "DONE"}},
        {"status": {"value": "CLOSED", "force": "yes"}},
    ],
)
def test_update_conversation_rejects_bad_bodies(org: Organisation, body: dict[str, Any]) -> None:
    _, conversation_id = customer_with_status(org, "OPEN")
    assert error(org.update_conversation, conversation_id, body).status == 400


def test_reassign_and_unknown_conversation(org: Organisation) -> None:
    _, conversation_id = customer_with_status(org, "OPEN")
    inbox = org.list_inboxes()[3]["id"]
    agent = org.list_agents()[0]["id"]
    org.update_conversation(conversation_id, {"assignee": {"inboxId": inbox, "agentId": agent}})
    assert (
        org.get_conversation(conversation_id)["inboxId"],
        org.get_conversation(conversation_id)["agentId"],
    ) == (inbox, agent)
    bad = error(org.update_conversation, conversation_id, {"assignee": {"inboxId": "nope"}})
    assert bad.attr == "assignee.inboxId"
    missing = error(
        org.update_conversation, "Yq3nT0cUQ5mYbX1kR2hH_w", {"status": {"value": "CLOSED"}}
    )
    assert (missing.status, missing.code, missing.quirk) == (404, "not_exist", None)
    absent = error(org.get_conversation, "Yq3nT0cUQ5mYbX1kR2hH_w")
    assert (absent.status, absent.quirk) == (404, "empty")


# --- items ---


def test_list_items_is_capped_at_1000() -> None:
    org = make_org(customers=30, huge_conversations=1)
    huge = next(c for c in org.conversation_ids() if org.list_items(c)[1])
    items, truncated = org.list_items(huge)
    assert truncated
    assert len(items) == 1000
    times = [parse_timestamp(i["timestamp"]) for i in items]
    assert times == sorted(times)
    org.item_list_keeps = "newest"
    newest, _ = org.list_items(huge)
    assert newest[-1]["content"]["type"] == "CONVERSATION_STATUS_CHANGE"
    assert newest[0]["id"] != items[0]["id"]


def test_list_items_filters_by_session(org: Organisation) -> None:
    for conversation_id in org.conversation_ids():
        items, _ = org.list_items(conversation_id)
        sessions = {i["sessionId"] for i in items if "sessionId" in i}
        if len(sessions) > 1:
            for session in sessions:
                filtered, _ = org.list_items(conversation_id, session_id=session)
                assert filtered
                assert all(i["sessionId"] == session for i in filtered)
                assert len(filtered) < len(items)
            return
    pytest.fail("no chat conversation with two sessions")


def test_unknown_item_is_404_empty(org: Organisation) -> None:
    for call in (
        org.get_item,
        org.redact_item,
        org.delete_item,
        org.voice_transcript,
        org.recording,
    ):
        missing = error(call, "Yq3nT0cUQ5mYbX1kR2hH_w")
        assert (missing.status, missing.quirk) == (404, "empty")


@pytest.mark.parametrize("content_type", REDACTABLE)
def test_redact_removes_content_and_keeps_the_item(content_type: str) -> None:
    org = make_org(customers=300)
    candidates = items_of_type(org, content_type)
    item = next((i for i in candidates if i["content"].get("attachments")), candidates[0])
    if content_type in ("PHONE_CALL", "VOICEMAIL"):
        item = next(i for i in candidates if i["content"].get("recordingStatus") == "AVAILABLE")
    org.redact_item(item["id"])
    after = org.get_item(item["id"])
    assert {k: v for k, v in after.items() if k != "content"} == {
        k: v for k, v in item.items() if k != "content"
    }
    content, original = after["content"], item["content"]
    assert content["type"] == original["type"]
    for key in ("content", "subject", "body"):
        if key in original:
            assert content[key] == ""
    if "attachments" in original:
        assert content["attachments"] == []
    assert "messageData" not in content
    if content_type in ("PHONE_CALL", "VOICEMAIL"):
        assert "recordingUrl" not in content
        assert "recordingDuration" not in content
        assert content["recordingStatus"] == "DELETED"
        assert content["recordingSummary"] == {"status": "REDACTED"}
    for key in ("from", "to", "startedAt", "sessionId"):
        if key in original:
            assert content[key] == original[key]
    exported = [i for i in org.export_items(EVER, LATER) if i["id"] == item["id"]]
    assert exported == [after]
    assert org.counts()["items_redacted"] == 1
    org.redact_item(item["id"])  # idempotent
    assert org.get_item(item["id"]) == after
    assert org.counts()["items_redacted"] == 1


@pytest.mark.parametrize("content_type", NOT_REDACTABLE)
def test_redact_refuses_other_types(content_type: str) -> None:
    org = make_org(customers=300)
    item = items_of_type(org, content_type)[0]
    refused = error(org.redact_item, item["id"])
    assert (refused.status, refused.code) == (400, "invalid")
    assert org.get_item(item["id"]) == item


def test_delete_item_only_customer_activity(org: Organisation) -> None:
    activity = items_of_type(org, "CUSTOMER_ACTIVITY")[0]
    chat = items_of_type(org, "CHAT_MESSAGE")[0]
    refused = error(org.delete_item, chat["id"])
    assert (refused.status, refused.code) == (400, "invalid")
    other = next(c["id"] for c in live(org) if c["id"] != activity["customerId"])
    assert error(org.delete_item, activity["id"], customer_id=other).status == 404
    before = org.counts()["items_by_type:CUSTOMER_ACTIVITY"]
    org.delete_item(activity["id"], customer_id=activity["customerId"])
    assert org.counts()["items_by_type:CUSTOMER_ACTIVITY"] == before - 1
    assert error(org.get_item, activity["id"]).status == 404
    assert all(i["id"] != activity["id"] for i in org.export_items(EVER, LATER))
    assert error(org.delete_item, activity["id"]).status == 404
    second = items_of_type(org, "CUSTOMER_ACTIVITY")[0]
    org.delete_item(second["id"])
    assert error(org.get_item, second["id"]).status == 404


def test_voice_transcript_and_recording_until_redacted(org: Organisation) -> None:
    calls = [
        i
        for i in items_of_type(org, "PHONE_CALL")
        if i["content"].get("recordingStatus") == "AVAILABLE"
    ]
    with_transcript = None
    for call in calls:
        try:
            with_transcript = (call, org.voice_transcript(call["id"]))
            break
        except ApiError:
            continue
    assert with_transcript is not None
    call, transcript = with_transcript
    assert transcript["paragraphs"]
    assert transcript["customerId"] == call["customerId"]
    assert transcript["numberOfSpeakers"] == 2
    audio = org.recording(call["id"])
    assert audio.startswith(b"ID3")
    assert b"\xff\xfb" in audio
    org.redact_item(call["id"])
    assert error(org.voice_transcript, call["id"]).status == 404
    assert error(org.recording, call["id"]).status == 404
    note = items_of_type(org, "CONVERSATION_NOTE")[0]
    assert error(org.voice_transcript, note["id"]).status == 404


def test_counts_match_what_the_api_shows(org: Organisation) -> None:
    counts = org.counts()
    items = list(org.export_items(EVER, LATER))
    assert counts["items"] == len(items)
    for content_type in {i["content"]["type"] for i in items}:
        expected = sum(1 for i in items if i["content"]["type"] == content_type)
        assert counts[f"items_by_type:{content_type}"] == expected
    assert counts["customers"] == len(live(org)) == 120
    statuses = [c["status"] for cust in live(org) for c in org.list_conversations(cust["id"])[0]]
    assert counts["conversations_open"] == statuses.count("OPEN")
    assert counts["conversations_closed"] == statuses.count("CLOSED")


def test_export_customers_is_flattened(org: Organisation) -> None:
    customer = next(c for c in live(org) if c["phones"])
    line = org.export_customers([customer["id"], "Yq3nT0cUQ5mYbX1kR2hH_w"])
    assert len(line) == 1
    assert line[0]["emailAddresses"] == [e["original"] for e in customer["emails"]]
    assert line[0]["phoneNumbers"] == [p["normalized"] for p in customer["phones"]]
    assert set(line[0]) <= {
        "id", "name", "address", "emailAddresses", "phoneNumbers",
        "externalCustomerId", "externalCustomerIds",
    }  # fmt: skip


def test_earliest_activity_is_the_oldest_live_item(org: Organisation) -> None:
    first = next(iter(org.export_items(EVER, LATER)))
    assert org.earliest_activity() == parse_timestamp(first["timestamp"])
