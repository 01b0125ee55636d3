"""Prefect flow: archive Gladly's completed export jobs into the Parquet archive, oldest first."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.alerts import DETAIL_REFILLED, JOB_NEAR_EXPIRY, REAPPEARED, emit_alert
from flows.secrets import run_client, run_env
from flows.status_artifact import publish_status
from flows.sweep_artifact import found_line, publish_sweep, summarize_sweep
from gladly_archive import Archive
from gladly_archive.keyed import optional_audit_key
from gladly_archive.location import resolve_archive_root
from gladly_client import GladlyClient, Priority
from gladly_client.models import ExportJob
from ingest.exporting import (
    DEFAULT_EXPIRY_WARNING_DAYS,
    ExportReport,
    JobOutcome,
    archive_export_job,
    run_export,
)
from retention_policies.facts_cache import refresh_facts
from retention_policies.sensitive import KINDS
from retention_policies.sweep_plan import SweepResult, make_sweep


# No Prefect retries: the client already retries 429/5xx/cut downloads, and a failed job is
# simply redone by the next scheduled run. NO_CACHE: this task writes to the archive.
@task(name="archive-export-job", cache_policy=NO_CACHE, persist_result=False)
def archive_job(
    client: GladlyClient, archive: Archive, job: ExportJob, now: datetime
) -> JobOutcome:
    """Download, convert and commit one export job as a whole."""
    return archive_export_job(client, archive, job, now=now)


@task(name="refresh-plan-facts", cache_policy=NO_CACHE, persist_result=False)
def refresh_plan_facts(root: str) -> bool:
    """Save the planner's fact tables for the archive as it now is (the next plan reuses them)."""
    return refresh_facts(root)


# Never raises: a sweep that cannot run must not fail the export, and its error's text may
# quote what it read; the class alone is returned (`gladly-pipeline sweep --new` shows why).
@task(name="sweep-new-items", cache_policy=NO_CACHE, persist_result=False)
def sweep_new_items(root: str, holds_path: str | None) -> SweepResult | str:
    """Sweep the items archived since the last sweep for card numbers, SSNs and IBANs, and
    write the plan of what it found; or the class of the error that stopped it."""
    try:
        return make_sweep(root, KINDS, new=True, holds_path=holds_path, env=run_env())
    except Exception as exc:
        return type(exc).__name__


@flow(name="export-transcripts")
def export_transcripts(
    root: str | None = None,
    since: datetime | None = None,
    expiry_warning_days: float = DEFAULT_EXPIRY_WARNING_DAYS,
    sweep: bool = True,
    holds_path: str | None = None,
) -> dict[str, Any]:
    """Archive every completed, not yet archived Gladly export job; warn about expiring ones.

    With `sweep` (the default) the items archived since the last sweep are then searched for
    card numbers, SSNs and IBANs (`gladly-pipeline sweep --new`); what is found becomes a plan
    to approve, announced by the `sensitive-data-sweep` artifact and a `gladly.sweep.found`
    event. Items a legal hold in `holds_path` protects stay out of its targets. A sweep that
    fails is logged and leaves the export's outcome as it is.

    Connection settings come from GLADLY_BASE_URL / GLADLY_USER / GLADLY_API_TOKEN, in the
    environment or the Prefect Secret blocks of `flows.secrets.BLOCKS`; the archive root from
    `root`, else GLADLY_PIPELINE_ROOT, else ./gladly-data.
    """
    logger = get_run_logger()
    env = run_env()
    client = run_client(env, priority=Priority.BULK)
    archive = Archive.open(resolve_archive_root(root))
    # The client stays open to the end: the status lists Gladly's export jobs with it.
    with client:
        report = run_export(
            client,
            archive,
            since=since,
            expiry_warning_days=expiry_warning_days,
            archive_one=lambda job, now: archive_job(client, archive, job, now),
            audit_key=optional_audit_key(env),
        )
        if report.archived or report.folded is not None or any(report.reference_rows.values()):
            refresh_plan_facts(report.root)
        if report.reference_error:
            logger.error("INBOXES, TOPICS AND AGENTS NOT REFRESHED: %s", report.reference_error)
        for outcome in report.failed:
            logger.error("export job %s could not be archived: %s", outcome.job_id, outcome.error)
        for skipped in report.skipped:
            logger.error("EXPORT JOB SKIPPED: %s", skipped.describe())
        for warning in report.warnings:
            logger.error("EXPORT AT RISK: %s", warning.describe())
            emit_alert(
                JOB_NEAR_EXPIRY,
                warning.job_id,
                {
                    "status": warning.status,
                    "expires_at": warning.expires_at.isoformat(),
                    "reason": warning.reason,
                },
            )
        if report.reappeared is not None:
            for one in report.reappeared.reappeared:
                logger.warning(
                    "REAPPEARED: customer %s has the %s of erased customer %s",
                    one.customer_id,
                    one.matched_on,
                    one.tombstoned_id,
                )
                emit_alert(
                    REAPPEARED,
                    one.customer_id,
                    {"matched_on": one.matched_on, "erased_customer_id": one.tombstoned_id},
                )
        for refill in report.refilled:
            logger.warning(
                "REFILLED: customer %s has the %s watched as %s again; source: %s",
                refill.customer_id,
                refill.kind,
                refill.watch_id,
                refill.explanation,
            )
            emit_alert(
                DETAIL_REFILLED,
                refill.customer_id,
                {
                    "kind": refill.kind,
                    "watch_id": refill.watch_id,
                    "unlinked_from": refill.unlinked_from,
                    "source": refill.source,
                },
            )
        publish_export_artifact(report)
        swept = sweep_new_items(report.root, holds_path) if sweep else None
        if isinstance(swept, str):
            logger.error(
                "SENSITIVE-DATA SWEEP NOT RUN: %s (run `gladly-pipeline sweep --new` for why); "
                "the next run sweeps these items",
                swept,
            )
        elif swept is not None and swept.plan is not None:
            logger.warning(
                "SENSITIVE DATA FOUND in new items: %s; plan %s awaits approval",
                found_line(swept),
                swept.plan.hash,
            )
            publish_sweep(swept)
        elif swept is not None:
            logger.info("sweep: nothing found in %d new item(s)", swept.scan.items_scanned)
        # Last, the whole system's state, live: what a person reads first in the UI.
        publish_status(report.root, env, client)
    result = summarize(report)
    if swept is not None:
        result["sweep"] = {"error": swept} if isinstance(swept, str) else summarize_sweep(swept)
    return result


