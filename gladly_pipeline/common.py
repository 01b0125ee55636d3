"""What every `gladly-pipeline` command that talks to Gladly and the archive starts with."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_archive import Archive
from gladly_archive.location import resolve_archive_root
from gladly_client import GladlyClient
from gladly_pipeline.exit_codes import EXIT_USAGE

# The --root option every command that reads or writes the archive takes.
RootOption = Annotated[
    str | None,
    typer.Option(help="Archive root: a path or a pyarrow URI (env GLADLY_PIPELINE_ROOT)."),
]


def connect(root: str | None, console: Console) -> tuple[GladlyClient, Archive]:
    """A client from the environment and the opened archive; bad settings exit 2, naming them."""
    try:
        return GladlyClient.from_env(), Archive.open(resolve_archive_root(root))
    except ValueError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
