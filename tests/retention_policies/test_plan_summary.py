"""The plan summary an approver reads: per-policy counts, holds and samples; lines and markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from retention_policies.evaluate import evaluate
from retention_policies.plan import TARGET_SCHEMA, Plan, PlanIntegrityError
from retention_policies.plan_summary import summary_lines, summary_markdown
from tests.retention_policies._builders import (
    NOW,
    conversation,
    customer,
    item,
    policy,
    registry,
    tables,
)

REASON = (
    "3 of 4 items (75.00%) exceed max_percent 10. Declare `limits: {max_percent: …}` in the "
    "policy to allow more."
)


def _row(
    policy_name: str,
    target_type: str,
    target_id: str,
    *,
    conversation_id: str | None = None,
    operation: str = "redact",
    labels: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {name: None for name in TARGET_SCHEMA.names} | {
        "policy_name": policy_name,
        "policy_hash": "a" * 64,
        "target_type": target_type,
        "target_id": target_id,
        "customer_id": target_id if target_type == "customer" else "c1",
        "conversation_id": conversation_id,
        "action": "x",
        "operation": operation,
        "erasable": operation != "not_erasable_via_api",
        "excluded_by_holds": list(labels),
    }


def _outcome(name: str, resource: str, status: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version_hash": "a" * 64,
        "resource": resource,
        "action": {"customer": "delete_customer", "conversation": "erase_conversation"}.get(
            resource, "redact_items"
        ),
        "enabled": status != "disabled",
        "status": status,
        "reason": None,
        "population": 10,
        "matched": 0,
        "held": 0,
        "eligible": 0,
    } | kw


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    # Two chunks, rows out of order: the summary must not depend on either.
    half = len(rows) // 2
    return pa.concat_tables(
        [
            pa.Table.from_pylist(rows[:half], schema=TARGET_SCHEMA),
            pa.Table.from_pylist(rows[half:], schema=TARGET_SCHEMA),
        ]
    )


VIP = "inbox=VIP Support [LEGAL-2]"
CUSTOMER_HOLD = "customer_id=c4 [LEGAL-1]"
TOPIC = "topic=t9 [LEGAL-3]"


def _hand_built() -> Plan:
    customers = ["c7", "c3", "c9", "c1", "c5", "c2", "c8"]
    targets = [_row("a-customers", "customer", c, operation="delete_customer") for c in customers]
    targets += [
        _row("b-conversations", "item", "i21", conversation_id="v2"),
        _row("b-conversations", "conversation", "v2", conversation_id="v2",
             operation="not_erasable_via_api"),
        _row("b-conversations", "item", "i11", conversation_id="v1"),
        _row("b-conversations", "item", "i22", conversation_id="v2"),
        _row("b-conversations", "conversation", "v1", conversation_id="v1",
             operation="not_erasable_via_api"),
        _row("e-items", "item", "i5", conversation_id="v5"),
        _row("e-items", "item", "i4", conversation_id="v5"),
    ]  # fmt: skip
    held = [
        # c4 is under two holds: it counts under both.
        _row("a-customers", "customer", "c4", operation="delete_customer",
             labels=(CUSTOMER_HOLD, VIP)),
        _row("a-customers", "customer", "c6", operation="delete_customer", labels=(VIP,)),
        # One conversation held twice over (its record and an item): one conversation held.
        _row("b-conversations", "conversation", "v3", conversation_id="v3",
             operation="not_erasable_via_api", labels=(TOPIC,)),
        _row("b-conversations", "item", "i31", conversation_id="v3", labels=(TOPIC,)),
        _row("c-blocked", "item", "i9", conversation_id="v9", labels=(VIP,)),
    ]  # fmt: skip
    policies = [
        _outcome("e-items", "item", "planned", matched=2, eligible=2),
        _outcome("d-disabled", "customer", "disabled"),
        _outcome("c-blocked", "item", "blocked", reason=REASON, matched=4, held=1, eligible=3),
        _outcome("b-conversations", "conversation", "planned", matched=3, held=1, eligible=2),
        _outcome("a-customers", "customer", "planned", matched=9, held=2, eligible=7),
    ]
    return Plan(
        now=NOW,
        targets=_table(targets),
        held=_table(held),
        policies=policies,
        holds_hash="b" * 64,
    )


def test_each_policy_gets_its_counts_holds_and_samples() -> None:
    by_name = {p["name"]: p for p in _hand_built().summary()["policies"]}
    assert list(by_name) == ["a-customers", "b-conversations", "c-blocked", "d-disabled", "e-items"]
    assert by_name["a-customers"] == {
        "name": "a-customers",
        "resource": "customer",
        "action": "delete_customer",
        "status": "planned",
        "reason": None,
        "population": 10,
        "matched": 9,
        "targets": 7,
        "subjects": 7,
        "held": 2,
        "held_by": {CUSTOMER_HOLD: 1, VIP: 2},
        "samples": ["c1", "c2", "c3", "c5", "c7"],
    }
    conversations = by_name["b-conversations"]
    # Five rows (two records, three items) are two conversations; samples are conversations.
    assert (conversations["targets"], conversations["subjects"]) == (5, 2)
    assert conversations["samples"] == ["v1", "v2"]
    assert (conversations["held"], conversations["held_by"]) == (2, {TOPIC: 1})
    blocked = by_name["c-blocked"]
    assert (blocked["status"], blocked["reason"]) == ("blocked", REASON)
    assert (blocked["targets"], blocked["subjects"], blocked["samples"]) == (0, 0, [])
    assert (blocked["held"], blocked["held_by"]) == (1, {VIP: 1})
    disabled = by_name["d-disabled"]
    assert (disabled["status"], disabled["targets"], disabled["held"]) == ("disabled", 0, 0)
    assert (disabled["held_by"], disabled["samples"]) == ({}, [])
    # Item policies sample item ids, not their conversations'.
    assert by_name["e-items"]["samples"] == ["i4", "i5"]
    assert by_name["e-items"]["subjects"] == 2


def test_the_existing_counts_are_kept() -> None:
    summary = _hand_built().summary()
    assert summary["targets"] == 14
    assert summary["by_policy"] == {"a-customers": 7, "b-conversations": 5, "e-items": 2}
    assert summary["excluded_by_holds"] == 5
    assert summary["not_erasable_via_api"] == 2
    assert summary["blocked_policies"] == [{"name": "c-blocked", "reason": REASON}]
    for key in ("by_action", "by_operation", "by_inbox", "by_channel"):
        assert key in summary


def _evaluated() -> Plan:
    """Through evaluate: c2 is held by its own hold and by its conversation's VIP inbox."""
    t = tables(
        [
            customer(f"c{i}", 2000, emails=[f"person{i}@example.com"], phones=["+15550100"])
            for i in range(8)
        ],
        [
            conversation("v1", "c1", 900),
            conversation("v2", "c2", 900, inbox_id="in-vip"),
            conversation("v3", "c3", 900),
        ],
        [
            item("i1", "v1", "c1", 900, "EMAIL"),
            item("i2", "v2", "c2", 900, "SMS"),
            item("i3", "v3", "c3", 900, "SMS"),
            item("i4", "v3", "c3", 900, "SMS"),
        ],
        inboxes=[{"id": "in-vip", "name": "VIP Support"}],
    )
    pols = [
        policy(
            "customer",
            [{"type": "age", "field": "last_activity", "older_than": "P3Y"}],
            name="del-c",
        ),
        policy(
            "item",
            [{"type": "channel", "in": ["SMS"]}],
            name="redact-sms",
            limits={"max_targets": 100, "max_percent": 10},
        ),
    ]
    return evaluate(pols, t, registry(("customer_id", "c2"), ("inbox", "VIP Support")), NOW)


