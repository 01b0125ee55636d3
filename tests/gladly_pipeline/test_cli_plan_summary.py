"""What `gladly-pipeline plan` prints for the approver: the summary.json it wrote, as lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import retention_policies.planning as planning
from gladly_pipeline.cli import app
from retention_policies.evaluate import evaluate
from retention_policies.holds import Hold, HoldRegistry
from retention_policies.plan import Plan
from retention_policies.plan_summary import summary_lines
from tests._console import flat, says
from tests.retention_policies._builders import (
    KEY,
    NOW,
    conversation,
    customer,
    item,
    policy,
    tables,
)

# A lower-case reference: printed as rich markup, "[legal-7]" would vanish from the output.
TWO_HOLDS = ("customer_id=c2 [legal-7]", "inbox=VIP Support [LEGAL-8]")


def _plan(blocked: bool) -> Plan:
    t = tables(
        [customer(f"c{i}", 2000, emails=[f"person{i}@example.com"]) for i in range(8)],
        [conversation("v2", "c2", 900, inbox_id="in-vip"), conversation("v3", "c3", 900)],
        [item("i2", "v2", "c2", 900, "SMS"), item("i3", "v3", "c3", 900, "SMS")],
        inboxes=[{"id": "in-vip", "name": "VIP Support"}],
    )
    pols = [
        policy(
            "customer",
            [{"type": "age", "field": "last_activity", "older_than": "P3Y"}],
            name="del-c",
        )
    ]
    if blocked:
        pols.append(
            policy(
                "item",
                [{"type": "channel", "in": ["SMS"]}],
                name="redact-sms",
                limits={"max_targets": 100, "max_percent": 10},
            )
        )
    holds = HoldRegistry(
        (
            Hold(kind="customer_id", value="c2", reason="litigation", reference="legal-7"),
            Hold(kind="inbox", value="VIP Support", reason="litigation", reference="LEGAL-8"),
        ),
        KEY,
    )
    return evaluate(pols, t, holds, NOW)


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> dict[str, Plan]:
    """`make_plan` evaluates small synthetic tables instead of an archive; the CLI is real."""
    made: dict[str, Plan] = {}

    def make_plan(policies: Any, *, root: str, out: Path | None = None, **_: Any) -> Any:
        plan = _plan(blocked="blocked" in str(policies))
        assert out is not None
        made["plan"] = plan
        return plan, plan.write(out)

    monkeypatch.setattr(planning, "make_plan", make_plan)
    return made


def _invoke(tmp_path: Path, policies: str) -> tuple[Any, dict[str, Any]]:
    out = tmp_path / "a plan dir"
    result = CliRunner().invoke(
        app,
        ["plan", "--policies", policies, "--root", str(tmp_path), "--out", str(out)],
        env={"COLUMNS": "40"},
    )
    return result, json.loads((out / "summary.json").read_text())


def test_plan_prints_the_summary_json_it_wrote(tmp_path: Path, planned: dict[str, Plan]) -> None:
    result, summary = _invoke(tmp_path, "blocked.yaml")
    assert result.exit_code == 3, result.output
    lines = summary_lines(summary)
    # Every line, in order, as one block (whatever the console did with line breaks).
    assert flat("\n".join(lines)) in flat(result.output)
    assert summary == json.loads(json.dumps(planned["plan"].summary()))
    by_name = {p["name"]: p for p in summary["policies"]}
    assert by_name["del-c"]["held_by"] == dict.fromkeys(TWO_HOLDS, 1)
    assert says(result.output, f"held: 1 — by {TWO_HOLDS[0]}: 1; {TWO_HOLDS[1]}: 1")
    assert says(result.output, "policy redact-sms (item → redact_items): blocked")
    assert says(result.output, f"blocked: {by_name['redact-sms']['reason']}")
    assert says(result.output, "sample: c0, c1, c3, c4, c5, …")
    assert says(result.output, f"plan hash: {planned['plan'].hash}")
    assert "@" not in result.output


def test_plan_without_a_blocked_policy_exits_0(tmp_path: Path, planned: dict[str, Plan]) -> None:
    result, summary = _invoke(tmp_path, "fine.yaml")
    assert result.exit_code == 0, result.output
    assert summary["blocked_policies"] == []
    assert says(result.output, "policy del-c (customer → delete_customer): planned")
    assert says(result.output, "7 targets (7 customers)")
    assert not says(result.output, "blocked:")
