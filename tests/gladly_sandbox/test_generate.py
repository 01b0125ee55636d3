"""The seeded organisation: deterministic, varied, and inside Gladly's rules."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.errors import ApiError
from gladly_sandbox.ids import parse_timestamp
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.store import Organisation

# Three years back from here reach into Twitter's time (the channel closed on 2023-04-20).
NOW = datetime(2025, 6, 1, tzinfo=UTC)
TWITTER_CLOSED = datetime(2023, 4, 20, tzinfo=UTC)
EVER = datetime(2000, 1, 1, tzinfo=UTC)
ALL_TYPES = {
    "CHAT_MESSAGE",
    "EMAIL",
    "SMS",
    "PHONE_CALL",
    "VOICEMAIL",
    "WHATSAPP",
    "TWITTER",
    "FACEBOOK_MESSAGE",
    "INSTAGRAM_DIRECT",
    "CONVERSATION_NOTE",
    "CUSTOMER_ACTIVITY",
    "TOPIC_CHANGE",
    "CONVERSATION_STATUS_CHANGE",
    "VOICE_AI_MESSAGE",
    "TEXT",  # a custom channel message
}


def make_org(**spec: Any) -> Organisation:
    spec.setdefault("now", NOW)
    return Organisation(OrgSpec(**spec), SandboxClock(NOW, frozen=True))


def all_items(org: Organisation) -> list[dict[str, Any]]:
    return list(org.export_items(EVER, NOW + timedelta(days=1)))


def live_customers(org: Organisation) -> list[dict[str, Any]]:
    raws = (org.raw_customer(cid) for cid in org.customer_ids())
    return [r for r in raws if r is not None and r["merged_into"] is None and not r["deleted"]]


@pytest.fixture(scope="module")
def org() -> Organisation:
    """A default-sized organisation (2000 customers) dated so that every type can occur."""
    return make_org()


@pytest.fixture(scope="module")
def items(org: Organisation) -> list[dict[str, Any]]:
    return all_items(org)


def test_same_seed_gives_byte_identical_data() -> None:
    first, second = make_org(customers=150), make_org(customers=150)
    assert json.dumps(all_items(first)) == json.dumps(all_items(second))
    ids = first.customer_ids()
    assert ids == second.customer_ids()
    assert json.dumps([first.raw_customer(c) for c in ids]) == json.dumps(
        [second.raw_customer(c) for c in ids]
    )
    assert json.dumps(first.export_customers(ids)) == json.dumps(second.export_customers(ids))


def test_different_seed_gives_different_data() -> None:
    first, second = make_org(customers=150), make_org(customers=150, seed=43)
    assert set(first.customer_ids()).isdisjoint(second.customer_ids())
    assert json.dumps(all_items(first)) != json.dumps(all_items(second))
    first_names = [c["name"] for c in first.export_customers(first.customer_ids())]
    second_names = [c["name"] for c in second.export_customers(second.customer_ids())]
    assert first_names != second_names


def test_default_now_is_the_clocks_day_at_midnight() -> None:
    clock = SandboxClock(datetime(2025, 3, 4, 15, 30, tzinfo=UTC), frozen=True)
    org = Organisation(OrgSpec(customers=30), clock)
    latest = max(parse_timestamp(i["timestamp"]) for i in all_items(org))
    assert latest < datetime(2025, 3, 4, tzinfo=UTC)


def test_every_content_type_and_variant_is_present(items: list[dict[str, Any]]) -> None:
    types = Counter(i["content"]["type"] for i in items)
    assert set(types) == ALL_TYPES
    chats = [i["content"] for i in items if i["content"]["type"] == "CHAT_MESSAGE"]
    assert {c["messageType"] for c in chats} == {
        "TEXT",
        "QUICK_REPLY_REQUEST",
        "QUICK_REPLY_RESPONSE",
    }
    assert {"SIDEKICK_V2"} <= {
        i["initiator"]["id"] for i in items if i["initiator"]["type"] == "SYSTEM"
    }
    assert {i["initiator"]["type"] for i in items} >= {
        "CUSTOMER",
        "AGENT",
        "SYSTEM",
        "API",
        "AUTOMATION",
    }
    assert any(i["content"].get("attachments") for i in items)
    assert any("sessionId" in i for i in items)
    recordings = [i["content"] for i in items if i["content"].get("recordingStatus") == "AVAILABLE"]
    assert recordings
    for content in recordings:
        assert isinstance(content["recordingDuration"], int)
        assert content["recordingUrl"].startswith("/api/v1/conversation-items/")
        assert content["recordingUrl"].endswith("/media/recording")
    emails = [i["content"] for i in items if i["content"]["type"] == "EMAIL"]
    assert all(e["subject"] and e["from"] and e["to"] for e in emails)
    assert any(e.get("cc") for e in emails)
    assert all(
        "conversationId" not in i for i in items if i["content"]["type"] == "CUSTOMER_ACTIVITY"
    )
    assert all("conversationId" in i for i in items if i["content"]["type"] != "CUSTOMER_ACTIVITY")


def test_older_spec_has_no_2026_fields() -> None:
    items = all_items(make_org(customers=400, newer_spec_fields=False))
    assert "VOICE_AI_MESSAGE" not in {i["content"]["type"] for i in items}
    assert all(i["initiator"]["type"] != "SYSTEM" for i in items)
    assert all("sessionId" not in i and "attachments" not in i["content"] for i in items)
    assert any(i["content"].get("sessionId") for i in items)  # chat content keeps its session


def test_chat_items_carry_session_ids(items: list[dict[str, Any]]) -> None:
    chats = [i for i in items if i["content"]["type"] == "CHAT_MESSAGE"]
    assert chats
    assert all(i["sessionId"] == i["content"]["sessionId"] for i in chats)


def test_quick_reply_response_points_at_its_request(
    org: Organisation, items: list[dict[str, Any]]
) -> None:
    responses = [i for i in items if i["content"].get("messageType") == "QUICK_REPLY_RESPONSE"]
    for response in responses[:20]:
        request = org.get_item(response["content"]["messageData"]["requestMessageId"])
        assert request["content"]["messageType"] == "QUICK_REPLY_REQUEST"
        options = {o["id"] for o in request["content"]["messageData"]["options"]}
        assert response["content"]["messageData"]["selectedOptionId"] in options


def test_at_most_one_non_closed_conversation_per_customer(org: Organisation) -> None:
    statuses = Counter()
    for customer in live_customers(org):
        conversations, _ = org.list_conversations(customer["id"])
        open_ones = [c for c in conversations if c["status"] != "CLOSED"]
        assert len(open_ones) <= 1
        statuses.update(c["status"] for c in conversations)
        for conversation in conversations:
            assert ("closedAt" in conversation) == (conversation["status"] == "CLOSED")
    assert statuses["OPEN"]
    assert statuses["WAITING"]
    assert statuses["CLOSED"]
    counts = org.counts()
    assert statuses["OPEN"] == counts["conversations_open"]
    assert statuses["WAITING"] == counts["conversations_waiting"]


def test_timestamps_stay_inside_the_years_window(
    org: Organisation, items: list[dict[str, Any]]
) -> None:
    start = NOW - timedelta(days=365.25 * 3)
    for item in items:
        assert start <= parse_timestamp(item["timestamp"]) < NOW
    for customer in live_customers(org):
        created = parse_timestamp(customer["createdAt"])
        assert start <= created <= parse_timestamp(customer["updatedAt"]) <= NOW


def test_items_ascend_inside_their_conversation_window(
    org: Organisation, items: list[dict[str, Any]]
) -> None:
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if "conversationId" in item:
            by_conversation[item["conversationId"]].append(item)
    for conversation_id in list(by_conversation)[:600]:
        conversation = org.get_conversation(conversation_id)
        listed, truncated = org.list_items(conversation_id)
        assert not truncated
        times = [parse_timestamp(i["timestamp"]) for i in listed]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        assert times[0] == parse_timestamp(conversation["createdAt"])
        if conversation["status"] == "CLOSED":
            assert times[-1] == parse_timestamp(conversation["closedAt"])
            assert listed[-1]["content"] == {
                "type": "CONVERSATION_STATUS_CHANGE",
                "status": "CLOSED",
            }
        assert sorted(i["id"] for i in listed) == sorted(
            i["id"] for i in by_conversation[conversation_id]
        )


def test_same_item_always_renders_the_same_timestamp(
    org: Organisation, items: list[dict[str, Any]]
) -> None:
    for item in items[::97]:
        assert org.get_item(item["id"]) == item
    fractions = Counter(len(i["timestamp"].rstrip("Z").partition(".")[2]) for i in items)
    assert {0, 1, 2, 3, 5, 6, 8} <= set(fractions)


def test_emails_and_mobile_numbers_are_unique(org: Organisation) -> None:
    emails: Counter[str] = Counter()
    mobiles: Counter[str] = Counter()
    for customer in live_customers(org):
        emails.update(e["normalized"] for e in customer["emails"])
        mobiles.update(p["normalized"] for p in customer["phones"] if p.get("type") == "MOBILE")
        for email in customer["emails"]:
            assert email["normalized"] == email["original"].lower()
            assert email["normalized"].rsplit("@", 1)[1] in {
                "example.com",
                "example.org",
                "example.net",
            }
        for phone in customer["phones"]:
            assert phone["normalized"].startswith("+1")
            assert phone["normalized"][5:9] == "5550"
            assert phone["normalized"][9] == "1"  # 555-01xx: reserved for fiction
    assert emails
    assert max(emails.values()) == 1
    assert mobiles
    assert max(mobiles.values()) == 1


def test_customers_vary_where_policies_filter(org: Organisation) -> None:
    customers = live_customers(org)
    tiers = Counter(c["customAttributes"].get("loyaltyTier") for c in customers)
    assert {"gold", "silver", "bronze"} <= set(tiers)
    legacy = sum(1 for c in customers if "externalCustomerId" in c)
    mapped = sum(1 for c in customers if "externalCustomerIds" in c)
    assert 0.05 < legacy / len(customers) < 0.15
    assert mapped > legacy
    assert any(len(c["emails"]) == 2 for c in customers)
    assert any(not c["phones"] for c in customers)
    assert any(len(c["phones"]) == 2 for c in customers)
    assert any(c["emails"][0]["original"] != c["emails"][0]["normalized"] for c in customers)


def test_merged_ids_answer_moved_with_the_surviving_id(org: Organisation) -> None:
    merged = [r for cid in org.customer_ids() if (r := org.raw_customer(cid)) and r["merged_into"]]
    assert len(merged) == org.counts()["merged_ids"] == round(2000 * 0.005)
    for record in merged:
        with pytest.raises(ApiError) as moved:
            org.get_customer(record["id"])
        assert moved.value.status == 301
        assert moved.value.meta == {"old": record["id"], "new": record["merged_into"]}
        assert org.get_customer(record["merged_into"])["id"] == record["merged_into"]


def test_small_orgs_still_get_a_merged_id() -> None:
    assert make_org(customers=50).counts()["merged_ids"] == 1


def test_twitter_only_before_the_channel_closed(items: list[dict[str, Any]]) -> None:
    tweets = [i for i in items if i["content"]["type"] == "TWITTER"]
    assert tweets
    assert all(parse_timestamp(i["timestamp"]) < TWITTER_CLOSED for i in tweets)


def test_no_twitter_when_the_window_starts_after_it_closed() -> None:
    org = make_org(customers=800, now=datetime(2026, 6, 1, tzinfo=UTC), years=3.0)
    assert org.counts().get("items_by_type:TWITTER", 0) == 0


def test_item_count_scales_with_items_per_customer() -> None:
    small = make_org(customers=1000, items_per_customer=4).counts()["items"]
    large = make_org(customers=1000, items_per_customer=8).counts()["items"]
    assert 3600 < small < 4800
    assert 1.8 < large / small < 2.2


def test_default_org_has_no_truncated_lists(org: Organisation) -> None:
    for customer in live_customers(org)[:300]:
        conversations, truncated = org.list_conversations(customer["id"])
        assert not truncated
        assert len(conversations) <= 100


def test_huge_conversations_and_busy_customers_only_when_asked() -> None:
    org = make_org(customers=60, huge_conversations=2, busy_customers=2)
    sizes = [len(org.list_items(c)[0]) + 0 for c in org.conversation_ids()]
    truncated = [c for c in org.conversation_ids() if org.list_items(c)[1]]
    assert len(truncated) == 2
    assert max(sizes) == 1000
    busy = [c for c in live_customers(org) if org.list_conversations(c["id"])[1]]
    assert len(busy) == 2


def test_export_window_matches_parsed_timestamps(
    org: Organisation, items: list[dict[str, Any]]
) -> None:
    start, end = NOW - timedelta(days=30), NOW - timedelta(days=29)
    window = list(org.export_items(start, end))
    expected = [i for i in items if start <= parse_timestamp(i["timestamp"]) < end]
    assert window == expected
    assert window


def test_directory_lists(org: Organisation) -> None:
    agents, topics, inboxes = org.list_agents(), org.list_topics(), org.list_inboxes()
    assert len(agents) == 25
    assert all(set(a) == {"id", "name", "emailAddress"} for a in agents)
    assert len(topics) == 24
    assert any(t["disabled"] for t in topics)
    assert any("parentId" in t for t in topics)
    topic_ids = {t["id"] for t in topics}
    assert all(t.get("parentId", t["id"]) in topic_ids for t in topics)
    assert [i["name"] for i in inboxes] == [
        "Support",
        "Returns",
        "VIP Support",
        "Billing",
        "Sales",
        "Spanish",
    ]
    assert org.export_agents() == agents
    assert org.export_topics() == topics
