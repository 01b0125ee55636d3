"""What every `gladly-pipeline` command that talks to Gladly and the archive starts with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from gladly_archive import Archive
from gladly_archive.location import check_archive_root, resolve_archive_root
from gladly_client import GladlyClient, Priority
from gladly_client.budget import budget_kind
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


def client_from_env(priority: Priority = Priority.PROMPT) -> GladlyClient:
    """`GladlyClient.from_env()`, its requests sent at `priority`. With GLADLY_RATE_BUDGET=prefect
    they draw from the Prefect limits every worker shares (`flows.rate_budget`, imported only
    then: Prefect takes seconds to import); otherwise as `from_env` decides (by default a lock
    file shared by this machine's processes)."""
    env = dict(os.environ)
    if budget_kind(env) != "prefect":
        return GladlyClient.from_env(env, priority=priority)
    from flows.rate_budget import paced_client

    return paced_client(env, priority=priority)


@contextmanager
def prefect_paced_client(priority: Priority) -> Iterator[GladlyClient | None]:
    """With GLADLY_RATE_BUDGET=prefect a client from `client_from_env` (closed afterwards), for
    a command whose engine would otherwise build its own; else None, and the engine builds its
    own from the environment as it always does."""
    if budget_kind(dict(os.environ)) != "prefect":
        yield None
        return
    with client_from_env(priority) as client:
        yield client


def connect(root: str | None, console: Console, priority: Priority) -> tuple[GladlyClient, Archive]:
    """A client from the environment (`client_from_env`) and the opened archive.

    Missing or wrong settings raise (GladlySettingsError) for the root command to report
    (exit 78); an archive this release cannot open exits 2, naming why.
    """
    client = client_from_env(priority)
    try:
        archive = Archive.open(resolve_archive_root(root))
    except BaseException as exc:
        client.close()
        if isinstance(exc, ValueError) and not isinstance(exc, SETTINGS_ERRORS):
            console.print(f"[red]Cannot open the archive:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        raise
    return client, archive
