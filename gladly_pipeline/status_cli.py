"""`gladly-pipeline status`: the state of the system in one place, read from the archive."""

from __future__ import annotations

import json
import textwrap
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gladly_archive.keyed import optional_audit_key
from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption, client_from_env
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE


def status(
    root: RootOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (docs/status.schema.json).")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also list Gladly's export jobs (GLADLY_BASE_URL, GLADLY_USER, "
            "GLADLY_API_TOKEN) to find those not archived and when Gladly deletes them.",
        ),
    ] = False,
) -> None:
    """Show the state of the system: last export, export jobs not archived (--live), enrichment,
    plans awaiting approval, interrupted or failed erasure requests, reappeared customers and
    the audit log's head.

    Reads the archive and its audit log only, and changes nothing; with GLADLY_AUDIT_KEY the
    audit chain is verified and reappeared customers are matched. Prints ids and counts, never
    personal data. Exit codes: 0 nothing needs attention; 3 something does (an unarchived job
    within 2 days of Gladly deleting it or one Gladly failed, a plan awaiting approval over
    72 h, a failed or interrupted request, a reappeared customer, a chain that does not
    verify); 2 the root is not an archive, or bad settings for --live; 1 the archive cannot be
    read, or Gladly failed (--live).
    """
    from gladly_archive import ArchiveError
    from gladly_client import GladlyError
    from gladly_pipeline.status import read_status
    from ingest.status_sections import NotAnArchiveError

    err = Console(stderr=True)
    where = resolve_archive_root(root)
    client = None
    if live:
        try:
            client = client_from_env()
        except ValueError as exc:
            err.print(f"[red]Configuration error:[/red] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from None
    try:
        with client if client is not None else nullcontext():
            state = read_status(
                where, now=datetime.now(UTC), audit_key=optional_audit_key(), client=client
            )
    except NotAnArchiveError as exc:
        err.print(escape(str(exc)), highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except GladlyError as exc:
        err.print(f"[red]Gladly request failed:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILED) from None
    except ArchiveError as exc:  # e.g. an archive of an older layout: named, never guessed at
        err.print(f"[red]Cannot read the archive:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps(state.status_json(), indent=2))
    else:
        _print_lines(Console(highlight=False), state.status_lines())
    raise typer.Exit(EXIT_ATTENTION if state.attention() else EXIT_OK)


def _print_lines(out: Console, lines: list[str]) -> None:
    """Each line wrapped to the terminal, its continuation keeping its indent, so that every
    section stays a block at 40 columns as at 80; headings in bold. No markup is read."""
    for line in lines:
        text = line.lstrip(" ")
        indent = len(line) - len(text)
        width = max(16, out.width - indent)
        pieces = textwrap.wrap(text, width=width, break_on_hyphens=False) or [""]
        for piece in pieces:
            out.print(
                " " * indent + piece,
                style="bold" if text and not indent else None,
                markup=False,
                soft_wrap=True,
            )
