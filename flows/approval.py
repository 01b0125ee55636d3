"""A person approves a plan inside Prefect: the run pauses with the plan's summary and waits."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout, MissingContextError
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from pydantic import Field

from audit_log import AuditLog
from flows.alerts import APPROVAL_DECIDED, APPROVAL_WAITING, emit_alert
from flows.secrets import run_env
from gladly_archive.keyed import audit_key
from retention_policies.plan import Plan
from retention_policies.plan_summary import summary_markdown

__all__ = [
    "ApprovalDecision",
    "PlanApproval",
    "approval_notice",
    "plan_markdown",
    "record_decision",
    "request_approval",
    "resume_approval",
    "resume_settled",
]

APPROVAL_ARTIFACT = "plan-approval"


class PlanApproval(RunInput):
    """What the approver enters in the Prefect UI (or sends with resume_flow_run)."""

    decision: Literal["approve", "reject"] = Field(
        description="approve: execute exactly this plan; reject: delete nothing"
    )
    approver: str = Field(
        description="Your user handle (not an email); must differ from the requester",
        min_length=2,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
    )
    plan_hash: str = Field(
        description="The plan hash shown in the summary (at least its first 12 characters)",
        min_length=12,
        max_length=64,
        pattern=r"^[0-9a-fA-F]+$",
    )


@dataclass(frozen=True)
class ApprovalDecision:
    """How the approval ended: approved (with approver), rejected, refused or timed_out."""

    outcome: Literal["approved", "rejected", "refused", "timed_out"]
    approver: str | None
    reason: str

    @property
    def approved(self) -> bool:
        """Whether the plan may be executed."""
        return self.outcome == "approved"


def plan_markdown(plan: Plan, plan_dir: Path, requester: str, dry_run: bool) -> str:
    """The summary an approver reads before deciding: the plan, who asked, what approving does,
    then per policy what it selected and held back, and the totals (as `gladly-pipeline plan`
    prints them)."""
    summary = plan.summary()
    lines = [
        f"# Retention plan `{plan.hash[:12]}` awaits approval",
        "",
        f"- **plan hash**: `{plan.hash}`",
        f"- planned at {plan.now.isoformat()} by **{requester}**; written to `{plan_dir}`",
        f"- mode if approved: **{'rehearsal (dry run)' if dry_run else 'EXECUTE — deletes'}**",
        f"- targets: **{summary['targets']}**; held back by legal holds: "
        f"**{summary['excluded_by_holds']}**; not erasable through the API: "
        f"**{summary['not_erasable_via_api']}**",
        "- policy versions: "
        + (
            ", ".join(
                f"`{policy['name']}` `{str(policy['version_hash'])[:12]}`"
                for policy in plan.policies
            )
            or "none"
        ),
        "",
        summary_markdown(summary),
        "Resume this run with: `decision` approve or reject, `approver` (your handle, not the "
        "requester's), and `plan_hash` (the hash above). Anything else deletes nothing.",
    ]
    return "\n".join(lines)


def approval_notice(plan: Plan, requester: str) -> list[str]:
    """Where the approval waits and how to give it: logged and published when the run pauses."""
    run_id = flow_run.id or "<flow run id>"
    ui = PREFECT_UI_URL.value()
    where = f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui else f"flow run {run_id}"
    per_policy = "; ".join(
        f"{p['name']}: {p['eligible']} target(s), {p['status']}" for p in plan.policies
    )
    return [
        f"WAITING FOR APPROVAL of plan {plan.hash} (requested by {requester}) at {where}",
        f"per policy: {per_policy or 'none'}",
        f"approve: gladly-pipeline approve {run_id} --plan-hash {plan.hash[:12]} "
        "--approver <your handle>   (or --reject; the requester cannot approve)",
        "an answer needs decision, approver and plan_hash: one missing a field is refused by "
        "the Prefect server (the error names the field) and never reaches this run",
    ]


def resume_approval(
    run_id: str,
    *,
    decision: str,
    approver: str,
    plan_hash: str,
    settle_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Answer a paused approval (what the UI's resume form sends); checked by the run itself."""
    resume_settled(
        run_id,
        {"decision": decision, "approver": approver, "plan_hash": plan_hash},
        settle_seconds=settle_seconds,
        sleep=sleep,
    )


