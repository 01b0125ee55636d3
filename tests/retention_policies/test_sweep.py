"""The sweep's scan and plan: candidates from Arrow, findings by position only, one target per
item with the operation the API allows, and no number anywhere in the plan directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gladly_archive.schemas import ITEMS
from retention_policies.plan import Plan
from retention_policies.sweep import FINDINGS, SCANNED_FIELDS, scan_batches
from retention_policies.sweep_plan import (
    SWEEP_POLICY,
    build_sweep_plan,
    make_sweep,
    operation_for,
)
from tests._policies import NOW
from tests._scan import traces

CARD, SSN, IBAN = "4111 1111 1111 1111", "536-90-4399", "DE89 3704 0044 0532 0130 00"
NUMBERS = [CARD, CARD.replace(" ", ""), SSN, SSN.replace("-", ""), IBAN, IBAN.replace(" ", "")]


def _row(item_id: str, content_type: str, text: str | None, **more: Any) -> dict[str, Any]:
    raw = json.dumps({"id": item_id, "content": {"type": content_type, "content": text}})
    return {
        "item_id": item_id,
        "customer_id": f"cust-{item_id}",
        "conversation_id": None if content_type == "CUSTOMER_ACTIVITY" else f"conv-{item_id}",
        "content_type": content_type,
        "text": text,
        "subject": more.get("subject"),
        "recording_summary": None,
        "raw_json": more.get("raw_json", raw),
    }


ROWS = [
    _row("chat1", "CHAT_MESSAGE", f"my card: {CARD}"),
    _row("note1", "CONVERSATION_NOTE", f"caller gave SSN {SSN} and card {CARD}"),
    _row("act1", "CUSTOMER_ACTIVITY", f"refund to {IBAN}"),
    _row("mail1", "EMAIL", "see subject", subject=f"card {CARD}"),
    _row("fb1", "FACEBOOK_MESSAGE", "photo attached", raw_json=f'{{"filename": "{CARD}.png"}}'),
    _row("plain1", "CHAT_MESSAGE", "order ORD-4111111111111111, call +1 415 555 2671"),
    _row("empty1", "SMS", None),
]


def _batches(rows: list[dict[str, Any]], size: int = 3) -> list[pa.RecordBatch]:
    columns = ["item_id", "customer_id", "conversation_id", "content_type", *SCANNED_FIELDS]
    schema = pa.schema([ITEMS.field(name) for name in columns])
    table = pa.Table.from_pylist(rows, schema=schema)
    return table.to_batches(max_chunksize=size)


def test_findings_say_where_never_what() -> None:
    scan = scan_batches(_batches(ROWS))
    assert scan.items_scanned == len(ROWS)
    assert scan.candidate_rows == 6  # the look-alike row passes the filter, then fails validation
    assert scan.findings.schema == FINDINGS
    got = {(r["item_id"], r["kind"], r["field"]) for r in scan.findings.to_pylist()}
    assert got == {
        ("chat1", "card", "text"),
        ("note1", "ssn", "text"),
        ("note1", "card", "text"),
        ("act1", "iban", "text"),
        ("mail1", "card", "subject"),
        ("fb1", "card", "raw_json"),  # a number only in a field without a column of its own
    }
    texts = {r["item_id"]: r for r in ROWS}
    for finding in scan.findings.to_pylist():
        value = texts[finding["item_id"]][finding["field"]]
        assert value[finding["start"] : finding["end"]] in NUMBERS
    assert scan.items_by_kind() == {"card": 4, "ssn": 1, "iban": 1}
    assert traces_in(scan.findings.to_pylist()) == []


def traces_in(rows: list[dict[str, Any]]) -> list[str]:
    text = json.dumps(rows)
    return [n for n in NUMBERS if n in text]


def test_only_the_kinds_asked_for_are_found() -> None:
    scan = scan_batches(_batches(ROWS), kinds=("ssn",))
    assert {r["item_id"] for r in scan.findings.to_pylist()} == {"note1"}
    assert scan.items_by_kind() == {"card": 0, "ssn": 1, "iban": 0}


@pytest.mark.parametrize(
    ("content_type", "operation"),
    [
        ("CHAT_MESSAGE", "redact"),
        ("EMAIL", "redact"),
        ("SMS", "redact"),
        ("PHONE_CALL", "redact"),
        ("VOICEMAIL", "redact"),
        ("WHATSAPP", "redact"),
        ("CUSTOMER_ACTIVITY", "delete"),
        ("CONVERSATION_NOTE", "not_erasable_via_api"),
        ("FACEBOOK_MESSAGE", "not_erasable_via_api"),
        ("SOMETHING_NEW", "not_erasable_via_api"),
    ],
)
def test_the_operation_is_what_the_api_allows(content_type: str, operation: str) -> None:
    assert operation_for(content_type) == operation


def test_the_plan_has_one_target_per_item_and_no_number_on_disk(tmp_path: Path) -> None:
    scan = scan_batches(_batches(ROWS))
    plan = build_sweep_plan(scan, kinds=("card", "ssn", "iban"), now=NOW, holds_hash="h", scope={})
    rows = {r["target_id"]: r for r in plan.targets.to_pylist()}
    assert {k: v["operation"] for k, v in rows.items()} == {
        "chat1": "redact",
        "mail1": "redact",
        "act1": "delete",
        "note1": "not_erasable_via_api",
        "fb1": "not_erasable_via_api",
    }
    assert {r["policy_name"] for r in rows.values()} == {SWEEP_POLICY}
    assert rows["note1"]["erasable"] is False
    facts = json.loads(rows["note1"]["matched_facts_json"])
    assert facts["kinds"] == ["card", "ssn"]
    assert {f["field"] for f in facts["findings"]} == {"text"}
    written = plan.write(tmp_path / "plan")
    assert Plan.read(written).hash == plan.hash
    assert traces(written, NUMBERS) == []
    summary = json.loads((written / "summary.json").read_text())
    assert summary["by_operation"] == {"delete": 1, "not_erasable_via_api": 2, "redact": 2}


def test_the_same_findings_make_the_same_sweep_identity() -> None:
    one = build_sweep_plan(
        scan_batches(_batches(ROWS, 2)), kinds=("card",), now=NOW, holds_hash="h", scope={}
    )
    two = build_sweep_plan(
        scan_batches(_batches(ROWS, 5)), kinds=("card",), now=NOW, holds_hash="h", scope={}
    )
    assert one.policies[0]["version_hash"] == two.policies[0]["version_hash"]
    assert one.hash == two.hash


def test_an_unreadable_watermark_is_an_error_naming_it_never_a_fresh_start(tmp_path: Path) -> None:
    state = tmp_path / "_sweep" / "state.json"
    state.parent.mkdir()
    state.write_text('{"swept_through": "yesterday"}')
    with pytest.raises(ValueError, match=r"_sweep/state.json: unreadable sweep state"):
        make_sweep(str(tmp_path), ("card",), new=True, now=NOW)
    assert state.read_text() == '{"swept_through": "yesterday"}'
    assert not (tmp_path / "_plans").exists()


def test_no_archive_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no archive at .*: export into it first, or pass --root"):
        make_sweep(str(tmp_path / "missing"), ("card",), now=NOW)
    assert not (tmp_path / "missing").exists()
