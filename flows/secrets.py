"""Settings for a run: the environment first, then Prefect Secret blocks — never a parameter."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flows.rate_budget import RateBudgetError, paced_client
from gladly_client import GladlyClient, Priority

__all__ = ["BLOCKS", "api_reachable", "run_client", "run_env"]

logger = logging.getLogger(__name__)

# Environment variable → the Secret block a deployment's worker may keep it in instead.
BLOCKS: Mapping[str, str] = {
    "GLADLY_BASE_URL": "gladly-base-url",
    "GLADLY_USER": "gladly-user",
    "GLADLY_API_TOKEN": "gladly-api-token",
    "GLADLY_AUDIT_KEY": "gladly-audit-key",
}


def api_reachable(env: Mapping[str, str]) -> bool:
    """Whether a Prefect API answers this process (a flow run, or a configured server)."""
    # Only inside a flow run or with a configured server: asking otherwise would start
    # Prefect's temporary server (10-15 s) just to learn that there are no blocks.
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL

    return bool(env.get("PREFECT_API_URL") or PREFECT_API_URL.value()) or (
        FlowRunContext.get() is not None
    )


def run_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment, with each of BLOCKS that is unset filled from its Secret block
    when a Prefect API is reachable and the block exists. Values never enter a flow parameter,
    a log line or an artifact."""
    merged = dict(os.environ if env is None else env)
    missing = [name for name in BLOCKS if not merged.get(name)]
    if not missing or not api_reachable(merged):
        return merged
    try:
        from prefect.blocks.system import Secret
    except ImportError:  # pragma: no cover - prefect is a dependency
        return merged
    for name in missing:
        try:
            merged[name] = str(Secret.load(BLOCKS[name]).get())  # type: ignore[union-attr]
        except (ValueError, RuntimeError) as exc:
            # No block of that name, or no API to ask: the caller names what is missing.
            logger.debug("no Secret block %s (%s)", BLOCKS[name], type(exc).__name__)
    return merged


def run_client(env: Mapping[str, str], priority: Priority = Priority.PROMPT) -> GladlyClient:
    """The run's Gladly client from `env` (see `run_env`), its requests sent at `priority` and
    paced by the budget `flows.rate_budget.client_budget` picks (Prefect's limits, shared by
    every worker, when they exist). A missing setting fails here, at the flow's first line,
    naming both places it may come from."""
    try:
        return paced_client(env, priority=priority)
    except RateBudgetError:
        raise  # about Prefect's limits, not a setting a Secret block holds
    except ValueError as exc:
        blocks = ", ".join(f"{name} (Secret block {block!r})" for name, block in BLOCKS.items())
        raise ValueError(
            f"{exc}. A deployment reads each from its Prefect Secret block when the worker's "
            f"environment lacks it: {blocks}"
        ) from None
