"""`gladly-pipeline sweep`: find card numbers, SSNs and IBANs in the archive; plan their erasure."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_OK, EXIT_USAGE

# Not-erasable item ids printed by name; the rest are in the plan's targets.parquet.
_LISTED = 20


def _since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-05-01"
        ) from None


def sweep(
    root: RootOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only items from this UTC day on (YYYY-MM-DD)."),
    ] = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new", help="Only items archived since the last --new sweep (run after each export)."
        ),
    ] = False,
    kinds: Annotated[
        str, typer.Option(help="What to look for, comma-separated: card, ssn, iban.")
    ] = "card,ssn,iban",
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the plan (default: <root>/_plans/sweep-<timestamp>)."),
    ] = None,
) -> None:
    """Find payment card numbers, US SSNs and IBANs in archived messages — nothing is changed.

    Writes a plan of the items found, as `plan` does: `gladly-pipeline apply PLAN --approve
    HASH --execute` redacts chats, emails, SMS, calls and WhatsApp messages, deletes customer
    activities, reports notes and other types Gladly's API cannot erase (erase those in
    Gladly), and erases every found item's copy in the archive. Prints counts per kind and per
    outcome and the ids of items to erase by hand — never a number. Exit codes: 0 nothing found;
    3 found (a plan to approve); 2 bad option or archive.
    """
    from retention_policies.sensitive import parse_kinds
    from retention_policies.sweep_plan import make_sweep

    console = Console(stderr=True)
    try:
        wanted = parse_kinds(kinds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--kinds") from None
    archive_root = resolve_archive_root(root)
    try:
        result = make_sweep(archive_root, wanted, since=_since(since), new=new, out=out)
    except SETTINGS_ERRORS:
        raise
    except (ValueError, FileExistsError) as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    scan = result.scan

    def say(line: str) -> None:
        console.out(line, highlight=False)  # plain lines: no wrapping, however narrow

    head = result.plan.hash[:12] + "… " if result.plan is not None else ""
    say(f"Sensitive-data sweep {head}(nothing changed)")
    mb = scan.text_bytes / 1e6
    say(f"items scanned: {scan.items_scanned:,} ({mb:,.1f} MB of text)")
    say(f"candidates checked: {scan.candidate_rows:,}")
    by_kind = scan.items_by_kind()
    say("items found: " + ", ".join(f"{k} {by_kind[k]:,}" for k in wanted))
    if result.plan is None or result.path is None:
        say("nothing found: no plan written")
        raise typer.Exit(EXIT_OK)
    targets = result.plan.targets
    ops = Counter(targets.column("operation").to_pylist())
    say("by outcome: " + ", ".join(f"{op} {n:,}" for op, n in sorted(ops.items())))
    stuck = [
        (r["target_id"], r["content_type"])
        for r in targets.select(["target_id", "content_type", "operation"]).to_pylist()
        if r["operation"] == "not_erasable_via_api"
    ]
    if stuck:
        say("not erasable via the API (erase these in Gladly; our copy is erased on apply):")
        for item_id, content_type in stuck[:_LISTED]:
            say(f"  item {item_id} ({content_type})")
        if len(stuck) > _LISTED:
            say(f"  … and {len(stuck) - _LISTED:,} more (targets.parquet in the plan)")
    say(f"plan written to {result.path}")
    say(f"plan hash: {result.plan.hash}")
    say(f"next: gladly-pipeline apply {result.path} --approve {result.plan.hash[:12]} --execute")
    raise typer.Exit(EXIT_ATTENTION)
