"""Plan.write / Plan.read: round trip, atomic write, tampering detected."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from retention_policies.evaluate import evaluate
from retention_policies.plan import Plan, PlanIntegrityError
from tests.retention_policies._builders import (
    NOW,
    conversation,
    customer,
    item,
    policy,
    registry,
    tables,
)


def _plan() -> Plan:
    t = tables(
        [customer("c1", 2000), customer("c2", 2000)],
        [conversation("v1", "c1", 900), conversation("v2", "c2", 900)],
        [
            item("i1", "v1", "c1", 900, "EMAIL"),
            item("i2", "v1", "c1", 900, "CONVERSATION_NOTE"),
            item("i3", "v2", "c2", 900, "SMS"),
        ],
    )
    pols = [
        policy(
            "customer",
            [{"type": "age", "field": "last_activity", "older_than": "P3Y"}],
            name="del-c",
        ),
        policy("conversation", [{"type": "conversation_status", "in": ["CLOSED"]}], name="erase-v"),
    ]
    return evaluate(pols, t, registry(("customer_id", "c2")), NOW)


def test_round_trip(tmp_path: Path) -> None:
    plan = _plan()
    out = plan.write(tmp_path / "plan")
    assert sorted(p.name for p in out.iterdir()) == [
        "held.parquet",
        "plan.json",
        "summary.json",
        "targets.parquet",
    ]
    back = Plan.read(out)
    assert back.hash == plan.hash
    assert back.targets.equals(plan.targets)
    assert back.held.equals(plan.held)
    assert back.policies == plan.policies
    assert back.now == plan.now
    assert json.loads((out / "plan.json").read_text())["hash"] == plan.hash
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_never_overwrites(tmp_path: Path) -> None:
    plan = _plan()
    plan.write(tmp_path / "plan")
    with pytest.raises(FileExistsError):
        plan.write(tmp_path / "plan")


def test_changed_targets_refused(tmp_path: Path) -> None:
    out = _plan().write(tmp_path / "plan")
    table = pq.read_table(out / "targets.parquet")
    ids = table.column("target_id")
    changed = table.set_column(1, "target_id", pc.if_else(pc.equal(ids, "c1"), "c9", ids))
    pq.write_table(changed, out / "targets.parquet")
    with pytest.raises(PlanIntegrityError, match="hash"):
        Plan.read(out)


def test_dropped_held_row_refused(tmp_path: Path) -> None:
    out = _plan().write(tmp_path / "plan")
    held = pq.read_table(out / "held.parquet")
    assert held.num_rows > 0
    pq.write_table(held.slice(1), out / "held.parquet")
    with pytest.raises(PlanIntegrityError):
        Plan.read(out)


@pytest.mark.parametrize("field", ["now", "holds_hash", "policies"])
def test_changed_plan_json_refused(tmp_path: Path, field: str) -> None:
    out = _plan().write(tmp_path / "plan")
    manifest = json.loads((out / "plan.json").read_text())
    if field == "now":
        manifest["now"] = "2030-01-01T00:00:00+00:00"
    elif field == "holds_hash":
        manifest["holds_hash"] = "0" * 64
    else:
        manifest["policies"][0]["status"] = "disabled"
    (out / "plan.json").write_text(json.dumps(manifest))
    with pytest.raises(PlanIntegrityError):
        Plan.read(out)


def test_changed_summary_refused(tmp_path: Path) -> None:
    out = _plan().write(tmp_path / "plan")
    summary = json.loads((out / "summary.json").read_text())
    summary["targets"] += 1
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(PlanIntegrityError, match="summary"):
        Plan.read(out)


def test_hash_ignores_chunking() -> None:
    plan = _plan()
    rechunked = pa.concat_tables([plan.targets.slice(0, 1), plan.targets.slice(1)])
    again = Plan(
        now=plan.now,
        targets=rechunked,
        held=plan.held,
        policies=plan.policies,
        holds_hash=plan.holds_hash,
    )
    assert again.hash == plan.hash
