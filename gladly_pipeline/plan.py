"""`gladly-pipeline plan`: evaluate retention policies over the archive into a reviewable plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gladly_archive.location import resolve_archive_root
from gladly_pipeline.common import RootOption
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_OK, EXIT_USAGE


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

    Review the plan directory (targets.parquet, held.parquet, summary.json, plan.json); the
    plan hash is what an approver approves: `gladly-pipeline apply PLAN_DIR --approve HASH`.
    Exit codes: 0 planned; 2 invalid policies or holds; 3 planned, but a policy was blocked by
    its limits.
    """
    from retention_policies import PolicyValidationError
    from retention_policies.planning import make_plan

    console = Console(stderr=True)
    archive_root = resolve_archive_root(root)
    try:
        result, target = make_plan(policies, root=archive_root, holds_path=holds, out=out)
    except PolicyValidationError as exc:
        console.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except (ValueError, FileExistsError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    summary = result.summary()
    table = Table(title=f"Retention plan {result.hash[:12]}…")
    table.add_column("policy")
    table.add_column("targets", justify="right")
    table.add_column("held back", justify="right")
    held = summary.get("excluded_by_holds_by_policy", {})
    for policy, count in sorted(summary.get("by_policy", {}).items()):
        table.add_row(str(policy), str(count), str(held.get(policy, 0)))
    console.print(table)
    shown = (
        "by_action",
        "by_operation",
        "not_erasable_via_api_by_content_type",
        "blocked_policies",
    )
    console.print(json.dumps({k: summary[k] for k in shown if k in summary}, indent=2))
    console.print(f"plan written to {target}")
    console.print(f"plan hash: {result.hash}")
    raise typer.Exit(EXIT_ATTENTION if summary.get("blocked_policies") else EXIT_OK)
