"""Prefect flow: plan the retention policies, get a person's approval, execute exactly that plan."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from audit_log import outcomes as o
from audit_log.outcomes import RunReport
from erasure.execution import run_apply
from flows.approval import request_approval
from flows.run_artifacts import publish_run, summarize_run
from flows.secrets import run_client, run_env
from flows.status_artifact import publish_status
from gladly_archive import Archive
from gladly_archive.location import resolve_archive_root
from gladly_client import Priority
from ingest.enrich import enrich_archive
from retention_policies.candidates import profile_candidates
from retention_policies.plan import Plan
from retention_policies.plan_summary import summary_markdown
from retention_policies.planning import make_plan

DEFAULT_POLICIES = "retention_policies/policies"


# No retries, no cache: the engine is resumable by itself (a rerun skips finished targets)
# and the client retries each call; a Prefect retry would only stack on top.
@task(name="execute-plan", cache_policy=NO_CACHE, persist_result=False)
def execute_plan_task(
    plan_dir: str,
    approved_plan_hash: str,
    root: str,
    dry_run: bool,
    holds_path: str | None,
    approver: str | None,
    flow_name: str,
) -> RunReport:
    """Run the engine over the approved plan (its calls go ahead of bulk work's)."""
    env = run_env()
    with run_client(env, priority=Priority.PROMPT) as client:
        return run_apply(
            plan_dir,
            approved_plan_hash,
            root=root,
            dry_run=dry_run,
            holds_path=holds_path,
            approver=approver,
            flow=flow_name,
            client=client,
            env=env,
        )


@task(name="enrich-archive", cache_policy=NO_CACHE, persist_result=False)
def enrich_task(
    root: str, max_calls: int, policies: str, holds_path: str | None
) -> dict[str, object]:
    """Fetch what export files lack so the plan decides on known facts: the directory, the
    conversations' inbox, status and topics (reports, or the events since the last run), and
    custom attributes of the customers these policies need. What the budget leaves over stays
    unknown, and a policy that needs it is blocked, never guessed."""
    archive = Archive.open(root)
    env = run_env()

    def candidates() -> set[str]:
        return profile_candidates(root, policies, holds_path=holds_path, env=env).customer_ids

    with run_client(env, priority=Priority.BULK) as client:
        report = enrich_archive(client, archive, max_calls=max_calls, candidates=candidates)
    facts = report.facts
    return {
        "conversation_facts": facts.mode if facts is not None else report.facts_reason,
        "calls": dict(report.calls),
        "conversation_rows_written": report.conversations_fetched,
        "profiles_needed": report.candidates,
        "profiles_fetched": report.customers_fetched,
        "gone": report.gone,
        "backlog": report.backlog,
    }


@task(name="make-plan", cache_policy=NO_CACHE, persist_result=False)
def make_plan_task(policies: str, root: str, holds_path: str | None) -> tuple[Plan, Path]:
    """Evaluate the policies over the archive and write the plan."""
    return make_plan(policies, root=root, holds_path=holds_path, env=run_env())


def _requester(requested_by: str | None) -> str:
    if requested_by:
        return requested_by
    if os.environ.get("GLADLY_PIPELINE_ACTOR"):
        return os.environ["GLADLY_PIPELINE_ACTOR"]
    name = deployment.name
    return f"deployment:{name}" if name else "unknown"


@flow(name="apply-retention")
def apply_retention(
    plan_dir: str | None = None,
    approved_plan_hash: str | None = None,
    dry_run: bool = True,
    policies: str = DEFAULT_POLICIES,
    holds_path: str | None = None,
    root: str | None = None,
    approver: str | None = None,
    requested_by: str | None = None,
    approval_timeout_hours: float = 72.0,
    enrich_max_calls: int = 2000,
) -> dict[str, Any]:
    """Apply the retention policies: a rehearsal unless `dry_run` is false.

    With `approved_plan_hash` (and `plan_dir`) it executes exactly that plan, as
    `gladly-pipeline apply --approve` does. Without it — a scheduled deployment run — it plans
    from `policies` (or takes `plan_dir`), publishes the plan's summary and pauses until a
    person other than the requester approves this plan's hash or rejects it; a rejection or
    no answer within `approval_timeout_hours` deletes nothing, and both are audited.
    Before planning from `policies` it enriches the archive (at most `enrich_max_calls` API
    calls; 0 skips it): a policy over a fact still unknown afterwards is blocked in the plan.
    Settings and secrets come from the environment or Prefect Secret blocks, never parameters.
    """
    logger = get_run_logger()
    archive_root = resolve_archive_root(root)
    flow_name = f"deployment:{deployment.name}" if deployment.name else "flow:apply-retention"
    approval = "pre-approved" if approved_plan_hash else "rehearsal without approval"
    if approved_plan_hash is None:
        if plan_dir is None:
            if enrich_max_calls > 0:
                enriched = enrich_task(archive_root, enrich_max_calls, policies, holds_path)
                logger.info("enriched before planning: %s", enriched)
            plan, plan_path = make_plan_task(policies, archive_root, holds_path)
        else:
            plan_path = Path(plan_dir)
            plan = Plan.read(plan_path)
        if deployment.id is None:
            # No approval step to publish it: the plan's summary is its own artifact.
            create_markdown_artifact(
                key="retention-plan",
                markdown=f"# Retention plan `{plan.hash}`\n\n" + summary_markdown(plan.summary()),
                description=f"Plan {plan.hash} (rehearsal)",
            )
        if deployment.id is None and not dry_run:
            raise ValueError(
                "outside a deployment nobody can approve this run: pass plan_dir and "
                "approved_plan_hash (as `gladly-pipeline apply --approve` does), or dry_run"
            )
        if deployment.id is not None:
            requester = _requester(requested_by)
            decision = request_approval(
                plan,
                plan_path,
                root=archive_root,
                requester=requester,
                dry_run=dry_run,
                timeout_seconds=max(1, int(approval_timeout_hours * 3600)),
                flow=flow_name,
            )
            if not decision.approved:
                logger.error(
                    "plan %s not approved (%s): nothing was deleted", plan.hash, decision.reason
                )
                if decision.outcome == "timed_out":
                    raise TimeoutError(f"plan {plan.hash} was not approved in time")
                publish_status(archive_root, run_env())
                return {
                    "plan_hash": plan.hash,
                    "plan_dir": str(plan_path),
                    "approval": decision.outcome,
                    "reason": decision.reason,
                    "deleted": 0,
                }
            approver, approval = decision.approver, "approved"
        plan_dir, approved_plan_hash = str(plan_path), plan.hash
    elif plan_dir is None:
        raise ValueError("approved_plan_hash needs plan_dir: the plan it approves")
    report = execute_plan_task(
        plan_dir,
        approved_plan_hash,
        archive_root,
        dry_run,
        holds_path,
        approver,
        flow_name,
    )
    for outcome in report.outcomes:
        if outcome.outcome in (o.FAILED, o.VERIFY_FAILED):
            logger.error(
                "%s %s: %s (%s %s)",
                outcome.target_type,
                outcome.target_id,
                outcome.outcome,
                outcome.http_status,
                outcome.error_code,
            )
    publish_run(report, "apply-retention")
    # The whole system's state after the run, as the hourly export publishes it.
    publish_status(archive_root, run_env())
    return {
        **summarize_run(report),
        "plan_dir": plan_dir,
        "approval": approval,
        "flow_run": flow_run.id,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the flow once, locally (`python -m flows.apply_retention --help`)."""
    parser = argparse.ArgumentParser(description=apply_retention.__doc__)
    parser.add_argument("plan_dir", nargs="?")
    parser.add_argument("--approve", help="the plan hash being approved")
    parser.add_argument("--execute", action="store_true", help="really call Gladly")
    parser.add_argument("--policies", default=DEFAULT_POLICIES)
    parser.add_argument("--holds")
    parser.add_argument("--root")
    parser.add_argument("--approver")
    args = parser.parse_args(argv)
    result = apply_retention(
        plan_dir=args.plan_dir,
        approved_plan_hash=args.approve,
        dry_run=not args.execute,
        policies=args.policies,
        holds_path=args.holds,
        root=args.root,
        approver=args.approver,
    )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
