"""`gladly-pipeline audit verify` and `audit head`: the audit log's keyed chain, checked."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from audit_log import ChainReport, verify_chain
from gladly_archive.keyed import audit_key
from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_FAILED, EXIT_OK


def _verified(root: str | None, expect_head: str | None, console: Console) -> ChainReport:
    key = audit_key()  # unset: SettingError, exit 78 (said by the root command)
    report = verify_chain(resolve_archive_root(root), key=key, expect_head=expect_head)
    for run in report.unsealed:
        console.print(f"[yellow]unsealed run[/yellow] {run} (sealed by the next engine run)")
    if not report.ok:
        console.print(f"[bold red]AUDIT CHAIN BROKEN[/bold red]: {report.problem}")
        raise typer.Exit(EXIT_FAILED)
    return report


def audit_verify(
    root: RootOption = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="A head printed earlier by `audit head` (kept outside this machine): fails if "
            "the events it covers were removed or rewritten since."
        ),
    ] = None,
) -> None:
    """Check the audit log's keyed hash chain: every event, sealed or not, in order, unaltered.

    The chain is keyed with GLADLY_AUDIT_KEY, so nobody without the key can rewrite it and
    recompute it. Removing the newest events leaves a shorter valid chain: only a head kept
    elsewhere (--expect-head) reveals that. Exit codes: 0 the chain holds; 1 an event was
    altered, removed or reordered, or there is no audit log (the problem is named); 78 no key.
    """
    console = Console(stderr=True)
    report = _verified(root, expect_head, console)
    kept = "; the kept head is covered" if expect_head else ""
    console.print(
        f"[green]audit chain holds[/green]: {report.runs} run(s), {report.events} event(s)"
        f"{kept}; head {report.head}"
    )
    raise typer.Exit(EXIT_OK)


def audit_head(root: RootOption = None) -> None:
    """Print the verified chain's head (event count and keyed hash) on standard output.

    Keep it somewhere this machine cannot change (a ticket, an auditor's mail); later,
    `audit verify --expect-head HEAD` proves no event it covers was removed or rewritten."""
    console = Console(stderr=True)
    report = _verified(root, None, console)
    typer.echo(report.head)
    raise typer.Exit(EXIT_OK)
