"""`gladly-pipeline rate-budget create|show`: the Prefect limits every worker's requests share."""

from __future__ import annotations

import os

import typer

from gladly_pipeline.exit_codes import EXIT_ATTENTION, EXIT_OK


def create() -> None:
    """Create or update the Prefect limits of the organisation's rate budget.

    One limit per HTTP method; idempotent. Needs PREFECT_API_URL and GLADLY_BASE_URL (or its
    Secret block); the rate is GLADLY_RATE_SHARE (default 0.8) of Gladly's 10 requests/s, or
    GLADLY_REQUESTS_PER_SECOND. Workers use the limits when GLADLY_RATE_BUDGET is auto (the
    default) or prefect. Exit codes: 0 done; 78 a setting missing, or Prefect unreachable.
    """
    from flows.deploy_steps import organisation_url
    from flows.rate_limits import ensure_limits, require_api
    from gladly_client.budget import rate_from_env

    env = dict(os.environ)
    require_api(env, "gladly-pipeline rate-budget")
    base_url = organisation_url(env)
    rate = rate_from_env(env)
    done = ensure_limits(base_url, rate)
    typer.echo(f"rate budget of {base_url}")
    typer.echo(f"{rate:g} requests/s per method, shared by every worker")
    for name, what in done:
        typer.echo(f"{name}: {what}")
    raise typer.Exit(EXIT_OK)


def show() -> None:
    """Show the Prefect limits of the organisation's rate budget.

    Each method's rate and burst, or that its limit is missing. Exit codes: 0 all ready; 3 one
    is missing, inactive or unusable (`gladly-pipeline rate-budget create` sets them up); 78 a
    setting missing, or Prefect unreachable.
    """
    from flows.deploy_steps import organisation_url
    from flows.rate_limits import CREATE_COMMAND, READY, describe_limits, require_api

    env = dict(os.environ)
    require_api(env, "gladly-pipeline rate-budget")
    base_url = organisation_url(env)
    states = describe_limits(base_url)
    typer.echo(f"rate budget of {base_url}")
    for state in states:
        typer.echo(state.line())
    if any(s.state != READY for s in states):
        typer.echo(f"not ready: `{CREATE_COMMAND}` sets them up")
        raise typer.Exit(EXIT_ATTENTION)
    raise typer.Exit(EXIT_OK)
