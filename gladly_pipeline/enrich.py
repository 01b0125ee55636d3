"""`gladly-pipeline enrich`: fetch the facts export files lack, within a call budget."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gladly_archive.keyed import optional_audit_key
from gladly_client import Priority
from gladly_pipeline.common import RootOption, connect
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gladly_pipeline.export import print_refilled
from gladly_pipeline.progress import progress_bars
from ingest.conversation_facts import ReportColumnError, ReportColumns
from ingest.enrich import EnrichReport, all_profiles, enrich_archive, estimate


def enrich(
    root: RootOption = None,
    policies: Annotated[
        Path | None,
        typer.Option(
            help="Fetch custom attributes only for the customers these policies need "
            "(a policy file or a directory of *.yaml)."
        ),
    ] = None,
    holds: Annotated[
        Path | None,
        typer.Option(help="The legal hold registry the plan will use (holds on attributes)."),
    ] = None,
    all_profiles_: Annotated[
        bool,
        typer.Option(
            "--all-profiles",
            help="Fetch every archived customer's profile not yet fetched (one GET each).",
        ),
    ] = False,
    max_calls: Annotated[
        int,
        typer.Option(help="At most this many API calls, reports included (Gladly: 10/s)."),
    ] = 2000,
    report_columns: Annotated[
        Path | None,
        typer.Option(
            help="TOML file mapping facts to the conversation report's column headers "
            '(e.g. topic_ids = "Topics"), where Gladly\'s differ from the defaults.'
        ),
    ] = None,
    estimate_only: Annotated[
        bool, typer.Option("--estimate", help="Print what it would cost and stop.")
    ] = False,
) -> None:
    """Fetch inbox, status and topics of the archive's conversations, and custom attributes of
    the customers a policy needs.

    Conversation facts come in bulk: Gladly's conversation report over windows of days (its
    own budget: 10 a minute), or, within 24 hours of the last run, only what Gladly's events
    say changed. Custom attributes exist only on the profile (one GET per customer), so they
    are fetched for the customers the --policies' other filters select and whose attributes
    are unknown. Prints the cost before starting and a progress bar while it runs.
    With GLADLY_AUDIT_KEY, a detail `unlink` removed that is back on a profile fetched is
    reported (REFILLED). Exit 0 done; 2 bad options, policies or report columns; 3 calls still
    owed (run it again), or a detail refilled;
    1 Gladly refused a call or a report lacks a column; 69 Gladly unreachable; 78 bad settings.
    """
    console = Console(stderr=True)
    if policies is not None and all_profiles_:
        console.print("[red]--policies and --all-profiles exclude each other[/red]: choose one")
        raise typer.Exit(EXIT_USAGE)
    if holds is not None and policies is None:
        console.print("[red]--holds needs --policies[/red] (holds only matter to a plan)")
        raise typer.Exit(EXIT_USAGE)
    try:
        columns = ReportColumns.load(report_columns) if report_columns else ReportColumns()
    except ValueError as exc:
        console.print(f"[red]--report-columns:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    client, archive = connect(root, console, Priority.BULK)
    candidates = _candidates(archive.root, policies, holds, all_profiles_, archive)
    with client:
        try:
            cost, plan = estimate(client, archive, candidates=candidates)
        except SETTINGS_ERRORS:
            raise  # exit 78, said by the root command
        except ValueError as exc:  # policies or holds that do not load (PolicyValidationError)
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(EXIT_USAGE) from None
        console.print("Enrichment: what it will cost")
        for line in cost.lines():
            console.print(f"  {line}", highlight=False)
        if estimate_only:
            raise typer.Exit(EXIT_OK)
        try:
            with progress_bars(console) as progress:
                report = enrich_archive(
                    client,
                    archive,
                    max_calls=max_calls,
                    candidates=candidates,
                    columns=columns,
                    progress=progress,
                    plan=plan,
                    audit_key=optional_audit_key(),
                )
        except ReportColumnError as exc:
            console.print(f"[red]Enrichment stopped:[/red] {exc}")
            raise typer.Exit(EXIT_FAILED) from None
    for line in summary_lines(report, profiles_asked=candidates is not None):
        console.print(line, highlight=False)
    print_refilled(console, report.refilled)
    raise typer.Exit(EXIT_ATTENTION if report.backlog or report.refilled else EXIT_OK)


def _candidates(
    root: str, policies: Path | None, holds: Path | None, every: bool, archive: object
) -> Callable[[], Iterable[str]] | None:
    if every:
        return lambda: all_profiles(archive)  # type: ignore[arg-type]
    if policies is None:
        return None
    from retention_policies.candidates import profile_candidates

    return lambda: profile_candidates(root, policies, holds_path=holds).customer_ids


def summary_lines(report: EnrichReport, *, profiles_asked: bool) -> list[str]:
    """What a run did, in a few lines (counts only: no id, no personal data)."""
    lines: list[str] = []
    facts = report.facts
    if facts is None:
        lines.append(f"conversation facts: {report.facts_reason}")
    else:
        how = (
            f"{facts.report_calls} report(s)"
            if facts.mode == "reports"
            else f"{facts.events} event(s) read, {facts.changed_conversations} conversation(s) "
            f"changed, {facts.report_calls} report(s) and {facts.get_calls} GET(s)"
        )
        lines.append(
            f"conversation facts ({facts.mode}: {report.facts_reason}): {how}; "
            f"{facts.rows_written} row(s) new or changed"
        )
        if facts.profile_markers:
            lines.append(
                f"profile changes recorded: {facts.profile_markers} ({facts.merges} merge(s)); "
                "their attributes are fetched again when a policy needs them"
            )
        if facts.not_in_reports:
            lines.append(
                f"{facts.not_in_reports} archived conversation(s) are in no report: Gladly no "
                "longer has them (their customer was deleted); policies over their inbox "
                "cannot decide them"
            )
        if facts.incomplete:
            lines.append("the budget ran out before every change was read: run it again")
    if not profiles_asked:
        lines.append(
            "profiles: none fetched (give --policies to fetch the custom attributes they need)"
        )
    else:
        lines.append(
            f"profiles: {report.customers_fetched} fetched of {report.candidates} needed; "
            f"{report.gone} no longer exist; backlog {report.backlog_customers}"
        )
    calls = ", ".join(f"{k} {v}" for k, v in report.calls.items() if v)
    lines.append(f"API calls: {calls or 'none'}")
    return lines
