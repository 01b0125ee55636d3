"""Prefect flow: one-off deletion of a customer's data (a rehearsal unless dry_run is False).

Prefect keeps a flow run's parameters in its database — shown in the UI, returned by the API,
for as long as the run exists — so the person's emails and phones must not be parameters of a
deployment run. They come from a request file on the worker (`csv_path`): Prefect stores the
path, never what the file says.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.runtime import deployment, flow_run

from audit_log.outcomes import RunReport
from erasure.execution import execute_delete, plan_delete
from erasure.oneoff import OneOffPlan
from erasure.request import OneOffRequest, parse_request
from flows.approval import request_approval
from flows.run_artifacts import publish_run, summarize_run
from flows.secrets import run_client, run_env
from gladly_archive.keyed import default_region
from gladly_archive.location import resolve_archive_root
from gladly_client import Priority

# Above this many targets a deployment run waits for a second person's approval.
DEFAULT_APPROVAL_THRESHOLD = 25
# The parameters that may name a person, and the word their placeholder counts in.
IDENTIFYING_PARAMETERS = {"emails": "email", "phones": "phone"}


class NotApprovedError(RuntimeError):
    """The one-off deletion was rejected, refused or not answered: nothing was deleted."""


class _InMemory:
    """What the tasks need but Prefect must never record (the checked request, the resolved
    plan with the live profiles it saw): kept in this process's memory, and handed to a task
    as an opaque reference. A task's arguments are never given a clear identifier."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def put(self, value: Any) -> str:
        ref = f"in-memory:{uuid.uuid4()}"
        with self._lock:
            self._values[ref] = value
        return ref

    def get(self, ref: str) -> Any:
        with self._lock:
            return self._values[ref]

    def drop(self, *refs: str) -> None:
        with self._lock:
            for ref in refs:
                self._values.pop(ref, None)


_IN_MEMORY = _InMemory()


def redacted_parameters(
    stored: dict[str, Any], emails: Sequence[str] | None, phones: Sequence[str] | None
) -> dict[str, Any]:
    """The run's stored parameters with each given email/phone list replaced by a count."""
    given = {"emails": emails, "phones": phones}
    redacted = dict(stored)
    for name, word in IDENTIFYING_PARAMETERS.items():
        values = given[name]
        if values:
            redacted[name] = f"[erased: {len(values)} {word}{'' if len(values) == 1 else 's'}]"
    return redacted


def forget_identifying_parameters(
    emails: Sequence[str] | None, phones: Sequence[str] | None
) -> bool:
    """Overwrite this run's stored `emails`/`phones` parameters with placeholders, through the
    API (PATCH /flow_runs/{id}). Returns whether anything was overwritten. An error is raised:
    a run that cannot take the values out of the API must not look clean."""
    run_id = flow_run.id
    if run_id is None or not (emails or phones):
        return False
    with get_client(sync_client=True) as client:
        stored = dict(client.read_flow_run(uuid.UUID(str(run_id))).parameters)
        client.update_flow_run(
            uuid.UUID(str(run_id)), parameters=redacted_parameters(stored, emails, phones)
        )
    return True


@task(name="plan-one-off", cache_policy=NO_CACHE, persist_result=False)
def plan_one_off(request_ref: str, root: str) -> tuple[str, Path]:
    """Resolve the request (read-only calls) into a written plan; returns a reference to the
    resolved plan (it holds the live profiles seen) and the plan's folder."""
    request: OneOffRequest = _IN_MEMORY.get(request_ref)
    env = run_env()
    with run_client(env, priority=Priority.PROMPT) as client:
        oneoff, plan_dir = plan_delete(request, root=root, client=client, env=env)
    return _IN_MEMORY.put(oneoff), plan_dir


@task(name="execute-one-off", cache_policy=NO_CACHE, persist_result=False)
def execute_one_off(
    oneoff_ref: str,
    root: str,
    dry_run: bool,
    approver: str | None,
    flow_name: str,
    holds_path: str | None,
) -> RunReport:
    """Run the engine over the one-off plan (legal holds re-checked per target)."""
    oneoff: OneOffPlan = _IN_MEMORY.get(oneoff_ref)
    env = run_env()
    with run_client(env, priority=Priority.PROMPT) as client:
        return execute_delete(
            oneoff,
            root=root,
            dry_run=dry_run,
            approver=approver,
            flow=flow_name,
            holds_path=holds_path,
            client=client,
            env=env,
        )