def resume_settled(
    run_id: str,
    run_input: dict[str, Any],
    *,
    settle_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Resume the paused run `run_id` with `run_input`. A run that is just pausing (again,
    after a refused answer) may not read as paused for a moment: the answer is retried for up
    to `settle_seconds`, then NotPausedError is raised. An input the server refuses (a field
    missing) raises RuntimeError naming it, and the run keeps waiting."""
    from uuid import UUID

    from prefect.exceptions import NotPausedError
    from prefect.flow_runs import resume_flow_run

    flow_run_id = UUID(run_id)
    waited = 0.0
    while True:
        try:
            resume_flow_run(flow_run_id, run_input=run_input)
            return
        except NotPausedError:
            if waited >= settle_seconds:
                raise
            sleep(0.5)
            waited += 0.5


def record_decision(
    root: str, plan: Plan, requester: str, decision: ApprovalDecision, flow: str
) -> None:
    """One audit run holding the approval step, whatever its outcome."""
    with AuditLog(root, key=audit_key(env=run_env())).start_run(
        actor=requester, approver=decision.approver, flow=flow, plan_hash=plan.hash
    ) as run:
        run.append(
            target_type="run",
            step="approval",
            phase="result",
            outcome=decision.outcome,
            detail=json.dumps({"reason": decision.reason}),
        )


def request_approval(
    plan: Plan,
    plan_dir: Path,
    *,
    root: str,
    requester: str,
    dry_run: bool,
    timeout_seconds: int,
    flow: str,
) -> ApprovalDecision:
    """Publish the plan's summary, pause until a person answers (or the timeout), check the
    answer, audit the decision, and return it. Only an approval naming this plan's hash by a
    person other than the requester lets the plan run; any other approval is refused (audited
    and logged) and the run keeps waiting."""
    notice = approval_notice(plan, requester)
    create_markdown_artifact(
        key=APPROVAL_ARTIFACT,
        markdown=plan_markdown(plan, plan_dir, requester, dry_run)
        + "\n\n"
        + "\n".join(f"- {line}" for line in notice),
        description=f"Plan {plan.hash} awaits approval",
    )
    logger = _logger()
    for line in notice:
        logger.warning("%s", line)
    emit_alert(APPROVAL_WAITING, plan.hash, {"requester": requester, "targets": len(plan.targets)})
    decision = _decide(plan, requester, timeout_seconds, root, flow)
    record_decision(root, plan, requester, decision, flow)
    emit_alert(APPROVAL_DECIDED, plan.hash, {"outcome": decision.outcome})
    return decision


def _decide(
    plan: Plan, requester: str, timeout_seconds: int, root: str, flow: str
) -> ApprovalDecision:
    """Wait for an answer that decides: a rejection, or an approval of this plan's hash by a
    person other than the requester. An approval that cannot be accepted (another plan's hash,
    the requester's own) is logged and audited as refused, and the run keeps waiting, within
    the same deadline, for a valid answer."""
    logger = _logger()
    deadline = time.monotonic() + timeout_seconds
    attempt = 0
    while True:
        remaining = int(deadline - time.monotonic())
        if remaining <= 0:
            return ApprovalDecision("timed_out", None, f"no decision within {timeout_seconds} s")
        attempt += 1
        try:
            answer: Any = pause_flow_run(
                wait_for_input=PlanApproval,
                timeout=remaining,
                poll_interval=2,  # the paused process asks the server this often for the answer
                key=f"approve-{plan.hash[:16]}-{attempt}",
            )
        except FlowPauseTimeout:
            return ApprovalDecision("timed_out", None, f"no decision within {timeout_seconds} s")
        approver = str(answer.approver)
        if answer.decision == "reject":
            return ApprovalDecision("rejected", approver, "rejected by the approver")
        given = str(answer.plan_hash)
        if approver.casefold() == requester.casefold():
            reason = "the requester cannot approve their own plan"
            problem = f"{approver} requested this plan and cannot approve it; another person must"
        elif not plan.hash.startswith(given.lower()):
            reason = "the approval names another plan"
            problem = f"the approval names plan {given[:12]}, not this plan {plan.hash[:12]}"
        else:
            return ApprovalDecision("approved", approver, "approved")
        # The audit keeps the reason, not what was typed (a mistyped hash may look like a
        # phone number, and audit events hold no such thing).
        record_decision(root, plan, requester, ApprovalDecision("refused", approver, reason), flow)
        logger.warning(
            "APPROVAL NOT ACCEPTED from %s: %s. Still waiting for plan %s: resume again with "
            "decision, approver and plan_hash",
            approver,
            problem,
            plan.hash[:12],
        )


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
