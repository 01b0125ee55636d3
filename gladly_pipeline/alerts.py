"""`gladly-pipeline alerts install`: Prefect automations that notify on our flows' events."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_pipeline.exit_codes import EXIT_OK, EXIT_USAGE


def install(
    block: Annotated[
        str,
        typer.Option(
            help="The Prefect notification block to notify through, as <block-type>/<name> "
            "(e.g. slack-webhook/compliance or custom-webhook/gladly-alerts)."
        ),
    ],
    approval_hours: Annotated[
        float, typer.Option(help="Notify when a plan has waited this long for approval.")
    ] = 72.0,
) -> None:
    """Create (or replace) the automations that notify when an export job is about to expire
    unarchived, an erased customer reappears, an erasure run has failed targets, or a plan has
    waited too long for approval. Needs PREFECT_API_URL; run it again after changing the block.
    """
    from flows.alerts import install_automations

    console = Console(stderr=True)
    try:
        names = install_automations(block, approval_hours=approval_hours)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_USAGE) from None
    for name in names:
        console.print(f"automation: {name}", highlight=False)
    raise typer.Exit(EXIT_OK)