def test_through_evaluate_a_subject_under_two_holds_counts_under_both() -> None:
    plan = _evaluated()
    by_name = {p["name"]: p for p in plan.summary()["policies"]}
    customers = by_name["del-c"]
    assert customers["held_by"] == {
        "customer_id=c2 [LEGAL-0]": 1,
        "inbox=VIP Support [LEGAL-1]": 1,
    }
    assert (customers["held"], customers["targets"], customers["subjects"]) == (1, 7, 7)
    assert customers["samples"] == ["c0", "c1", "c3", "c4", "c5"]
    blocked = by_name["redact-sms"]
    assert blocked["status"] == "blocked"
    assert blocked["reason"] == next(p["reason"] for p in plan.policies if p["status"] == "blocked")
    assert blocked["samples"] == []


def test_summary_json_holds_the_policies_block_and_no_personal_data(tmp_path: Path) -> None:
    plan = _evaluated()
    out = plan.write(tmp_path / "plan")
    text = (out / "summary.json").read_text()
    assert json.loads(text)["policies"] == json.loads(json.dumps(plan.summary()["policies"]))
    assert Plan.read(out).hash == plan.hash
    assert "@" not in text
    assert "+1555" not in text


def test_a_changed_policies_block_is_refused(tmp_path: Path) -> None:
    out = _evaluated().write(tmp_path / "plan")
    summary = json.loads((out / "summary.json").read_text())
    summary["policies"][0]["samples"] = ["c9"]
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(PlanIntegrityError, match="summary"):
        Plan.read(out)


