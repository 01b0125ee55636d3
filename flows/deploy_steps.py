"""Steps `prefect deploy` runs (prefect.yaml's build section): the rate budget's limits."""

from __future__ import annotations

import os
from collections.abc import Mapping

from prefect.blocks.system import Secret

from flows.rate_limits import (
    RateBudgetError,
    ensure_limits,
    limit_names,
    prefect_answers,
    require_api,
)
from flows.secrets import BLOCKS
from gladly_client.budget import rate_from_env
from gladly_client.constants import ENV_BASE_URL

__all__ = ["create_rate_limits", "organisation_url"]


def create_rate_limits() -> dict[str, str]:
    """Create or update the limits of the organisation the deployments talk to, so that every
    worker shares its rate budget: GLADLY_BASE_URL from the environment or its Secret block,
    the rate from GLADLY_RATE_SHARE or GLADLY_REQUESTS_PER_SECOND. Idempotent."""
    env = dict(os.environ)
    require_api(env, "creating the rate budget's limits")
    base_url = organisation_url(env)
    rate = rate_from_env(env)
    done = ensure_limits(base_url, rate)
    limits = limit_names(base_url)["GET"].removesuffix("-get") + "-*"
    outcomes = ", ".join(sorted({what for _, what in done}))
    print(f"rate budget: Prefect limits {limits} {outcomes} ({rate:g} requests/s per method)")
    return {"rate_budget": limits}


def organisation_url(env: Mapping[str, str]) -> str:
    """GLADLY_BASE_URL from `env`, else from its Secret block (the token is never read: naming
    the limits needs only the address); a RateBudgetError when neither has it."""
    base_url = env.get(ENV_BASE_URL, "")
    if not base_url:
        with prefect_answers():
            try:
                base_url = str(Secret.load(BLOCKS[ENV_BASE_URL]).get())  # type: ignore[union-attr]
            except ValueError:  # no such block
                base_url = ""
    if not base_url:
        raise RateBudgetError(
            "the rate budget's limits are named after the organisation: set GLADLY_BASE_URL "
            f"or save the Secret block {BLOCKS[ENV_BASE_URL]}"
        )
    return base_url
