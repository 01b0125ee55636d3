"""evaluate(): each filter and action, holds, limits, disabled policies, determinism."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from gladly_archive.keyed import keyed_hash
from retention_policies.evaluate import evaluate
from retention_policies.model import Limits
from retention_policies.plan import Plan
from tests.retention_policies._builders import (
    KEY,
    NOW,
    conversation,
    customer,
    item,
    policy,
    registry,
    tables,
)


def _t():  # type: ignore[no-untyped-def]
    return tables(
        [
            customer(
                "c-old",
                2000,
                emails=["old@example.com"],
                phones=["+1555"],
                custom_attributes=json.dumps({"loyaltyTier": "none", "score": 5}),
            ),
            customer("c-new", 10, custom_attributes=json.dumps({"loyaltyTier": "gold"})),
            # a fetched profile without attributes: "{}" (None would be never fetched)
            customer("c-open", 1500, has_open_conversation=True, custom_attributes="{}"),
        ],
        [
            conversation(
                "v-old",
                "c-old",
                900,
                inbox_id="inbox-vip",
                topic_ids=["t-bill"],
                channels=["EMAIL", "CONVERSATION_NOTE"],
            ),
            conversation("v-new", "c-new", 5, channels=["SMS"]),
            conversation("v-open", "c-open", None, channels=["CHAT_MESSAGE"]),
        ],
        [
            item("i1", "v-old", "c-old", 900, "EMAIL", has_attachments=True),
            item("i2", "v-old", "c-old", 901, "CONVERSATION_NOTE"),
            item("i3", None, "c-old", 2000, "CUSTOMER_ACTIVITY"),
            item("i4", "v-new", "c-new", 600, "SMS"),
            item("i5", "v-new", "c-new", 5, "SMS"),
            item("i6", "v-open", "c-open", 1500, "PHONE_CALL", recording_status="AVAILABLE"),
        ],
        inboxes=[{"id": "inbox-vip", "name": "VIP Support"}],
        topics=[{"id": "t-bill", "name": "Billing"}],
    )


def _ids(plan: Plan, kind: str | None = None) -> list[str]:
    rows = plan.targets.to_pylist()
    return sorted(r["target_id"] for r in rows if kind is None or r["target_type"] == kind)


def _run(resource: str, filters: list[dict[str, object]], holds=None, **kw: object) -> Plan:  # type: ignore[no-untyped-def]
    return evaluate([policy(resource, filters, **kw)], _t(), holds, NOW)


@pytest.mark.parametrize(
    ("resource", "flt", "expected"),
    [
        (
            "customer",
            {"type": "age", "field": "last_activity", "older_than": "P3Y"},
            ["c-old", "c-open"],
        ),
        ("customer", {"type": "age", "field": "last_activity", "newer_than": 30}, ["c-new"]),
        (
            "customer",
            {"type": "custom_attribute", "key": "loyaltyTier", "op": "eq", "value": "none"},
            ["c-old"],
        ),
        (
            "customer",
            {"type": "custom_attribute", "key": "loyaltyTier", "op": "missing"},
            ["c-open"],
        ),
        (
            "customer",
            {"type": "custom_attribute", "key": "score", "op": "gt", "value": 4},
            ["c-old"],
        ),
        (
            "customer",
            {"type": "value", "field": "has_open_conversation", "op": "eq", "value": True},
            ["c-open"],
        ),
        ("conversation", {"type": "inbox", "in": ["VIP Support"]}, ["v-old"]),
        ("conversation", {"type": "inbox", "not_in": ["inbox-vip"]}, ["v-new", "v-open"]),
        ("conversation", {"type": "topic", "any_of": ["Billing"]}, ["v-old"]),
        ("conversation", {"type": "topic", "none_of": ["t-bill"]}, ["v-new", "v-open"]),
        ("conversation", {"type": "channel", "in": ["SMS"]}, ["v-new"]),
        ("conversation", {"type": "conversation_status", "in": ["OPEN"]}, ["v-open"]),
        (
            "conversation",
            {"type": "age", "field": "conversation_closed", "older_than": "P2Y"},
            ["v-old"],
        ),
        (
            "item",
            {"type": "channel", "not_in": ["SMS", "CONVERSATION_NOTE", "CUSTOMER_ACTIVITY"]},
            ["i1", "i6"],
        ),
        ("item", {"type": "value", "field": "has_attachments", "op": "eq", "value": True}, ["i1"]),
        ("item", {"type": "value", "field": "recording_status", "op": "exists"}, ["i6"]),
        (
            "item",
            {"type": "age", "field": "item_time", "older_than": "P18M"},
            ["i1", "i2", "i3", "i4", "i6"],
        ),
    ],
)
def test_each_filter_selects_its_rows(
    resource: str, flt: dict[str, object], expected: list[str]
) -> None:
    plan = _run(resource, [flt])
    matched = plan.policies[0]["matched"]
    assert matched == len(expected)
    if resource == "customer":
        assert _ids(plan) == expected
    elif resource == "conversation":
        assert _ids(plan, "conversation") == expected
    else:
        got = {r["target_id"] for r in plan.targets.to_pylist()}
        assert got <= set(expected)


def test_combinations_and_or_not() -> None:
    plan = _run(
        "customer",
        [
            {"type": "age", "field": "last_activity", "older_than": "P3Y"},
            {
                "type": "or",
                "filters": [
                    {"type": "custom_attribute", "key": "loyaltyTier", "op": "eq", "value": "none"},
                    {"type": "custom_attribute", "key": "loyaltyTier", "op": "missing"},
                ],
            },
            {
                "type": "not",
                "filter": {
                    "type": "value",
                    "field": "has_open_conversation",
                    "op": "eq",
                    "value": True,
                },
            },
        ],
    )
    assert _ids(plan) == ["c-old"]


def test_delete_customer_carries_open_flag_and_close_option() -> None:
    plan = _run(
        "customer",
        [{"type": "age", "field": "last_activity", "older_than": "P3Y"}],
        action={"type": "delete_customer", "close_open_conversations": True},
    )
    rows = {r["target_id"]: r for r in plan.targets.to_pylist()}
    assert rows["c-open"]["has_open_conversation"] is True
    assert rows["c-open"]["close_open_conversations"] is True
    assert rows["c-old"]["operation"] == "delete_customer"
    plain = _run("customer", [{"type": "age", "field": "last_activity", "older_than": "P3Y"}])
    rows = {r["target_id"]: r for r in plain.targets.to_pylist()}
    assert rows["c-open"]["erasable"] is False
    assert rows["c-old"]["erasable"] is True


def test_erase_conversation_expands_items_and_lists_not_erasable() -> None:
    plan = _run("conversation", [{"type": "topic", "any_of": ["Billing"]}])
    rows = {(r["target_type"], r["target_id"]): r for r in plan.targets.to_pylist()}
    assert rows[("item", "i1")]["operation"] == "redact"
    assert rows[("item", "i1")]["erasable"]
    note = rows[("item", "i2")]
    assert note["operation"] == "not_erasable_via_api"
    assert note["erasable"] is False
    assert note["content_type"] == "CONVERSATION_NOTE"
    assert rows[("conversation", "v-old")]["operation"] == "not_erasable_via_api"
    assert plan.summary()["not_erasable_via_api"] == 2
    assert json.loads(note["matched_facts_json"])["conversation_id"] == "v-old"


def test_redact_items_scope_and_customer_activity_delete() -> None:
    plan = _run(
        "item",
        [{"type": "age", "field": "item_time", "older_than": "P18M"}],
        action={"type": "redact_items", "content_types": ["EMAIL", "CUSTOMER_ACTIVITY"]},
    )
    ops = {r["target_id"]: r["operation"] for r in plan.targets.to_pylist()}
    # PHONE_CALL i6 is erasable but outside content_types; the note cannot be erased at all.
    assert ops == {"i1": "redact", "i3": "delete", "i2": "not_erasable_via_api"}


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("customer_id", "c-old"),
        ("email_hash", keyed_hash(" OLD@example.com", kind="email", key=KEY)),
        ("phone_hash", keyed_hash("+1 (555)", kind="phone", key=KEY)),
        ("custom_attribute", "loyaltyTier=none"),
        ("conversation_id", "v-old"),
        ("topic", "Billing"),
        ("inbox", "VIP Support"),
    ],
)
def test_every_hold_kind_excludes_the_customer(kind: str, value: str) -> None:
    flt = {"type": "age", "field": "last_activity", "older_than": "P3Y"}
    plan = _run("customer", [flt], holds=registry((kind, value)))
    assert _ids(plan) == ["c-open"]
    held = plan.held.to_pylist()
    assert [h["target_id"] for h in held] == ["c-old"]
    assert held[0]["excluded_by_holds"] == [f"{kind}={value} [LEGAL-0]"]
    assert plan.summary()["excluded_by_holds"] == 1


def test_customer_hold_protects_their_conversations_and_items() -> None:
    holds = registry(("customer_id", "c-old"))
    conv = _run("conversation", [{"type": "channel", "in": ["EMAIL"]}], holds=holds)
    assert "v-old" not in _ids(conv)
    assert "i1" not in _ids(conv)
    items = _run("item", [{"type": "age", "field": "item_time", "older_than": 30}], holds=holds)
    assert not {"i1", "i2", "i3"} & set(_ids(items))
    assert {"i4", "i6"} <= set(_ids(items))


def test_expired_hold_no_longer_applies() -> None:
    holds = registry(("customer_id", "c-old"), ends_on=(NOW - timedelta(days=1)).date())
    plan = _run(
        "customer", [{"type": "age", "field": "last_activity", "older_than": "P3Y"}], holds=holds
    )
    assert _ids(plan) == ["c-old", "c-open"]


@pytest.mark.parametrize("limits", [{"max_targets": 1}, {"max_percent": 50}])
def test_limits_block_the_policy(limits: dict[str, float]) -> None:
    plan = _run(
        "customer", [{"type": "age", "field": "last_activity", "older_than": "P3Y"}], limits=limits
    )
    assert plan.targets.num_rows == 0
    assert plan.policies[0]["status"] == "blocked"
    assert "exceed" in plan.policies[0]["reason"]
    assert plan.summary()["blocked_policies"][0]["name"] == "test-policy"


def test_limits_count_after_holds() -> None:
    plan = _run(
        "customer",
        [{"type": "age", "field": "last_activity", "older_than": "P3Y"}],
        holds=registry(("customer_id", "c-old")),
        limits={"max_targets": 1, "max_percent": 100},
    )
    assert plan.policies[0]["status"] == "planned"
    assert _ids(plan) == ["c-open"]


def test_disabled_policy_is_listed_but_selects_nothing() -> None:
    plan = _run(
        "customer", [{"type": "age", "field": "last_activity", "older_than": 1}], enabled=False
    )
    assert plan.targets.num_rows == 0
    assert plan.policies[0]["status"] == "disabled"


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate([], _t(), None, NOW.replace(tzinfo=None))


def test_determinism_and_hash_sensitivity() -> None:
    flt = [{"type": "age", "field": "last_activity", "older_than": "P3Y"}]
    pol = policy("customer", flt)
    base = evaluate([pol], _t(), registry(("customer_id", "nobody")), NOW)
    again = evaluate([pol], _t(), registry(("customer_id", "nobody")), NOW)
    assert base.hash == again.hash
    assert base.targets.equals(again.targets)
    other_now = evaluate(
        [pol], _t(), registry(("customer_id", "nobody")), NOW + timedelta(seconds=1)
    )
    other_policy = evaluate(
        [policy("customer", flt, limits={"max_targets": 99})],
        _t(),
        registry(("customer_id", "nobody")),
        NOW,
    )
    other_holds = evaluate([pol], _t(), registry(("customer_id", "somebody")), NOW)
    hashes = {base.hash, other_now.hash, other_policy.hash, other_holds.hash}
    assert len(hashes) == 4


def test_a_policy_without_limits_gets_the_default_ones() -> None:
    whole = policy("customer", [{"type": "age", "field": "last_activity", "older_than": 1}])
    bare = whole.model_copy(update={"limits": Limits()})
    plan = evaluate([bare], _t(), None, NOW)
    [outcome] = plan.policies
    assert outcome["status"] == "blocked"
    assert plan.targets.num_rows == 0
    assert (
        "exceed max_percent 10.0 (the default; declare `limits: {max_percent: …}`"
        in (outcome["reason"])
    )
    assert (Limits().max_targets, Limits().max_percent) == (1000, 10.0)


def test_a_null_limit_is_refused_not_read_as_none() -> None:
    with pytest.raises(ValidationError):
        Limits.model_validate({"max_targets": None})