def test_a_summary_without_the_policies_block_is_refused(tmp_path: Path) -> None:
    out = _evaluated().write(tmp_path / "plan")
    summary = json.loads((out / "summary.json").read_text())
    del summary["policies"]
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(PlanIntegrityError, match="summary"):
        Plan.read(out)


def test_the_lines_an_approver_reads() -> None:
    assert summary_lines(_hand_built().summary()) == [
        "policy a-customers (customer → delete_customer): planned",
        "  7 targets (7 customers)",
        "  matched 9 of 10 customers",
        f"  held: 2 — by {CUSTOMER_HOLD}: 1; {VIP}: 2",
        "  sample: c1, c2, c3, c5, c7, …",
        "policy b-conversations (conversation → erase_conversation): planned",
        "  5 targets (2 conversations)",
        "  matched 3 of 10 conversations",
        f"  held: 2 — by {TOPIC}: 1",
        "  sample: v1, v2",
        "policy c-blocked (item → redact_items): blocked",
        "  0 targets (0 items)",
        f"  held: 1 — by {VIP}: 1",
        f"  blocked: {REASON}",
        "policy d-disabled (customer → delete_customer): disabled",
        "policy e-items (item → redact_items): planned",
        "  2 targets (2 items)",
        "  matched 2 of 10 items",
        "  held: 0",
        "  sample: i4, i5",
        "totals",
        "  14 targets",
        "  by action: x 14",
        "  by operation: delete_customer 7, not_erasable_via_api 2, redact 5",
        "  held back by legal holds: 5",
        "  not erasable via API: 2 (reported, not deleted) — conversation record: 2",
        "  policies: 1 blocked, 1 disabled, 3 planned",
        "  blocked: c-blocked",
    ]


def test_lines_are_not_laid_out_for_a_width() -> None:
    big = {
        "policies": [
            _outcome("p", "customer", "planned", matched=1_234_567)
            | {"targets": 1_234_567, "subjects": 1, "held_by": {}, "samples": ["c1"]}
        ],
        "targets": 1_234_567,
    }
    lines = summary_lines(big)
    assert "  1,234,567 targets (1 customer)" in lines
    for line in lines:
        body = line.lstrip(" ")
        # No padding between columns, no rules, no table borders: nothing for a width.
        assert "  " not in body, line
        assert not {"|", "─", "│"} & set(body), line
        assert len(line) - len(body) in (0, 2), line


def test_the_markdown_says_what_the_lines_say() -> None:
    summary = _hand_built().summary()
    markdown = summary_markdown(summary)
    unquoted = markdown.replace("`", "")
    for line in summary_lines(summary):
        assert line.strip().replace("`", "") in unquoted, line
    assert "### policy `a-customers` (customer → delete_customer): planned" in markdown
    assert f"- held: 2 — by `{CUSTOMER_HOLD}`: 1; `{VIP}`: 2" in markdown
    assert f"- blocked: {REASON}" in markdown
    assert "### totals" in markdown


def test_the_markdown_quotes_a_label_holding_backticks() -> None:
    summary = {
        "policies": [
            _outcome("p", "customer", "planned")
            | {"targets": 0, "subjects": 0, "held": 1, "held_by": {"topic=a`b [L]": 1}}
        ]
    }
    assert "``topic=a`b [L]``: 1" in summary_markdown(summary)
