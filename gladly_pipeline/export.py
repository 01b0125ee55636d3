"""`gladly-pipeline export`: archive export jobs (or named customers), with progress bars."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gladly_archive.keyed import optional_audit_key
from gladly_client import Priority
from gladly_pipeline.common import RootOption, connect
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK
from gladly_pipeline.progress import progress_bars
from gladly_pipeline.run_state import current_run
from gladly_pipeline.sweep import run_sweep
from ingest.customer_export import CustomerExportReport, run_customer_export
from ingest.exporting import (
    DEFAULT_EXPIRY_WARNING_DAYS,
    ExportReport,
    JobOutcome,
    is_download_phase,
    run_export,
)
from ingest.refills import Refill
from retention_policies.facts_cache import refresh_facts


def export(
    root: RootOption = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Skip export windows that ended before this date (YYYY-MM-DD).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        ),
    ] = None,
    customer_email: Annotated[
        list[str] | None,
        typer.Option(
            "--customer-email",
            help="Archive this customer's conversations through the API instead (repeatable).",
        ),
    ] = None,
    customer_id: Annotated[
        list[str] | None,
        typer.Option("--customer-id", help="Same, by Gladly customer id (repeatable)."),
    ] = None,
    expiry_warning_days: Annotated[
        float,
        typer.Option(help="Warn about unarchived jobs this many days old (Gladly keeps 14)."),
    ] = DEFAULT_EXPIRY_WARNING_DAYS,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Then sweep the new items for card numbers, SSNs, IBANs (as `sweep --new`).",
        ),
    ] = False,
    holds: Annotated[
        Path | None,
        typer.Option(help="With --sweep: legal hold registry; held items stay out of the plan."),
    ] = None,
) -> None:
    """Archive Gladly's completed export jobs into Parquet, oldest first (or named customers).

    Exit codes: 0 all archived; 1 a job or call failed; 2 bad options;
    3 archived, but a job is about to expire unarchived, Gladly failed a job, a job was
    skipped because its id is not a safe file name, the inboxes/topics/agents listing could
    not be refreshed, a detail `unlink` removed is back on a profile (REFILLED; needs
    GLADLY_AUDIT_KEY), a customer's history was cut short by Gladly's API limits, or
    --sweep found card numbers, SSNs or IBANs in the new items (a plan to approve);
    69 Gladly unreachable; 78 bad settings; 130 interrupted (the next run resumes).
    A sweep that cannot run exits 1 (the export itself is done).
    """
    console = Console(stderr=True)
    if holds is not None and not sweep:
        raise typer.BadParameter("--holds is for the sweep: add --sweep", param_hint="--holds")
    client, archive = connect(root, console, Priority.BULK)
    with client:
        if customer_email or customer_id:
            customer_report = run_customer_export(
                client, archive, emails=customer_email or [], customer_ids=customer_id or []
            )
            _print_customer_report(console, customer_report)
            found = sweep and _sweep_new(console, str(archive.root), holds)
            raise typer.Exit(EXIT_ATTENTION if found or not customer_report.complete else EXIT_OK)
        run = current_run()
        # Counted from the manifests at a stop: a job is archived once its manifest is.
        before = len(archive.archived_job_ids())
        run.recount = lambda: len(archive.archived_job_ids()) - before
        run.counted = "export job(s) archived by this run"
        run.resume = "archived jobs are skipped, the rest archived without duplicates"

        def job_finished(outcome: JobOutcome) -> None:
            """A job committed (or failed, leaving nothing): no longer in flight."""
            run.current = ""
            if outcome.status == "archived":
                run.done += 1

        with progress_bars(console, in_bytes=is_download_phase) as bars:

            def progress(phase: str, done: int, total: int) -> None:
                if is_download_phase(phase) and "(job " in phase:
                    # A job is committed whole: cut off, it is redone (or rolled forward).
                    label = phase.rsplit("(job ", 1)[1].rstrip(")")
                    run.current = f"export job {label} was cut off; the next run finishes it"
                if bars is not None:
                    bars(phase, done, total)

            report = run_export(
                client,
                archive,
                since=since.replace(tzinfo=UTC) if since and not since.tzinfo else since,
                now=datetime.now(UTC),
                expiry_warning_days=expiry_warning_days,
                progress=progress,
                on_job=job_finished,
                audit_key=optional_audit_key(),
            )
    _print_export_report(console, report)
    if report.archived or report.folded is not None or any(report.reference_rows.values()):
        # Paid here, once per change, so that planning starts from saved fact tables.
        with progress_bars(console) as refresh_bars:
            refresh_facts(report.root, progress=refresh_bars)
    # What was committed is swept even when a job failed: the failed one is redone next run.
    found = sweep and _sweep_new(console, report.root, holds)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
    attention = report.warnings or report.skipped or report.reference_error or report.refilled
    raise typer.Exit(EXIT_ATTENTION if attention or found else EXIT_OK)


def _sweep_new(console: Console, root: str, holds: Path | None) -> bool:
    """`sweep --new` over what the export archived; True when a plan was written."""
    from retention_policies.sensitive import KINDS

    return run_sweep(console, root, tuple(KINDS), new=True, holds=holds, on_error=EXIT_FAILED)


def _print_export_report(console: Console, report: ExportReport) -> None:
    table = Table(title=f"Export into {report.root}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("jobs archived now", str(len(report.archived)))
    table.add_row("jobs already archived", str(report.already_archived))
    table.add_row("jobs failed", str(len(report.failed)))
    if report.skipped:
        table.add_row("jobs skipped (unsafe id)", str(len(report.skipped)))
    for dataset, rows in sorted(report.rows_by_dataset().items()):
        table.add_row(f"rows → {dataset}", str(rows))
    table.add_row("quarantined lines", str(report.quarantined))
    if report.folded is not None:
        folded = sum(report.folded.rows_folded.values())
        table.add_row(f"rows folded (dated ≤ {report.folded.through})", str(folded))
    console.print(table)
    for outcome in report.failed:
        console.print(f"[red]FAILED[/red] job {outcome.job_id}: {outcome.error}")
    if report.skipped:
        # One line for all of them; ids unsafe to print are already hash prefixes.
        jobs = ", ".join(escape(s.job) for s in report.skipped)
        console.print(
            f"[bold yellow]SKIPPED[/bold yellow] {len(report.skipped)} export job(s) whose id "
            f"is not a safe file name; nothing was written for them: {jobs}"
        )
    for warning in report.warnings:
        console.print(f"[bold red]AT RISK[/bold red] {escape(warning.describe())}")
    if report.reference_error:
        console.print(
            "[bold yellow]NOT REFRESHED[/bold yellow] inboxes, topics and agents: "
            f"{escape(report.reference_error)}; names in policies and holds resolve against "
            "the last listing until the next export or `gladly-pipeline enrich`"
        )
    print_reappeared(console, report)
    print_refilled(console, report.refilled)


def print_refilled(console: Console, refilled: list[Refill]) -> None:
    """Unlinked details back on a profile: ids, kinds and watch ids, never the detail."""
    for one in refilled:
        where = (
            "back on the same profile"
            if one.customer_id == one.unlinked_from
            else f"unlinked from {one.unlinked_from}"
        )
        console.print(
            f"[bold yellow]REFILLED[/bold yellow] customer {one.customer_id}: the "
            f"{one.kind.replace('_', ' ')} watched as {one.watch_id} is back ({where}); "
            f"source: {escape(one.explanation)}",
            highlight=False,
        )


def print_reappeared(console: Console, report: ExportReport) -> None:
    """Erased customers who came back (ids only), or why that was not checked."""
    found = report.reappeared
    if found is None:
        return
    if not found.hashes_checked:
        console.print(
            "[yellow]not checked for erased customers who came back under a new id[/yellow]: "
            "set GLADLY_AUDIT_KEY"
        )
    for one in found.reappeared:
        console.print(
            f"[bold yellow]REAPPEARED[/bold yellow] customer {one.customer_id} has the "
            f"{one.matched_on} of {one.tombstoned_id}, erased {one.deleted_at:%Y-%m-%d}"
        )
    if found.repurged:
        console.print(
            f"purged again: {len(found.repurged)} erased customer(s) an older export brought "
            f"back ({found.rows_repurged} rows)"
        )


def _print_customer_report(console: Console, report: CustomerExportReport) -> None:
    table = Table(title=f"Customer export {report.job_id}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("inputs", str(report.requested))
    table.add_row("customers found", str(len(report.customer_ids)))
    table.add_row("conversations", str(report.conversations))
    table.add_row("items", str(report.items))
    table.add_row("call transcripts fetched", str(report.call_transcripts))
    console.print(table)
    for reference in report.not_found:
        console.print(f"[yellow]not found[/yellow]: {reference}")
    for old, new in report.moved.items():
        console.print(f"merged: customer {old} now lives under {new}")
    for customer in report.truncated_customers:
        console.print(
            f"[yellow]INCOMPLETE[/yellow] customer {customer}: more than 100 conversations; "
            "the rest are only in the export files"
        )
    for conversation in report.incomplete_conversations:
        console.print(
            f"[yellow]INCOMPLETE[/yellow] conversation {conversation}: more than 1000 items; "
            "the rest are only in the export files"
        )
