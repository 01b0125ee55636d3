"""`gladly-pipeline audit report`: an evidence pack a regulator can read, without personal data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE


def audit_report(
    run: Annotated[str | None, typer.Option("--run", help="The audit run id to report on.")] = None,
    subject_email: Annotated[
        str | None,
        typer.Option(help="Report on a data subject by email, matched by its keyed hash."),
    ] = None,
    subject_phone: Annotated[
        str | None,
        typer.Option(help="Report on a data subject by phone, matched by its keyed hash."),
    ] = None,
    root: RootOption = None,
    plans: Annotated[
        Path | None,
        typer.Option(help="Where plans live if not under <root>/_plans (a plan or a parent)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (new or empty); default <root>/_evidence/…"),
    ] = None,
) -> None:
    """Write an evidence pack: report.html, summary.json and events.parquet.

    Choose exactly one of --run, --subject-email, --subject-phone. A subject's email or phone
    is matched by its keyed hash (GLADLY_AUDIT_KEY) and written nowhere. Exit codes: 0 the
    audit chain holds and nothing needs attention; 1 the audit chain is broken or unreadable;
    2 bad options or an unknown run; 3 some targets need attention (failed, not verified,
    blocked, held); 78 GLADLY_AUDIT_KEY is not set.
    """
    from audit_log import AuditError
    from evidence.pack import EvidenceError, build_evidence
    from gladly_archive.keyed import audit_key

    console = Console(stderr=True)
    chosen = [
        name
        for name, v in (
            ("--run", run),
            ("--subject-email", subject_email),
            ("--subject-phone", subject_phone),
        )
        if v is not None
    ]
    if len(chosen) != 1:
        given = f" (got {', '.join(chosen)})" if chosen else ""
        console.print(
            f"[red]Choose exactly one of --run, --subject-email, --subject-phone[/red]{given}"
        )
        raise typer.Exit(EXIT_USAGE)
    # The subject is matched by its keyed hash and the chain is keyed: unset, it exits 78.
    key = audit_key()
    try:
        pack = build_evidence(
            resolve_archive_root(root),
            run_id=run,
            subject_email=subject_email,
            subject_phone=subject_phone,
            plans_dir=plans,
            key=key,
            out_dir=out,
        )
    except EvidenceError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    except AuditError as exc:
        console.print(f"[bold red]Cannot read the audit log:[/bold red] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    summary = pack.summary
    table = Table(title=f"Evidence for {len(summary['runs'])} run(s)")
    table.add_column("outcome")
    table.add_column("targets", justify="right")
    for outcome, count in summary["outcomes"]["total"].items():
        table.add_row(outcome, str(count))
    console.print(table)
    for note in summary["attention"]["notes"]:
        console.print(f"[yellow]attention[/yellow] {note}")
    for path in (pack.html_path, pack.summary_path, pack.events_path):
        console.print(f"wrote {path}")
    chain = summary["chain"]
    if pack.status == "broken":
        console.print(f"[bold red]AUDIT CHAIN BROKEN[/bold red]: {chain['problem']}")
        raise typer.Exit(EXIT_FAILED)
    console.print(f"[green]audit chain holds[/green]; newest hash {chain['last_hash']}")
    if pack.status == "attention":
        console.print(
            f"[yellow]{summary['attention']['targets']} target(s) need attention[/yellow]"
        )
        raise typer.Exit(EXIT_ATTENTION)
    raise typer.Exit(EXIT_OK)
