"""`gladly-pipeline sweep`: find card numbers, SSNs and IBANs in the archive; plan their erasure."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gladly_pipeline.progress import progress_bars

if TYPE_CHECKING:
    from retention_policies.sweep_plan import SweepResult

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
    holds: Annotated[
        Path | None,
        typer.Option(help="Legal hold registry (YAML or CSV): held items stay out of the plan."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the plan (default: <root>/_plans/sweep-<timestamp>)."),
    ] = None,
) -> None:
    """Find payment card numbers, US SSNs and IBANs in archived messages — nothing is changed.

    Writes a plan of the items found, as `plan` does: `gladly-pipeline apply PLAN --approve
    HASH --execute` redacts chats, emails, SMS, calls and WhatsApp messages, deletes customer
    activities, reports notes and other types Gladly's API cannot erase (erase those in
    Gladly), and erases every found item's copy in the archive. With --holds, items a legal
    hold protects are held rows of the plan, never targets (apply re-checks holds either way).
    Prints counts per kind and per outcome and the ids of items to erase by hand — never a
    number. Reads while an export writes. Exit codes: 0 nothing found; 3 found (a plan to
    approve); 2 bad option, holds or archive; 78 --holds without GLADLY_AUDIT_KEY.
    """
    from retention_policies.sensitive import parse_kinds

    console = Console(stderr=True)
    try:
        wanted = parse_kinds(kinds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--kinds") from None
    found = run_sweep(
        console, resolve_archive_root(root), wanted, since=_since(since), new=new, holds=holds,
        out=out, on_error=EXIT_USAGE,
    )  # fmt: skip
    raise typer.Exit(EXIT_ATTENTION if found else EXIT_OK)


def run_sweep(
    console: Console,
    archive_root: str,
    wanted: tuple[str, ...],
    *,
    since: date | None = None,
    new: bool = False,
    holds: Path | None = None,
    out: Path | None = None,
    on_error: int,
) -> bool:
    """Sweep with progress bars and print what was found; True when a plan was written.
    A bad input or an archive that changed under the scan prints one line and exits
    `on_error`, the watermark unmoved."""
    from retention_policies import PolicyValidationError
    from retention_policies.sweep_plan import make_sweep

    try:
        with progress_bars(console) as progress:
            result = make_sweep(
                archive_root, wanted, since=since, new=new, out=out, holds_path=holds,
                progress=progress,
            )  # fmt: skip
    except PolicyValidationError as exc:
        typer.echo(str(exc), err=True)  # one line per problem, however narrow the terminal
        raise typer.Exit(on_error) from None
    except SETTINGS_ERRORS:
        raise
    except (ValueError, FileExistsError) as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(on_error) from None
    except OSError as exc:  # a file a purge or fold replaced while it was read
        console.print(
            f"[red]the archive changed while the sweep read it ({type(exc).__name__}: "
            f"{exc.strerror or 'read failed'}); nothing was written: run it again[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_FAILED) from None
    print_sweep(console, result, wanted)
    return result.plan is not None


def print_sweep(console: Console, result: SweepResult, wanted: tuple[str, ...]) -> None:
    """Counts per kind and per outcome, held items, ids to erase by hand, the plan and the
    command that applies it — never a number found."""
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
        return
    targets = result.plan.targets
    ops = Counter(targets.column("operation").to_pylist())
    outcomes = ", ".join(f"{op} {n:,}" for op, n in sorted(ops.items()))
    say(f"by outcome: {outcomes or 'none (every item found is held)'}")
    if result.held:
        say(f"held (a legal hold protects them; not in the plan's targets): {result.held:,}")
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
