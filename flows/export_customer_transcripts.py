"""Prefect flow: archive named customers' conversations through the API (an access request)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.secrets import run_client, run_env
from gladly_archive import Archive
from gladly_archive.location import resolve_archive_root
from gladly_client import Priority
from ingest.customer_export import CustomerExportReport, run_customer_export


@flow(name="export-customer-transcripts")
def export_customer_transcripts(
    emails: list[str] | None = None,
    customer_ids: list[str] | None = None,
    root: str | None = None,
    fetch_call_transcripts: bool = True,
) -> dict[str, Any]:
    """Archive these customers' conversations via the API; report what Gladly's limits cut off.

    Gladly lists at most 100 conversations per customer and 1000 items per conversation; such
    conversations are reported as incomplete, never silently cut. Customers are named in the
    result by Gladly id; the emails given are referred to only by position.
    """
    logger = get_run_logger()
    client = run_client(run_env(), priority=Priority.BULK)
    archive = Archive.open(resolve_archive_root(root))
    with client:
        report = run_customer_export(
            client,
            archive,
            emails=emails or [],
            customer_ids=customer_ids or [],
            fetch_call_transcripts=fetch_call_transcripts,
        )
    if not report.complete:
        logger.warning(
            "customer export %s is incomplete: %d input(s) not found, %d customer(s) over 100 "
            "conversations, %d conversation(s) over 1000 items",
            report.job_id,
            len(report.not_found),
            len(report.truncated_customers),
            len(report.incomplete_conversations),
        )
    _publish(report)
    return summarize(report)


def summarize(report: CustomerExportReport) -> dict[str, Any]:
    """The flow's result: ids and counts, no personal data."""
    return {
        "job_id": report.job_id,
        "complete": report.complete,
        "customer_ids": report.customer_ids,
        "not_found": report.not_found,
        "moved": report.moved,
        "conversations": report.conversations,
        "items": report.items,
        "call_transcripts": report.call_transcripts,
        "truncated_customers": report.truncated_customers,
        "incomplete_conversations": report.incomplete_conversations,
        "rows_by_dataset": report.rows_by_dataset,
    }


def _publish(report: CustomerExportReport) -> None:
    rows: list[dict[str, Any]] = [
        {"customer": cid, "status": "archived", "note": ""} for cid in report.customer_ids
    ]
    rows += [{"customer": ref, "status": "not found", "note": ""} for ref in report.not_found]
    rows += [
        {"customer": cid, "status": "incomplete", "note": "more than 100 conversations"}
        for cid in report.truncated_customers
    ]
    rows += [
        {"customer": "", "status": "incomplete", "note": f"conversation {cid}: > 1000 items"}
        for cid in report.incomplete_conversations
    ]
    create_table_artifact(
        table=rows or [{"customer": "", "status": "nothing requested", "note": ""}],
        key="export-customer-transcripts",
        description=(
            f"{report.job_id}: {report.conversations} conversation(s), {report.items} item(s)"
            + ("" if report.complete else " — INCOMPLETE, see rows")
        ),
    )


def main(argv: list[str] | None = None) -> None:
    """Run the flow once (`python -m flows.export_customer_transcripts --help`)."""
    parser = argparse.ArgumentParser(description=export_customer_transcripts.__doc__)
    parser.add_argument("--email", action="append", default=[], help="repeatable")
    parser.add_argument("--customer-id", action="append", default=[], help="repeatable")
    parser.add_argument("--root")
    args = parser.parse_args(argv)
    result = export_customer_transcripts(
        emails=args.email, customer_ids=args.customer_id, root=args.root
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
