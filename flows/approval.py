"""A person approves a plan inside Prefect: the run pauses with the plan's summary and waits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

from audit_log import AuditLog
from flows.secrets import run_env
from gladly_archive.keyed import audit_key
from retention_policies.plan import Plan
from retention_policies.plan_summary import summary_markdown

__all__ = [
    "ApprovalDecision",
    "PlanApproval",
    "plan_markdown",
    "record_decision",
    "request_approval",
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
    person other than the requester lets the plan run."""
    create_markdown_artifact(
        key=APPROVAL_ARTIFACT,
        markdown=plan_markdown(plan, plan_dir, requester, dry_run),
        description=f"Plan {plan.hash} awaits approval",
    )
    decision = _decide(plan, requester, timeout_seconds)
    record_decision(root, plan, requester, decision, flow)
    return decision


def _decide(plan: Plan, requester: str, timeout_seconds: int) -> ApprovalDecision:
    try:
        answer: Any = pause_flow_run(
            wait_for_input=PlanApproval,
            timeout=timeout_seconds,
            poll_interval=2,  # the paused process asks the server this often for the answer
            key=f"approve-{plan.hash[:16]}",
        )
    except FlowPauseTimeout:
        return ApprovalDecision("timed_out", None, f"no decision within {timeout_seconds} s")
    approver = str(answer.approver)
    if answer.decision == "reject":
        return ApprovalDecision("rejected", approver, "rejected by the approver")
    if approver.casefold() == requester.casefold():
        return ApprovalDecision("refused", approver, "the requester cannot approve their own plan")
    if not plan.hash.startswith(str(answer.plan_hash).lower()):
        return ApprovalDecision("refused", approver, "the approval names another plan")
    return ApprovalDecision("approved", approver, "approved")
