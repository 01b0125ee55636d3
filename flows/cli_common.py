"""What every `gladly-pipeline` command that talks to Gladly and the archive starts with."""

from __future__ import annotations

import typer
from rich.console import Console

from flows.exit_codes import EXIT_USAGE
from flows.exporting import resolve_root
from gladly_archive import Archive
from gladly_client import GladlyClient


def connect(root: str | None, console: Console) -> tuple[GladlyClient, Archive]:
    """A client from the environment and the opened archive; bad settings exit 2, naming them."""
    try:
        return GladlyClient.from_env(), Archive.open(resolve_root(root))
    except ValueError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
