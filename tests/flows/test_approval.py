"""The approval step: who may approve, which plan, and what a rejection or silence leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import flows.approval as approval
from audit_log import AuditLog, verify_chain
from retention_policies.plan import TARGET_SCHEMA, Plan
from retention_policies.plan_summary import summary_markdown

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)


def _plan() -> Plan:
    row = {name: None for name in TARGET_SCHEMA.names} | {
        "target_type": "customer",
        "target_id": "cust123",
        "customer_id": "cust123",
        "policy_name": "delete-inactive",
        "policy_hash": "a" * 64,
        "action": "delete_customer",
        "operation": "delete_customer",
        "erasable": True,
        "excluded_by_holds": [],
    }
    policy = {
        "name": "delete-inactive",
        "version_hash": "a" * 64,
        "resource": "customer",
        "action": "delete_customer",
        "enabled": True,
        "status": "planned",
        "reason": None,
        "population": 10,
        "matched": 1,
        "held": 0,
        "eligible": 1,
    }
    return Plan(
        now=NOW,
        targets=pa.Table.from_pylist([row], schema=TARGET_SCHEMA),
        held=TARGET_SCHEMA.empty_table(),
        policies=[policy],
        holds_hash="b" * 64,
    )


APPROVAL_KEY = b"approval-test-key"


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The approval step writes to the keyed audit log."""
    monkeypatch.setenv("GLADLY_AUDIT_KEY", APPROVAL_KEY.decode())


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(
        approval, "create_markdown_artifact", lambda **kw: shown.append(kw["markdown"])
    )
    return shown


def _answer(monkeypatch: pytest.MonkeyPatch, *answers: Any) -> list[str]:
    """The answers given to successive pauses, in order; silence after the last. Returns the
    pauses' keys (each pause waits for its own input)."""
    from prefect.exceptions import FlowPauseTimeout

    queue = list(answers)
    keys: list[str] = []

    def pause(**kw: Any) -> Any:
        assert kw["wait_for_input"] is approval.PlanApproval
        keys.append(kw["key"])
        answer = queue.pop(0) if queue else FlowPauseTimeout("no answer")
        if isinstance(answer, BaseException):
            raise answer
        return approval.PlanApproval(**answer)

    monkeypatch.setattr(approval, "pause_flow_run", pause)
    return keys


def _decide(tmp_path: Path, requester: str = "carol") -> approval.ApprovalDecision:
    plan = _plan()
    return approval.request_approval(
        plan,
        tmp_path / "plan",
        root=str(tmp_path),
        requester=requester,
        dry_run=False,
        timeout_seconds=60,
        flow="deployment:weekly",
    )


def _audited_all(tmp_path: Path) -> list[dict[str, Any]]:
    events = [
        e
        for e in AuditLog(tmp_path, key=APPROVAL_KEY).events().to_pylist()
        if e["step"] == "approval"
    ]
    assert verify_chain(tmp_path, key=APPROVAL_KEY).ok
    return events


def _audited(tmp_path: Path) -> dict[str, Any]:
    [event] = _audited_all(tmp_path)
    return event


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ({"decision": "approve", "approver": "alice", "plan_hash": "PLAN"}, "approved"),
        ({"decision": "reject", "approver": "alice", "plan_hash": "PLAN"}, "rejected"),
    ],
)
def test_decisions_are_checked_and_audited(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    published: list[str],
    answer: dict[str, str],
    outcome: str,
) -> None:
    plan_hash = _plan().hash
    if answer["plan_hash"] == "PLAN":
        answer = {**answer, "plan_hash": plan_hash[:12]}
    _answer(monkeypatch, answer)
    decision = _decide(tmp_path)
    assert decision.outcome == outcome
    assert decision.approved is (outcome == "approved")
    event = _audited(tmp_path)
    assert (event["outcome"], event["actor"]) == (outcome, "carol")
    assert event["approver"] == answer["approver"]
    assert event["plan_hash"] == plan_hash
    [markdown] = published
    assert plan_hash in markdown
    assert "delete-inactive" in markdown
    assert "EXECUTE" in markdown