@flow(name="delete-customer-data")
def delete_customer_data(
    csv_path: str | None = None,
    delete_request_file: bool = False,
    customer_ids: list[str] | None = None,
    emails: list[str] | None = None,
    phones: list[str] | None = None,
    scope: str = "profile",
    item_ids: list[str] | None = None,
    reason: str = "",
    keep_reason: bool = False,
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
    person's reference) is part of the request's identity: a rerun resumes the same request.

    Who: `csv_path`, a request file on the worker (UTF-8 CSV, columns email, phone,
    customer_id, one per row; other columns, such as a ticket system's reason, ticket or notes,
    are request metadata, audited only as keyed hashes — with `keep_reason` the `reason` column
    as given, checked like `reason`), and/or `customer_ids`. Prefect stores every parameter in its
    database and shows it in the UI for as long as the run exists, so an erasure must not name
    the person in one: the file's path is stored, its content is not. With
    `delete_request_file` the file is removed once a real run (dry_run False) has finished
    without a failed target; it is kept after a rehearsal, a refusal or a failure, for the
    rerun. `emails`/`phones` are for local runs only: Prefect has stored them before the flow
    starts, so the flow's first step overwrites them through the API with placeholders
    ("[erased: 1 email]"); the database may still hold the old bytes (SQLite write-ahead log
    and free pages) until it reuses or vacuums them — a deployment takes a request file.

    No task is given an identifier: the request is checked in the flow body and the tasks get a
    reference to it, held in this process's memory. Logs, artifacts and the result hold ids,
    counts and hashes; results are not persisted."""
    forget_identifying_parameters(emails, phones)  # first: before anything can fail
    logger = get_run_logger()
    if emails or phones:
        logger.warning(
            "emails/phones were given as parameters: replaced by placeholders in Prefect; give "
            "a request file (csv_path) instead, whose content Prefect never stores"
        )
    archive_root = resolve_archive_root(root)
    requester = requested_by or os.environ.get("GLADLY_PIPELINE_ACTOR") or "unknown"
    flow_name = f"deployment:{deployment.name}" if deployment.name else "flow:delete-customer-data"
    request = parse_request(
        emails=emails or [],
        phones=phones or [],
        customer_ids=customer_ids or [],
        csv_path=csv_path,
        scope=scope,
        item_ids=item_ids or [],
        reason=reason,
        close_open_conversations=close_open_conversations,
        request_ref=request_id,
        region=default_region(run_env()),
        keep_reason=keep_reason,
    )
    request_ref = _IN_MEMORY.put(request)
    oneoff_ref = ""
    try:
        oneoff_ref, plan_dir = plan_one_off(request_ref, archive_root)
        oneoff: OneOffPlan = _IN_MEMORY.get(oneoff_ref)
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
        report = execute_one_off(oneoff_ref, archive_root, dry_run, approver, flow_name, holds_path)
        not_found = list(oneoff.not_found)
    finally:
        _IN_MEMORY.drop(request_ref, oneoff_ref)
    publish_run(report, "delete-customer-data")
    request_file = None
    if csv_path is not None:
        request_file = "kept"
        if delete_request_file and not dry_run and report.ok:
            Path(csv_path).unlink(missing_ok=True)
            request_file = "deleted"
        logger.info("request file %s", request_file)
    return {
        **summarize_run(report),
        "plan_dir": str(plan_dir),
        "not_found": not_found,
        "request_file": request_file,
    }


def _write_request_file(folder: Path, emails: Sequence[str], phones: Sequence[str]) -> Path:
    """A private request file (mode 600) for identifiers typed on the command line."""
    path = folder / "request.csv"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "phone"])
        writer.writerows([[e, ""] for e in emails] + [["", p] for p in phones])
    return path


def main(argv: list[str] | None = None) -> None:
    """Run the flow once, locally (`python -m flows.delete_customer_data --help`). Emails and
    phones given here go to the flow in a private temporary request file, never as
    parameters, and the file is removed afterwards."""
    parser = argparse.ArgumentParser(description=delete_customer_data.__doc__)
    parser.add_argument("--email", action="append", default=[])
    parser.add_argument("--phone", action="append", default=[])
    parser.add_argument("--customer-id", action="append", default=[])
    parser.add_argument("--csv")
    parser.add_argument("--delete-request-file", action="store_true")
    parser.add_argument("--scope", default="profile")
    parser.add_argument("--item-id", action="append", default=[])
    parser.add_argument("--reason", default="")
    parser.add_argument("--keep-reason", action="store_true")
    parser.add_argument("--request-id", default="")
    parser.add_argument("--execute", action="store_true")
    parser.add_argument("--root")
    parser.add_argument("--holds")
    args = parser.parse_args(argv)
    if args.csv and (args.email or args.phone):
        parser.error("--email/--phone with --csv: put them in the CSV file")
    with tempfile.TemporaryDirectory(prefix="erasure-request-") as folder:
        csv_path = args.csv
        if args.email or args.phone:
            csv_path = str(_write_request_file(Path(folder), args.email, args.phone))
        result = delete_customer_data(
            csv_path=csv_path,
            delete_request_file=args.delete_request_file,
            customer_ids=args.customer_id,
            scope=args.scope,
            item_ids=args.item_id,
            reason=args.reason,
            keep_reason=args.keep_reason,
            request_id=args.request_id,
            dry_run=not args.execute,
            root=args.root,
            holds_path=args.holds,
        )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
