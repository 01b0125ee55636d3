"""`gladly-pipeline apply`, `delete`, `recover`: the deletion engine, from a shell."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from audit_log.outcomes import NOT_FOUND, RunReport
from erasure.request import MAX_CSV_ROWS
from gladly_archive.keyed import audit_key, default_region
from gladly_archive.location import resolve_archive_root
from gladly_client import Priority
from gladly_pipeline.common import RootOption, prefect_paced_client
from gladly_pipeline.delete_report import print_kept_items
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gladly_pipeline.progress import progress_bars
from gladly_pipeline.run_state import current_run

if TYPE_CHECKING:
    from audit_log.outcomes import TargetOutcome

_HOLDS = Annotated[
    Path | None,
    typer.Option(help="Legal hold registry (YAML or CSV); re-read whenever it changes."),
]
_EXECUTE = Annotated[
    bool,
    typer.Option(
        "--execute",
        help="Really call Gladly. Without it nothing is changed: the run is rehearsed.",
    ),
]
_WORKERS = Annotated[int, typer.Option(help="Targets in flight (the client paces the calls).")]


def apply(
    plan_dir: Annotated[Path, typer.Argument(help="A plan directory written by `plan`.")],
    approve: Annotated[str, typer.Option(help="The plan hash you approve (as `plan` printed it).")],
    execute: _EXECUTE = False,
    holds: _HOLDS = None,
    root: RootOption = None,
    approver: Annotated[
        str | None, typer.Option(help="Who approved (recorded in the audit log).")
    ] = None,
    workers: _WORKERS = 8,
) -> None:
    """Execute exactly the approved plan: holds re-checked, each target verified and audited.

    Refused before the first call if the plan on disk changed or another hash was approved.
    Needs GLADLY_AUDIT_KEY. Exit codes: 0 done; 1 a call failed or a deletion did not verify;
    2 refused or bad input; 3 done, but some targets need a look (held, blocked, active again);
    69 Gladly unreachable; 78 bad settings, credentials or role; 130 interrupted (the same
    command again resumes: it skips what is done and re-checks any call cut off).
    """
    from erasure.engine import PlanRefusedError
    from erasure.execution import run_apply

    console = Console(stderr=True)
    archive_root = resolve_archive_root(root)
    try:
        with (
            prefect_paced_client(Priority.PROMPT) as client,
            progress_bars(console) as progress,
            _counted(archive_root) as tick,
        ):
            report = run_apply(
                plan_dir,
                approve,
                root=archive_root,
                dry_run=not execute,
                holds_path=holds,
                approver=approver,
                workers=workers,
                client=client,
                progress=progress,
                on_outcome=tick,
            )
    except SETTINGS_ERRORS:
        raise  # exit 78, said by the root command
    except (PlanRefusedError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    _finish(console, report, archive_root)


def delete(
    email: Annotated[
        list[str] | None, typer.Option(help="A customer's email (repeatable).")
    ] = None,
    phone: Annotated[
        list[str] | None, typer.Option(help="A customer's phone (repeatable).")
    ] = None,
    customer_id: Annotated[
        list[str] | None, typer.Option(help="A Gladly customer id (repeatable).")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="CSV with a column email, phone or customer_id; its other columns (reason, "
            "ticket, notes…) are audited as keyed hashes, never as given."
        ),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            help="profile (the whole customer), conversations (erase what the API can), "
            "items (only --item-id, e.g. a message with a card number), or contact (only "
            "--contact: one call, chat session or message exchange)."
        ),
    ] = "profile",
    item_id: Annotated[list[str] | None, typer.Option(help="An item id (scope items).")] = None,
    contact: Annotated[
        list[str] | None,
        typer.Option(
            help="A contact of the customer named: a chat session id, a call's id, or the id "
            "of one message of an email/SMS/WhatsApp exchange (implies --scope contact)."
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="Ticket reference for the audit log.")] = "",
    keep_reason: Annotated[
        bool,
        typer.Option(
            help="Keep the --csv's reason column as given in the audit log (checked like "
            "--reason; one per request) instead of as a keyed hash."
        ),
    ] = False,
    max_rows: Annotated[
        int,
        typer.Option(help="The most people one --csv may name; a larger file is refused whole."),
    ] = MAX_CSV_ROWS,
    request_id: Annotated[
        str,
        typer.Option(
            help="The data subject's request reference (e.g. DSAR-2026-114): part of the "
            "request's identity, so a rerun resumes it instead of starting another."
        ),
    ] = "",
    close_open_conversations: Annotated[
        bool, typer.Option(help="Close open conversations so the profile can be deleted.")
    ] = False,
    execute: _EXECUTE = False,
    holds: _HOLDS = None,
    root: RootOption = None,
    workers: _WORKERS = 8,
) -> None:
    """Delete one customer's data now (an erasure request, a card number sent in a chat).

    The input is checked first, every bad row reported, and nothing happens until it is clean.
    Without --execute it only shows what would happen. Legal holds still win. Needs
    GLADLY_AUDIT_KEY. Exit codes as for `apply`.
    """
    from erasure.execution import run_delete
    from erasure.request import parse_request

    console = Console(stderr=True)
    archive_root = resolve_archive_root(root)
    try:
        request = parse_request(
            emails=email or [],
            phones=phone or [],
            customer_ids=customer_id or [],
            csv_path=csv,
            scope=scope,
            item_ids=item_id or [],
            contact_ids=contact or [],
            reason=reason,
            close_open_conversations=close_open_conversations,
            request_ref=request_id,
            region=default_region(),
            max_rows=max_rows,
            keep_reason=keep_reason,
        )
        with (
            prefect_paced_client(Priority.PROMPT) as client,
            progress_bars(console) as progress,
            _counted(archive_root) as tick,
        ):
            run = run_delete(
                request,
                root=archive_root,
                dry_run=not execute,
                holds_path=holds,
                workers=workers,
                client=client,
                progress=progress,
                on_outcome=tick,
            )
    except SETTINGS_ERRORS:
        raise  # exit 78, said by the root command
    except ValueError as exc:  # bad input (OneOffInputError among them): nothing happened
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    hashed = ", ".join(c.name for c in request.metadata if c.kept is None)
    kept = ", ".join(c.name for c in request.metadata if c.kept is not None)
    if hashed:
        console.print(f"request metadata, audited as keyed hashes: {hashed}")
    if kept:
        console.print(f"request metadata, audited as given: {kept}")
    for line in run.oneoff.not_found:
        console.print(f"[yellow]not found[/yellow] {line}")
    print_kept_items(console, run.oneoff.plan, run.report)
    console.print(
        f"request {run.request_id[:16]}… (a rerun of the same request resumes it); "
        f"plan written to {run.plan_dir} (hash {run.report.plan_hash})"
    )
    _finish(console, run.report, archive_root)


def recover(
    holds: _HOLDS = None,
    root: RootOption = None,
) -> None:
    """Finish what a crash interrupted (GET only; nothing is deleted here).

    Every destructive call the audit log announced without recording its outcome is re-checked
    in Gladly: a profile or item whose call took effect gets its one outcome, a tombstone and
    its purge from the archive; a call that evidently did not happen is left for a rerun of its
    plan or request. Every `apply` and `delete --execute` does this first, too. Exit codes as
    for `apply`."""
    from erasure.execution import run_recover

    console = Console(stderr=True)
    archive_root = resolve_archive_root(root)
    try:
        with prefect_paced_client(Priority.PROMPT) as client, progress_bars(console) as progress:
            report = run_recover(
                root=archive_root, holds_path=holds, client=client, progress=progress
            )
    except SETTINGS_ERRORS:
        raise  # exit 78, said by the root command
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    for one in report.recovered:
        console.print(f"recovered {one.target_type} {one.target_id}: {one.outcome}")
    if not report.recovered:
        console.print("nothing was interrupted")
    _finish(console, report, archive_root)


class _counted:
    """Counts the targets the engine reports finished, for what Ctrl-C says (the bars are
    `progress_bars`'). When stopped, the counts are read again from the audit log: calls in
    flight finish after a Ctrl-C (the pool drains), and a call sent whose outcome is not
    recorded is what the next run's recovery re-checks in Gladly."""

    def __init__(self, root: str) -> None:
        self._run = current_run()
        self._root = root
        self._since = datetime.now(UTC)
        self._read: tuple[int, int] | None = None
        self._run.counted = "target(s) finished by this run, each recorded in the audit log"
        self._run.recount = lambda: self._stopped()[0]
        self._run.cut_off = self._cut_off
        self._run.resume = (
            "it re-checks in Gladly any call cut off, skips what is done, does the rest"
        )

    def __enter__(self) -> Callable[[TargetOutcome], None]:
        return self._tick

    def _tick(self, _outcome: TargetOutcome) -> None:
        self._run.done += 1

    def __exit__(self, *exc: object) -> None:
        return None

    def _stopped(self) -> tuple[int, int]:
        """(targets given a final outcome by the runs started since this command began,
        targets cut off after their call was sent), from the audit log, read once."""
        if self._read is None:
            from audit_log import AuditLog
            from audit_log.outcomes import FINAL_OUTCOMES
            from erasure.recovery import interrupted_targets

            table = AuditLog(self._root, key=audit_key()).events()
            events = table.to_pylist()
            mine = {
                e["run_id"]
                for e in events
                if e["step"] == "run_started" and e["time"] >= self._since
            }
            finished = {
                (e["run_id"], e["policy_name"], e["target_type"], e["target_id"])
                for e in events
                if e["run_id"] in mine and e["step"] == "outcome" and e["outcome"] in FINAL_OUTCOMES
            }
            self._read = (len(finished), len(interrupted_targets(table)))
        return self._read

    def _cut_off(self) -> str:
        cut = self._stopped()[1]
        if not cut:
            return ""
        return (
            f"{cut} target(s) cut off after the call was sent, whether Gladly did it not yet known"
        )


def _finish(console: Console, report: RunReport, root: str) -> None:
    mode = "REHEARSAL (nothing changed; add --execute)" if report.dry_run else "EXECUTED"
    table = Table(title=f"Run {report.run_id[:12]} of plan {report.plan_hash[:12]}… — {mode}")
    table.add_column("outcome")
    table.add_column("targets", justify="right")
    for outcome, count in report.counts().items():
        table.add_row(outcome, str(count))
    if report.resumed:
        table.add_row("finished by an earlier run", str(report.resumed))
    console.print(table)
    if report.api_calls:
        calls = ", ".join(f"{m} {n}" for m, n in sorted(report.api_calls.items()))
        console.print(f"API calls: {calls}")
    if report.tombstoned:
        removed = sum(report.purge.get("rows_removed", {}).values())
        console.print(
            f"archive: {report.tombstoned} tombstone(s); {removed} row(s) purged from {root}"
        )
    for note in report.purge.get("not_purged", []):
        console.print(f"[yellow]not purged[/yellow] {note}")
    unmatched = [o for o in report.outcomes if o.outcome == NOT_FOUND]
    if unmatched:
        console.print(
            f"[bold yellow]{len(unmatched)} target(s) matched no one in Gladly[/bold yellow]: "
            "that part of the request is NOT done; check the identifiers given"
        )
    failed = [o for o in report.outcomes if o.outcome in ("failed", "verify_failed")]
    for one in failed[:20]:
        console.print(
            f"[red]{one.outcome}[/red] {one.target_type} {one.target_id}: "
            f"{one.detail or ''} {one.http_status or ''} {one.error_code or ''}"
        )
    chain = {True: "holds", False: "BROKEN", None: "not checked"}[report.chain_ok]
    console.print(f"audit chain {chain}; newest hash {report.chain_last_hash}")
    if not report.ok or report.chain_ok is False:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_ATTENTION if report.needs_attention else EXIT_OK)
