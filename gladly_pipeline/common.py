"""What every `gladly-pipeline` command that talks to Gladly and the archive starts with."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_archive import Archive
from gladly_archive.location import check_archive_root, resolve_archive_root
from gladly_client import GladlyClient
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_USAGE
from gladly_pipeline.run_state import current_run


def _checked_root(ctx: typer.Context, value: str | None) -> str | None:
    """--root (else GLADLY_PIPELINE_ROOT, else ./gladly-data), checked while the options are
    read: a file, or a directory this user cannot reach or read, stops the command before it
    starts (ArchiveRootError: exit 78)."""
    if ctx.resilient_parsing:  # shell completion: nothing runs
        return value
    root = resolve_archive_root(value)
    check_archive_root(root)
    current_run().root = root
    return value


# The --root option every command that reads or writes the archive takes.
RootOption = Annotated[
    str | None,
    typer.Option(
        help="Archive root: a path or a pyarrow URI (env GLADLY_PIPELINE_ROOT).",
        callback=_checked_root,
    ),
]


def connect(root: str | None, console: Console) -> tuple[GladlyClient, Archive]:
    """A client from the environment and the opened archive.

    Missing or wrong settings raise (GladlySettingsError) for the root command to report
    (exit 78); an archive this release cannot open exits 2, naming why.
    """
    client = GladlyClient.from_env()
    try:
        archive = Archive.open(resolve_archive_root(root))
    except BaseException as exc:
        client.close()
        if isinstance(exc, ValueError) and not isinstance(exc, SETTINGS_ERRORS):
            console.print(f"[red]Cannot open the archive:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        raise
    return client, archive
