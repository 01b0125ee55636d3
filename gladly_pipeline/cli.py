"""The `gladly-pipeline` command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gladly_pipeline.alerts import install as alerts_install
from gladly_pipeline.approve import approve
from gladly_pipeline.audit import audit_head, audit_verify
from gladly_pipeline.audit_report import audit_report
from gladly_pipeline.common import client_from_env
from gladly_pipeline.delete import apply, delete, recover
from gladly_pipeline.demo import demo
from gladly_pipeline.enrich import enrich
from gladly_pipeline.errors import PipelineGroup
from gladly_pipeline.exit_codes import EXIT_USAGE
from gladly_pipeline.export import export
from gladly_pipeline.fold import fold
from gladly_pipeline.migrate import migrate
from gladly_pipeline.plan import plan
from gladly_pipeline.policies import holds_hash, validate
from gladly_pipeline.rate_budget import create as rate_budget_create
from gladly_pipeline.rate_budget import show as rate_budget_show
from gladly_pipeline.sql import sql
from gladly_pipeline.status_cli import status
from gladly_pipeline.sweep import sweep
from gladly_pipeline.transcript import transcript
from gladly_pipeline.unlink import unlink

app = typer.Typer(
    name="gladly-pipeline",
    help=(
        "Archive Gladly transcripts to Parquet, apply retention policies as code, and erase "
        "customer data provably.\n\n"
        "New here? Run `gladly-pipeline demo`. The usual path: `export` (archive), `plan` "
        "(what the policies would delete), `apply PLAN --approve HASH --execute`, "
        "`audit verify`. Everything that deletes is a rehearsal until --execute.\n\n"
        "Settings come from the environment: GLADLY_BASE_URL, GLADLY_USER, GLADLY_API_TOKEN, "
        "GLADLY_AUDIT_KEY (keyed hashes of emails and phones), GLADLY_PIPELINE_ROOT (archive).\n\n"
        "A failure prints one or two lines: what went wrong, where, how to fix it (the "
        "traceback only with --debug). Exit codes: 0 done; 1 failed (a job, call or check); "
        "2 bad option, argument or input file, or refused; 3 done, but needs a look; "
        "69 Gladly unreachable or unavailable (connection refused, DNS, timeout, 5xx or 429 "
        "after every retry); 78 configuration (a GLADLY_* setting missing or wrong, the base "
        "URL, credentials refused (401), a permission or role missing (403), an archive root "
        "that is a file or unreadable); 130 interrupted (Ctrl-C: the same command again "
        "resumes)."
    ),
    cls=PipelineGroup,
    no_args_is_help=True,
    add_completion=False,
    # Never locals in a traceback: they hold tokens and customer data.
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="GLADLY_PIPELINE_DEBUG",
            help="On a failure, print the traceback too (GLADLY_PIPELINE_DEBUG=1 does the same).",
        ),
    ] = False,
) -> None:
    """Archive, retain and erase Gladly data."""


app.command(name="export")(export)
app.command(name="enrich")(enrich)
app.command(name="fold")(fold)
app.command(name="migrate")(migrate)
app.command(name="plan")(plan)
app.command(name="sweep")(sweep)
app.command(name="apply")(apply)
app.command(name="approve")(approve)
app.command(name="delete")(delete)
app.command(name="recover")(recover)
app.command(name="unlink")(unlink)
app.command(name="demo")(demo)
app.command(name="status")(status)
app.command(name="transcript")(transcript)
app.command(name="sql")(sql)

audit_app = typer.Typer(
    help="The audit log: verify its keyed chain, print its head, write an auditor's pack.",
    no_args_is_help=True,
)
audit_app.command(name="verify")(audit_verify)
audit_app.command(name="head")(audit_head)
audit_app.command(name="report")(audit_report)
app.add_typer(audit_app, name="audit")

policies_app = typer.Typer(help="Validate retention policies.", no_args_is_help=True)
policies_app.command(name="validate")(validate)
app.add_typer(policies_app, name="policies")

alerts_app = typer.Typer(
    help="Alerts: Prefect automations that notify on the flows' events.", no_args_is_help=True
)
alerts_app.command(name="install")(alerts_install)
app.add_typer(alerts_app, name="alerts")

holds_app = typer.Typer(
    help="Legal holds: hash an email or phone for the registry.", no_args_is_help=True
)
holds_app.command(name="hash")(holds_hash)
app.add_typer(holds_app, name="holds")

rate_budget_app = typer.Typer(
    help="The rate budget every worker shares: Prefect limits, one per HTTP method.",
    no_args_is_help=True,
)
rate_budget_app.command(name="create")(rate_budget_create)
rate_budget_app.command(name="show")(rate_budget_show)
app.add_typer(rate_budget_app, name="rate-budget")


@app.command()
def check() -> None:
    """Check the Gladly settings and that the API answers (reads the export schedules).

    Exit codes: 0 it answered; 78 a setting is missing or wrong, or Gladly refused the
    credentials (401) or the permission (403); 69 Gladly cannot be reached; 1 another refusal.
    """
    with client_from_env() as client:
        schedules = client.exports.list_schedules()
    console.print(
        f"[green]OK[/green] {client.base_url} answered; "
        f"{len(schedules)} export schedule(s): "
        + (", ".join(s.frequency or "?" for s in schedules) or "none")
    )


@app.command()
def sandbox(
    port: int = typer.Option(8080, help="Port to listen on (0 picks a free one)."),
    seed: int = typer.Option(42, help="Seed of the synthetic organisation."),
    customers: int = typer.Option(2000, help="Number of synthetic customers."),
    host: str = typer.Option("127.0.0.1", help="Loopback address to bind (nothing else)."),
    rate_limit: float = typer.Option(10.0, help="Requests/second per HTTP method; 0 = off."),
    other_integrations: float = typer.Option(
        0.0,
        metavar="REQ_PER_S",
        help="Requests/second of each HTTP method the organisation's other integrations send, "
        "sharing the rate limit (below --rate-limit); 0 = none.",
    ),
    latency_ms: float = typer.Option(0.0, help="Milliseconds added to every API answer."),
    frequency: str = typer.Option("DAILY", help="Export schedule: DAILY or HOURLY."),
) -> None:
    """Serve a local Gladly sandbox on loopback until Ctrl-C (prints the settings to paste)."""
    # Imported here so the other commands never load the sandbox and its data generator.
    from gladly_sandbox.serve import build_sandbox, serve

    if frequency not in ("DAILY", "HOURLY"):
        console.print(f"[red]--frequency must be DAILY or HOURLY[/red] (got {frequency!r})")
        raise typer.Exit(EXIT_USAGE)
    try:
        local = build_sandbox(
            host=host,
            port=port,
            seed=seed,
            customers=customers,
            rate_limit=rate_limit,
            other_integrations=other_integrations,
            latency_ms=latency_ms,
            frequency=frequency,
        )
        serve(local)
    except (ValueError, OSError) as exc:  # a bad option, or the port is taken
        console.print(f"[red]Cannot start the sandbox:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
