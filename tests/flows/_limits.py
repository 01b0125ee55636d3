"""Organisations of their own for the rate-budget tests, and removing their Prefect limits."""

from __future__ import annotations

import contextlib
import uuid

from flows.rate_limits import limit_names


def fresh_org() -> str:
    """An organisation address no other test uses, so its limits are its own."""
    return f"https://org-{uuid.uuid4().hex[:10]}.gladly.com"


def delete_limits(base_url: str) -> None:
    """Remove the organisation's rate limits from the Prefect API in use, if they exist."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in limit_names(base_url).values():
            with contextlib.suppress(ObjectNotFound):
                client.delete_global_concurrency_limit_by_name(name)
