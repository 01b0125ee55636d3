"""`gladly-pipeline plan`: evaluate retention policies over the archive into a reviewable plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.errors import SETTINGS_ERRORS
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_OK, EXIT_USAGE
from gladly_pipeline.progress import progress_bars


def plan(
    policies: Annotated[Path, typer.Option(help="A policy file or a directory of *.yaml files.")],
    holds: Annotated[Path | None, typer.Option(help="Legal hold registry (YAML or CSV).")] = None,
    root: RootOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the plan (default: <root>/_plans/<timestamp>)."),
    ] = None,
) -> None:
    """Plan what the policies would delete — nothing is deleted. Prints the summary and hash.

    Per policy: its status, targets and how many customers / conversations / items they are,
    what legal holds kept back (by hold), why it was blocked, and a few sample ids; then the
    totals. The same summary is in the plan directory's summary.json (with targets.parquet,
    held.parquet, plan.json); the plan hash is what an approver approves:
    `gladly-pipeline apply PLAN_DIR --approve HASH`.
    Exit codes: 0 planned; 2 invalid policies or holds; 3 planned, but a policy was blocked (its
    limits, or facts it cannot decide: the summary says why); 78 holds without GLADLY_AUDIT_KEY.
    """
    from retention_policies import PolicyValidationError
    from retention_policies.plan_summary import summary_lines
    from retention_policies.planning import make_plan

    console = Console(stderr=True)
    archive_root = resolve_archive_root(root)
    try:
        with progress_bars(console) as progress:
            result, target = make_plan(
                policies, root=archive_root, holds_path=holds, out=out, progress=progress
            )
    except PolicyValidationError as exc:
        typer.echo(str(exc), err=True)  # one line per problem, however narrow the terminal
        raise typer.Exit(EXIT_USAGE) from None
    except SETTINGS_ERRORS:
        raise  # e.g. holds without GLADLY_AUDIT_KEY: exit 78, said by the root command
    except (ValueError, FileExistsError) as exc:
        console.print(f"[red]{exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    # Printed from summary.json as written, so what the approver reads is what the plan keeps.
    summary = json.loads((target / "summary.json").read_text())
    console.out(f"Retention plan {result.hash[:12]}… (nothing deleted)", highlight=False)
    for line in summary_lines(summary):
        console.out(line, highlight=False)
    console.out(f"plan written to {target}", highlight=False)
    console.out(f"plan hash: {result.hash}", highlight=False)
    raise typer.Exit(EXIT_ATTENTION if summary.get("blocked_policies") else EXIT_OK)
