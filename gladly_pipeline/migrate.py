"""`gladly-pipeline migrate`: upgrade an archive an earlier release wrote, in place."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gladly_archive import Archive
from gladly_archive.location import resolve_archive_root
from gladly_archive.migrate import MigrationPlan, migrate_archive, plan_migration
from gladly_archive.schemas import SCHEMA_VERSION
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_OK, EXIT_USAGE
from gladly_pipeline.progress import progress_bars

console = Console(stderr=True)


def migrate(
    root: RootOption = None,
    execute: Annotated[
        bool,
        typer.Option(
            "--execute", help="Do it (without it: say what would change, change nothing)."
        ),
    ] = False,
) -> None:
    """Upgrade an archive an earlier release wrote to this release's schema version, in place.

    A dry run unless --execute: it lists the directories to rename (no Hive-style `job=`/`run=`
    directories any more) and the files to write again: items derived again from their
    raw_json (kept, so nothing Gladly sent is lost), transcripts rebuilt from them, every other
    file with this release's schema. Every other command that writes refuses an older archive
    until this is done. Under the archive's writer lock; killed at any point, the same command
    again finishes it; on an archive already upgraded it changes nothing.
    """
    where = resolve_archive_root(root)
    if "://" not in where and not os.path.isdir(where):
        console.print(f"[red]No archive at {where}[/red]: nothing to migrate", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
    archive = Archive(where)
    try:
        if execute:
            with progress_bars(console) as progress:
                plan = migrate_archive(archive, progress=progress)
        else:
            plan = plan_migration(archive)
    except ValueError as exc:  # layout 1 (older still) or a newer release's archive
        console.print(f"[red]migrate refused:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    if not plan.changes:
        console.print(
            f"The archive at {archive.root} is at schema version {SCHEMA_VERSION}: nothing to "
            "migrate.",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_OK)
    console.print(_table(plan, execute))
    if execute:
        console.print(f"Done: the archive is at schema version {SCHEMA_VERSION}.")
    else:
        console.print(
            "Dry run: nothing was changed. Run it again with --execute to migrate "
            "(stop other commands on this archive first).",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_OK)


def _table(plan: MigrationPlan, done: bool) -> Table:
    verb = "migrated" if done else "would migrate"
    table = Table(
        title=f"{plan.root} {verb} from schema version {plan.version} to {SCHEMA_VERSION}"
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("directories renamed (Hive-style job=/run=/watch=)", str(len(plan.renames)))
    for dataset, count in plan.files.items():
        how = {"items": "derived again", "transcripts": "rebuilt"}.get(dataset, "written again")
        table.add_row(f"{dataset} files {how}", str(count))
    table.add_row("version recorded in _layout.json", "yes" if plan.stamp else "no")
    return table
