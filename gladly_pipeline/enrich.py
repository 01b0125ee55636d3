"""`gladly-pipeline enrich`: fetch the facts export files lack, within a call budget."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_client import GladlyError
from gladly_pipeline.common import RootOption, connect
from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK
from ingest.enrich import enrich_archive


def enrich(
    root: RootOption = None,
    max_calls: Annotated[
        int, typer.Option(help="At most this many API calls (Gladly: 10/s shared per method).")
    ] = 2000,
) -> None:
    """Fetch inbox, status and topics of archived conversations, and customers' custom attributes.

    Export files do not carry them, and retention policies that filter on inbox, topic or
    custom attribute need them. Exit 3 when calls are still owed (run it again).
    """
    console = Console(stderr=True)
    client, archive = connect(root, console)
    with client:
        try:
            report = enrich_archive(client, archive, max_calls=max_calls)
        except GladlyError as exc:
            console.print(f"[red]Gladly request failed:[/red] {exc}")
            raise typer.Exit(EXIT_FAILED) from None
    console.print(
        f"fetched {report.conversations_fetched} conversation(s) and "
        f"{report.customers_fetched} profile(s); {report.gone} no longer exist; backlog: "
        f"{report.backlog_conversations} conversation(s), {report.backlog_customers} profile(s)"
    )
    backlog = report.backlog_conversations + report.backlog_customers
    raise typer.Exit(EXIT_ATTENTION if backlog else EXIT_OK)
