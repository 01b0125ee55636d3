"""`gladly-pipeline demo`: export, plan, approve, delete, purge, verify — against a sandbox."""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gladly_pipeline.exit_codes import EXIT_FAILED, EXIT_OK


def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes (replaced each run).")] = Path(
        "demo-output"
    ),
    customers: Annotated[int, typer.Option(help="Synthetic customers in the sandbox.")] = 400,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic organisation.")] = 42,
) -> None:
    """Run the main job end to end against a local sandbox Gladly and show what happened.

    Starts a sandbox organisation, exports its transcripts to Parquet, plans the shipped
    retention policies, approves the plan (explicitly, as a stand-in approver), deletes and
    redacts through the API, purges our own archive, and verifies the audit chain. Nothing
    reaches the internet and nothing is left running.
    """
    from gladly_pipeline.demo_run import run_demo

    console = Console()
    say = wrapped_printer(console)
    result = run_demo(out, customers=customers, seed=seed, say=say)
    report, chain = result.report, result.chain
    assert report is not None
    assert chain is not None
    table = Table(title="What happened to each planned target")
    table.add_column("outcome")
    table.add_column("targets", justify="right")
    for outcome, count in report.counts().items():
        table.add_row(outcome, f"{count:,}")
    console.print(table)
    removed = sum(report.purge.get("rows_removed", {}).values()) if report.purge else 0
    say(
        f"API calls {dict(sorted(report.api_calls.items()))}; {report.tombstoned} tombstone(s); "
        f"{removed:,} row(s) of deleted customers purged from our archive."
    )
    verdict = "[green]holds[/green]" if chain.ok else f"[red]BROKEN[/red]: {chain.problem}"
    say(f"Audit chain {verdict}: {chain.runs} run(s), {chain.events:,} event(s).")
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    say(f"Timings: {timings}.")
    query = "SELECT channel, count(*) AS items FROM items GROUP BY 1 ORDER BY 2 DESC"
    say("\n[bold]Where the files are[/bold]")
    say(f"  archive (Parquet)  {result.root}")
    say(f"  the approved plan  {result.plan_dir}")
    say(f"  audit log          {result.root / '_audit'}")
    say(f"  tombstones         {result.root / 'tombstones'}")
    if result.evidence:
        say(f"  evidence pack      {result.evidence}")
    say("\n[bold]Try a query[/bold] (views: docs/datasets.md; also in gladly.duckdb)")
    root = shlex.quote(str(result.root))
    console.print(f'  .venv/bin/gladly-pipeline sql "{query}" --root {root}', soft_wrap=True)
    conversation = _noted_conversation(result.root)
    if conversation is not None:
        say("[bold]Read a conversation[/bold] (one with an internal note)")
        console.print(
            f"  .venv/bin/gladly-pipeline transcript {conversation} --root {root}",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_OK if chain.ok and report.ok else EXIT_FAILED)


def wrapped_printer(console: Console) -> Callable[[str], None]:
    """A `print` that wraps prose at the console's width between words, continuing a line
    under its own indent plus three, and never inside a word: a path or a command too long
    for the line stays whole (the terminal folds it) instead of being cut where rich would."""
    width = max(console.width, 40)

    def say(text: str = "") -> None:
        for line in str(text).split("\n"):
            indent = len(line) - len(line.lstrip(" "))
            parts = textwrap.wrap(
                line.strip(),
                width=width,
                initial_indent=" " * indent,
                subsequent_indent=" " * (indent + 3),
                break_long_words=False,
                break_on_hyphens=False,
            )
            for part in parts or [""]:
                console.print(part, soft_wrap=True, highlight=False)

    return say


def _noted_conversation(root: Path) -> str | None:
    """The conversation with the most items among those holding an internal note."""
    import pyarrow.compute as pc

    from gladly_archive import Archive

    table = (
        Archive.open(root)
        .dataset("transcripts")
        .to_table(columns=["conversation_id", "item_count"], filter=pc.field("internal_notes") > 0)
    )
    if table.num_rows == 0:
        return None
    table = table.sort_by([("item_count", "descending"), ("conversation_id", "ascending")])
    return str(table.column("conversation_id")[0].as_py())