def summarize(report: ExportReport) -> dict[str, Any]:
    """The flow's result: counts, paths and warnings — no personal data."""
    return {
        "ok": report.ok,
        "root": report.root,
        "jobs_archived": [o.job_id for o in report.archived],
        "jobs_failed": {o.job_id: o.error for o in report.failed},
        "jobs_already_archived": report.already_archived,
        # Ids unsafe to print appear as "sha256:" and a hash prefix.
        "jobs_skipped": [{"job": s.job, "reason": s.reason} for s in report.skipped],
        "rows_by_dataset": report.rows_by_dataset(),
        "quarantined_lines": report.quarantined,
        "warnings": [w.describe() for w in report.warnings],
        "reference_error": report.reference_error,
        "reappeared": (
            None
            if report.reappeared is None
            else [
                {"customer_id": r.customer_id, "erased_customer_id": r.tombstoned_id}
                for r in report.reappeared.reappeared
            ]
        ),
        "erased_customers_purged_again": (
            report.reappeared.repurged if report.reappeared is not None else None
        ),
        "refilled": (
            [
                {
                    "customer_id": r.customer_id,
                    "kind": r.kind,
                    "watch_id": r.watch_id,
                    "source": r.source,
                }
                for r in report.refilled
            ]
            if report.refills_checked
            else None
        ),
        "folded_through": None if report.folded is None else report.folded.through.isoformat(),
    }


def publish_export_artifact(report: ExportReport) -> None:
    """A table a person reads in the Prefect UI: one row per job, skipped jobs, then warnings."""
    rows: list[dict[str, Any]] = [
        {
            "job": o.job_id,
            "window": _window(o),
            "outcome": o.status,
            **{f"rows_{k}": v for k, v in sorted(o.rows_by_dataset.items())},
            "quarantined_lines": o.quarantined,
            "duplicates_replaced": o.duplicates_replaced,
            "note": o.error or (", ".join(o.skipped_files) and f"skipped {o.skipped_files}"),
        }
        for o in [*report.archived, *report.failed]
    ]
    rows.extend(
        {"job": s.job, "window": "", "outcome": "skipped", "note": s.describe()}
        for s in report.skipped
    )
    rows.extend(
        {"job": w.job_id, "window": "", "outcome": "AT RISK", "note": w.describe()}
        for w in report.warnings
    )
    if not rows:
        rows.append({"job": "", "window": "", "outcome": "nothing new to archive", "note": ""})
    create_table_artifact(
        table=rows,
        key="export-transcripts",
        description=(
            f"Archive {report.root}: {len(report.archived)} job(s) archived, "
            f"{len(report.failed)} failed, {len(report.skipped)} skipped (unsafe id), "
            f"{len(report.warnings)} warning(s), "
            f"{report.quarantined} quarantined line(s)."
        ),
    )


def _window(outcome: JobOutcome) -> str:
    if outcome.window_start is None or outcome.window_end is None:
        return ""
    return f"{outcome.window_start:%Y-%m-%d %H:%M} → {outcome.window_end:%Y-%m-%d %H:%M}"


def main(argv: list[str] | None = None) -> None:
    """Run the flow once, locally (`python -m flows.export_transcripts --help`)."""
    parser = argparse.ArgumentParser(description=export_transcripts.__doc__)
    parser.add_argument(
        "--root", help="archive root (default GLADLY_PIPELINE_ROOT or ./gladly-data)"
    )
    parser.add_argument("--since", type=datetime.fromisoformat, help="skip windows ending before")
    parser.add_argument("--expiry-warning-days", type=float, default=DEFAULT_EXPIRY_WARNING_DAYS)
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the sweep of the new items for numbers"
    )
    parser.add_argument("--holds", help="legal hold registry for the sweep's plan")
    args = parser.parse_args(argv)
    result = export_transcripts(
        root=args.root,
        since=args.since,
        expiry_warning_days=args.expiry_warning_days,
        sweep=not args.no_sweep,
        holds_path=args.holds,
    )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
