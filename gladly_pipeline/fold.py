"""`gladly-pipeline fold`: move rows older than a month into per-customer buckets now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gladly_archive import Archive
from gladly_archive.fold import KEEP_DAYS, fold_archive
from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_OK, EXIT_USAGE
from gladly_pipeline.progress import progress_bars
from retention_policies.facts_cache import refresh_facts

console = Console(stderr=True)


def fold(
    root: RootOption = None,
    through: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help=f"Fold rows dated on or before this UTC day (default: {KEEP_DAYS} days ago).",
        ),
    ] = None,
    buckets: Annotated[
        int | None,
        typer.Option(
            help="Customer buckets, a power of two, fixed by the first fold "
            "(default: about 500 customers a bucket)."
        ),
    ] = None,
) -> None:
    """Fold older rows into per-customer buckets (export runs do this about monthly).

    Recent rows stay where exports write them (items by day); older ones move to
    `<dataset>/folded/<bucket>/`, one file per bucket of customers, so erasing a customer
    rewrites one file per dataset instead of every day it appears in. Rows are moved, never
    changed or dropped; readers see the same tables before and after.
    """
    day = through.date() if through else datetime.now(UTC).date() - timedelta(days=KEEP_DAYS)
    try:
        archive = Archive.open(resolve_archive_root(root))
        with progress_bars(console) as progress:
            report = fold_archive(archive, day, buckets=buckets, progress=progress)
    except ValueError as exc:
        console.print(f"[red]fold refused:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    table = Table(title=f"Fold of {archive.root} through {day} into {report.buckets} buckets")
    table.add_column("dataset")
    table.add_column("rows folded", justify="right")
    table.add_column("files written", justify="right")
    table.add_column("files replaced", justify="right")
    for name, rows in report.rows_folded.items():
        table.add_row(
            name, str(rows), str(report.files_written[name]), str(report.files_replaced[name])
        )
    console.print(table)
    console.print(f"done in {report.seconds:.1f} s")
    if any(report.rows_folded.values()):
        with progress_bars(console) as progress:
            refresh_facts(str(archive.root), progress=progress)
    raise typer.Exit(EXIT_OK)
