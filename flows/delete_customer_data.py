"""Prefect flow: one-off deletion of a customer's data (a rehearsal unless dry_run is False)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment

from audit_log.outcomes import RunReport
from erasure.execution import execute_delete, plan_delete
from erasure.oneoff import OneOffPlan, parse_request
from flows.approval import request_approval
from flows.run_artifacts import publish_run, summarize_run
from flows.secrets import run_env
from gladly_archive.keyed import default_region
from gladly_archive.location import resolve_archive_root

# Above this many targets a deployment run waits for a second person's approval.
DEFAULT_APPROVAL_THRESHOLD = 25


class NotApprovedError(RuntimeError):
    """The one-off deletion was rejected, refused or not answered: nothing was deleted."""


@task(name="plan-one-off", cache_policy=NO_CACHE, persist_result=False)
def plan_one_off(params: dict[str, Any], root: str) -> tuple[OneOffPlan, Path]:
    """Check the input and resolve it into a written plan (read-only calls)."""
    env = run_env()
    request = parse_request(**params, region=default_region(env))
    return plan_delete(request, root=root, env=env)


@task(name="execute-one-off", cache_policy=NO_CACHE, persist_result=False)
def execute_one_off(
    oneoff: OneOffPlan,
    root: str,
    dry_run: bool,
    approver: str | None,
    flow_name: str,
    holds_path: str | None,
) -> RunReport:
    """Run the engine over the one-off plan (legal holds re-checked per target)."""
    return execute_delete(
        oneoff,
        root=root,
        dry_run=dry_run,
        approver=approver,
        flow=flow_name,
        holds_path=holds_path,
        env=run_env(),
    )


@flow(name="delete-customer-data")
def delete_customer_data(
    emails: list[str] | None = None,
    phones: list[str] | None = None,
    customer_ids: list[str] | None = None,
    csv_path: str | None = None,
    scope: str = "profile",
    item_ids: list[str] | None = None,
    reason: str = "",
    close_open_conversations: bool = False,
    request_id: str = "",
    dry_run: bool = True,
    root: str | None = None,
    approval_threshold: int = DEFAULT_APPROVAL_THRESHOLD,
    requested_by: str | None = None,
    approval_timeout_hours: float = 24.0,
    holds_path: str | None = None,
) -> dict[str, Any]:
    """Delete one subject's data: scope `profile` (whole customer), `conversations` (erase what
    the API can) or `items` (only `item_ids`). A bad input row stops everything before any
    call. In a deployment, more than `approval_threshold` targets wait for a second person's
    approval. Legal holds in `holds_path` win over the request, target by target. Needs
    GLADLY_AUDIT_KEY and the Gladly settings (environment or Secret blocks). `request_id` (the
    person's reference) is part of the request's identity: a rerun resumes the same request."""
    params = {
        "emails": emails or [],
        "phones": phones or [],
        "customer_ids": customer_ids or [],
        "csv_path": csv_path,
        "scope": scope,
        "item_ids": item_ids or [],
        "reason": reason,
        "close_open_conversations": close_open_conversations,
        "request_ref": request_id,
    }
    archive_root = resolve_archive_root(root)
    requester = requested_by or os.environ.get("GLADLY_PIPELINE_ACTOR") or "unknown"
    flow_name = f"deployment:{deployment.name}" if deployment.name else "flow:delete-customer-data"
    oneoff, plan_dir = plan_one_off(params, archive_root)
    approver = None
    if deployment.id is not None and oneoff.plan.targets.num_rows > approval_threshold:
        decision = request_approval(
            oneoff.plan,
            plan_dir,
            root=archive_root,
            requester=requester,
            dry_run=dry_run,
            timeout_seconds=max(1, int(approval_timeout_hours * 3600)),
            flow=flow_name,
        )
        if not decision.approved:
            raise NotApprovedError(f"not approved ({decision.reason}): nothing was deleted")
        approver = decision.approver
    report = execute_one_off(oneoff, archive_root, dry_run, approver, flow_name, holds_path)
    publish_run(report, "delete-customer-data")
    return {
        **summarize_run(report),
        "plan_dir": str(plan_dir),
        "not_found": oneoff.not_found,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the flow once, locally (`python -m flows.delete_customer_data --help`)."""
    parser = argparse.ArgumentParser(description=delete_customer_data.__doc__)
    parser.add_argument("--email", action="append", default=[])
    parser.add_argument("--phone", action="append", default=[])
    parser.add_argument("--customer-id", action="append", default=[])
    parser.add_argument("--csv")
    parser.add_argument("--scope", default="profile")
    parser.add_argument("--item-id", action="append", default=[])
    parser.add_argument("--reason", default="")
    parser.add_argument("--request-id", default="")
    parser.add_argument("--execute", action="store_true")
    parser.add_argument("--root")
    parser.add_argument("--holds")
    args = parser.parse_args(argv)
    result = delete_customer_data(
        emails=args.email,
        phones=args.phone,
        customer_ids=args.customer_id,
        csv_path=args.csv,
        scope=args.scope,
        item_ids=args.item_id,
        reason=args.reason,
        request_id=args.request_id,
        dry_run=not args.execute,
        root=args.root,
        holds_path=args.holds,
    )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