def test_the_approver_reads_the_plan_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: list[str]
) -> None:
    plan = _plan()
    _answer(monkeypatch, {"decision": "reject", "approver": "alice", "plan_hash": plan.hash[:12]})
    _decide(tmp_path)
    [markdown] = published
    # The same per-policy summary `gladly-pipeline plan` prints, under the plan's own header.
    assert summary_markdown(plan.summary()) in markdown
    assert "### policy `delete-inactive` (customer → delete_customer): planned" in markdown
    assert "- 1 target (1 customer)" in markdown
    assert "- sample: `cust123`" in markdown
    assert f"`delete-inactive` `{'a' * 12}`" in markdown
    assert markdown.index(plan.hash) < markdown.index("### policy")


def test_silence_is_a_timeout_that_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: list[str]
) -> None:
    from prefect.exceptions import FlowPauseTimeout

    _answer(monkeypatch, FlowPauseTimeout("no answer"))
    decision = _decide(tmp_path)
    assert (decision.outcome, decision.approver, decision.approved) == ("timed_out", None, False)
    assert _audited(tmp_path)["outcome"] == "timed_out"


def test_the_input_form_refuses_emails_and_short_hashes() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        approval.PlanApproval(decision="approve", approver="a@b.co", plan_hash="a" * 12)
    with pytest.raises(ValidationError):
        approval.PlanApproval(decision="approve", approver="alice", plan_hash="abc")
    with pytest.raises(ValidationError):
        approval.PlanApproval(decision="maybe", approver="alice", plan_hash="a" * 12)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"decision": "approve", "approver": "Carol", "plan_hash": "PLAN"}, "requested this plan"),
        ({"decision": "approve", "approver": "alice", "plan_hash": "0" * 64}, "names plan 000000"),
    ],
)
def test_an_approval_that_cannot_be_accepted_is_refused_and_the_run_keeps_waiting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    published: list[str],
    caplog: pytest.LogCaptureFixture,
    bad: dict[str, str],
    why: str,
) -> None:
    plan_hash = _plan().hash
    bad = {**bad, "plan_hash": plan_hash[:12] if bad["plan_hash"] == "PLAN" else bad["plan_hash"]}
    good = {"decision": "approve", "approver": "alice", "plan_hash": plan_hash[:12]}
    keys = _answer(monkeypatch, bad, good)
    with caplog.at_level("WARNING"):
        decision = _decide(tmp_path)
    assert decision.outcome == "approved"
    assert len(keys) == len(set(keys)) == 2  # a second pause, waiting for a new answer
    events = _audited_all(tmp_path)
    assert [e["outcome"] for e in events] == ["refused", "approved"]
    assert why in caplog.text
    assert "Still waiting" in caplog.text


def test_refused_answers_then_silence_time_out_and_delete_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: list[str]
) -> None:
    plan_hash = _plan().hash
    _answer(monkeypatch, {"decision": "approve", "approver": "carol", "plan_hash": plan_hash})
    decision = _decide(tmp_path)
    assert (decision.outcome, decision.approved) == ("timed_out", False)
    assert [e["outcome"] for e in _audited_all(tmp_path)] == ["refused", "timed_out"]


def test_the_pause_says_where_it_waits_and_how_to_approve(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    published: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = _plan()
    _answer(monkeypatch, {"decision": "reject", "approver": "alice", "plan_hash": plan.hash[:12]})
    with caplog.at_level("WARNING"):
        _decide(tmp_path)
    assert f"WAITING FOR APPROVAL of plan {plan.hash}" in caplog.text
    assert "delete-inactive: 1 target(s), planned" in caplog.text
    assert "gladly-pipeline approve" in caplog.text
    assert f"--plan-hash {plan.hash[:12]}" in caplog.text
    assert "one missing a field is refused by the Prefect server" in caplog.text
    [markdown] = published
    assert "gladly-pipeline approve" in markdown
