"""The `gladly-pipeline` command line."""

from __future__ import annotations

import typer
from rich.console import Console

from gladly_client import GladlyClient, GladlyError

app = typer.Typer(
    name="gladly-pipeline",
    help=(
        "Archive Gladly transcripts to Parquet, apply retention policies as code, and erase "
        "customer data provably. Connection settings come from GLADLY_BASE_URL, GLADLY_USER "
        "and GLADLY_API_TOKEN."
    ),
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


@app.callback()
def root() -> None:
    """Archive, retain and erase Gladly data."""


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@app.command()
def check() -> None:
    """Check the Gladly settings and that the API answers (reads the export schedules)."""
    try:
        client = GladlyClient.from_env()
    except ValueError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    with client:
        try:
            schedules = client.exports.list_schedules()
        except GladlyError as exc:
            console.print(f"[red]Gladly did not accept the request:[/red] {exc}")
            raise typer.Exit(EXIT_FAILED) from None
    console.print(
        f"[green]OK[/green] {client.base_url} answered; "
        f"{len(schedules)} export schedule(s): "
        + (", ".join(s.frequency or "?" for s in schedules) or "none")
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
