"""Contact policies: the model, the contact rule over item rows, and evaluation into targets."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from retention_policies import load_policies
from retention_policies.contact_facts import CONTACT_SOURCE, set_contact_source
from retention_policies.contacts import ContactItem, NotAContactError, contact_of, contacts_in
from retention_policies.evaluate import evaluate
from retention_policies.recheck import LIVE_CONVERSATIONS, LIVE_PROFILE, live_sources
from tests.retention_policies._builders import (
    NOW,
    conversation,
    customer,
    item,
    policy,
    registry,
    tables,
)

# --- the model -------------------------------------------------------------------------------


def test_a_contact_policy_validates_with_its_filters_and_action() -> None:
    p = policy(
        "contact",
        [
            {"type": "channel", "in": ["CHAT_MESSAGE", "PHONE_CALL"]},
            {"type": "age", "field": "contact_last_activity", "older_than": "P1Y"},
            {"type": "inbox", "not_in": ["inbox-vip"]},
            {"type": "conversation_status", "in": ["CLOSED"]},
            {"type": "value", "field": "kind", "op": "eq", "value": "session"},
        ],
    )
    assert p.action.type == "erase_contact"
    assert live_sources(p.filters, "contact") == {LIVE_CONVERSATIONS}
    with_attr = policy("contact", [{"type": "custom_attribute", "key": "tier", "op": "exists"}])
    assert live_sources(with_attr.filters, "contact") == {LIVE_PROFILE}


@pytest.mark.parametrize(
    ("resource", "filters", "action", "needle"),
    [
        ("conversation", [{"type": "channel", "in": ["SMS"]}], "erase_contact", "erase_contact"),
        ("contact", [{"type": "channel", "in": ["SMS"]}], "redact_items", "redact_items"),
        (
            "contact",
            [{"type": "age", "field": "item_time", "older_than": 30}],
            "erase_contact",
            "item_time",
        ),
        (
            "contact",
            [{"type": "value", "field": "content_type", "op": "eq", "value": "SMS"}],
            "erase_contact",
            "content_type",
        ),
    ],
)
def test_what_does_not_fit_a_contact_is_refused(
    resource: str, filters: list[dict[str, Any]], action: str, needle: str
) -> None:
    with pytest.raises(ValidationError, match=needle):
        policy(resource, filters, action={"type": action})


# --- the contact rule over rows -----------------------------------------------------------------


def _row(iid: str, ctype: str, minute: int, session: str | None = None, end: int | None = None):
    start = NOW + timedelta(minutes=minute)
    ended = NOW + timedelta(minutes=end) if end is not None else None
    return ContactItem(iid, ctype, start, session, ended)


def test_every_item_of_a_conversation_falls_into_its_contacts_by_the_one_rule() -> None:
    items = [
        _row("c1", "CHAT_MESSAGE", 0, "sessA"),
        _row("n1", "CONVERSATION_NOTE", 1),
        _row("c2", "CHAT_MESSAGE", 2, "sessA"),
        _row("call", "PHONE_CALL", 3, end=6),
        _row("t1", "TOPIC_CHANGE", 5),
        _row("s1", "SMS", 8),
        _row("n2", "CONVERSATION_NOTE", 9),
        _row("s2", "SMS", 10),
        _row("e1", "EMAIL", 11),
        _row("s3", "SMS", 12),
    ]
    found = {g.contact_id: g for g in contacts_in(list(reversed(items)))}
    assert {k: (g.kind, [m.item_id for m in g.members]) for k, g in found.items()} == {
        "sessA": ("session", ["c1", "n1", "c2"]),
        "call": ("call", ["call", "t1"]),
        "s1": ("exchange", ["s1", "n2", "s2"]),
        "e1": ("exchange", ["e1"]),
        "s3": ("exchange", ["s3"]),
    }
    for group in found.values():  # the partition and the lookup are the same rule
        assert contact_of(items, group.contact_id) == group
    assert contact_of(items, "s2") == found["s1"]  # any message names its exchange
    assert contact_of(items, "nothing") is None
    with pytest.raises(NotAContactError, match="CONVERSATION_NOTE"):
        contact_of(items, "n1")


# --- evaluation -----------------------------------------------------------------------------------


def _source(rows: list[dict[str, Any]]) -> pa.Table:
    full = [
        {
            "conversation_id": r["conversation_id"],
            "customer_id": r["customer_id"],
            "item_id": r["item_id"],
            "content_type": r["content_type"],
            "timestamp": r["timestamp"],
            "session_id": r.get("session_id"),
            "call_completed_at": r.get("call_completed_at"),
        }
        for r in rows
    ]
    return pa.Table.from_pylist(full, schema=CONTACT_SOURCE)


def _world() -> tuple[Any, list[dict[str, Any]]]:
    rows = [
        # c1/v1: an old chat session with a note inside, then a recent call.
        item("chat-1", "v1", "c1", 400, "CHAT_MESSAGE", session_id="sess-old"),
        item("note-1", "v1", "c1", 399.5, "CONVERSATION_NOTE"),
        item("chat-2", "v1", "c1", 399, "CHAT_MESSAGE", session_id="sess-old"),
        item("call-1", "v1", "c1", 10, "PHONE_CALL"),
        # c2/v2 (the VIP inbox): an old SMS exchange.
        item("sms-1", "v2", "c2", 500, "SMS"),
        item("sms-2", "v2", "c2", 499, "SMS"),
        # c3/v3: an old email exchange with a customer activity inside it.
        item("mail-1", "v3", "c3", 450, "EMAIL"),
        item("act-1", "v3", "c3", 449, "CUSTOMER_ACTIVITY"),
        item("mail-2", "v3", "c3", 448, "EMAIL"),
    ]
    t = tables(
        [customer("c1", 10), customer("c2", 499), customer("c3", 448)],
        [
            conversation("v1", "c1", 9),
            conversation("v2", "c2", 490, inbox_id="inbox-vip"),
            conversation("v3", "c3", 440),
        ],
        rows,
        inboxes=[{"id": "inbox-vip", "name": "VIP"}, {"id": "inbox-1", "name": "Support"}],
    )
    set_contact_source(t, _source(rows))
    return t, rows


OLD = {"type": "age", "field": "contact_last_activity", "older_than": 300}


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(row["matched_facts_json"]))


def test_old_contacts_outside_vip_become_one_target_per_item() -> None:
    t, _ = _world()
    p = policy("contact", [OLD, {"type": "inbox", "not_in": ["VIP"]}], name="erase-old-contacts")
    plan = evaluate([p], t, None, NOW)
    got = {
        r["target_id"]: (r["operation"], _facts(r)["contact"], r["conversation_id"])
        for r in plan.targets.to_pylist()
    }
    assert got == {
        "chat-1": ("redact", "sess-old", "v1"),
        "note-1": ("not_erasable_via_api", "sess-old", "v1"),
        "chat-2": ("redact", "sess-old", "v1"),
        "mail-1": ("redact", "mail-1", "v3"),
        "act-1": ("delete", "mail-1", "v3"),
        "mail-2": ("redact", "mail-1", "v3"),
    }
    assert {r["target_type"] for r in plan.targets.to_pylist()} == {"item"}
    assert _facts(plan.targets.to_pylist()[0])["contact_kind"] in ("session", "exchange")
    outcome = plan.policies[0]
    # Contacts: the session, the call, the SMS and the email exchanges.
    assert (outcome["population"], outcome["matched"], outcome["eligible"]) == (4, 2, 2)
    summary = {p["name"]: p for p in plan.summary()["policies"]}["erase-old-contacts"]
    assert (summary["targets"], summary["subjects"]) == (6, 2)
    assert summary["samples"] == ["mail-1", "sess-old"]


def test_channel_selects_contacts_by_what_makes_them_up() -> None:
    t, _ = _world()
    p = policy("contact", [{"type": "channel", "in": ["SMS", "PHONE_CALL"]}])
    plan = evaluate([p], t, None, NOW)
    assert {r["target_id"] for r in plan.targets.to_pylist()} == {"sms-1", "sms-2", "call-1"}


def test_a_hold_on_the_conversation_or_customer_keeps_its_contacts_out() -> None:
    t, _ = _world()
    holds = registry(("conversation_id", "v3"), ("customer_id", "c1"))
    plan = evaluate([policy("contact", [OLD])], t, holds, NOW)
    assert {r["target_id"] for r in plan.targets.to_pylist()} == {"sms-1", "sms-2"}
    held = {r["target_id"] for r in plan.held.to_pylist()}
    assert held == {"chat-1", "note-1", "chat-2", "mail-1", "act-1", "mail-2"}
    assert all(r["excluded_by_holds"] for r in plan.held.to_pylist())
    assert plan.policies[0]["held"] == 2


def test_limits_count_contacts() -> None:
    t, _ = _world()
    p = policy("contact", [OLD], limits={"max_targets": 2})
    plan = evaluate([p], t, None, NOW)
    assert plan.policies[0]["status"] == "blocked"
    assert "3 targets exceed max_targets 2" in plan.policies[0]["reason"]
    assert plan.targets.num_rows == 0


def test_an_unknown_inbox_blocks_the_contact_policy() -> None:
    t, _ = _world()
    t.con.execute("UPDATE conversations SET inbox_id = NULL WHERE conversation_id = 'v3'")
    p = policy("contact", [OLD, {"type": "inbox", "not_in": ["VIP"]}])
    plan = evaluate([p], t, None, NOW)
    assert plan.policies[0]["status"] == "blocked"
    assert "never fetched for 1" in plan.policies[0]["reason"]
    assert plan.targets.num_rows == 0


def test_the_readme_contact_policy_validates(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    [text] = [b for b in blocks if "resource: contact\n" in b]
    path = tmp_path / "contact.yaml"
    path.write_text(text)
    [loaded] = load_policies(path)
    assert (loaded.resource, loaded.action.type) == ("contact", "erase_contact")
