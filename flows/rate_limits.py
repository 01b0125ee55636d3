"""The Prefect global concurrency limits that hold an organisation's Gladly rate budget.

One limit per HTTP method (Gladly counts each method separately), named after a digest of the
organisation's address so production and a rehearsal sandbox never share one. The limits run
in rate-limit mode: a request occupies `SLOTS_PER_REQUEST` slots, which decay at that many per
request of our rate. Prefect decays whole slots only, counted from the limit's last update,
so with one slot per request every lease would drop the fraction of a request that had
decayed since the last one (measured: 6.5 of 8 requests/s); a hundred slots a request make
that loss a hundredth. `limit` is the burst, `BURST_REQUESTS` requests: Gladly counts per
one-second window, and two plus our eight per second stay within its ten.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL

from gladly_client import GladlySettingsError
from gladly_client.transport import normalize_base_url

__all__ = [
    "BURST_REQUESTS",
    "CREATE_COMMAND",
    "METHODS",
    "SLOTS_PER_REQUEST",
    "LimitState",
    "RateBudgetError",
    "configured_api",
    "describe_limits",
    "ensure_limits",
    "limit_names",
    "prefect_answers",
    "prefect_client",
    "require_api",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SLOTS_PER_REQUEST = 100
BURST_REQUESTS = 2
CREATE_COMMAND = "gladly-pipeline rate-budget create"
# The states of a limit (LimitState.state).
READY, MISSING, INACTIVE, UNUSABLE = "ready", "missing", "inactive", "unusable"


class RateBudgetError(GladlySettingsError):
    """The Prefect rate budget cannot be used: no Prefect API, or its limits missing or wrong.
    Raised before any request to Gladly is sent; the message names the fix."""


def limit_names(base_url: str) -> dict[str, str]:
    """The limit of each HTTP method for the organisation at `base_url`:
    `gladly-<digest12>-get` and so on."""
    origin = normalize_base_url(base_url).lower()
    digest = hashlib.sha256(origin.encode()).hexdigest()[:12]
    return {method: f"gladly-{digest}-{method.lower()}" for method in METHODS}


def configured_api(env: Mapping[str, str]) -> str | None:
    """The Prefect API this process is set to use (`PREFECT_API_URL`), or None.

    Prefect's temporary server (no URL set) does not count: it lives and dies with one
    process, so limits there would coordinate nothing."""
    return env.get("PREFECT_API_URL") or PREFECT_API_URL.value() or None


def require_api(env: Mapping[str, str], why: str, otherwise: str = "") -> str:
    """The configured Prefect API, or a RateBudgetError saying how to set one (and
    `otherwise`, what else would do)."""
    api = configured_api(env)
    if not api:
        raise RateBudgetError(
            f"{why} needs a Prefect server, and no Prefect API is configured: set "
            f"PREFECT_API_URL (e.g. http://127.0.0.1:4200/api){otherwise}"
        )
    return api


@contextmanager
def prefect_answers() -> Iterator[None]:
    """Turns a Prefect API that does not answer into a RateBudgetError that says so."""
    import httpx

    try:
        yield
    except httpx.HTTPError as exc:
        raise RateBudgetError(
            f"the Prefect API did not answer ({type(exc).__name__}): start the server or "
            "check PREFECT_API_URL"
        ) from None


@contextmanager
def prefect_client() -> Iterator[SyncPrefectClient]:
    """A sync Prefect client; an API that does not answer is a RateBudgetError."""
    with prefect_answers(), get_client(sync_client=True) as client:
        yield client


@dataclass(frozen=True)
class LimitState:
    """One method's limit as Prefect holds it."""

    method: str
    name: str
    state: str  # ready, missing, inactive or unusable
    requests_per_second: float | None = None
    burst: float | None = None

    def line(self) -> str:
        """One short line for a terminal."""
        if self.state == MISSING:
            return f"{self.name}: missing"
        return (
            f"{self.name}: {self.state}, {self.requests_per_second:g} requests/s, "
            f"burst {self.burst:g}"
        )


def _state(method: str, name: str, limit: Any | None) -> LimitState:
    if limit is None:
        return LimitState(method, name, MISSING)
    decay = float(limit.slot_decay_per_second)
    rate, burst = decay / SLOTS_PER_REQUEST, limit.limit / SLOTS_PER_REQUEST
    if not limit.active:
        state = INACTIVE
    elif decay <= 0 or limit.limit < SLOTS_PER_REQUEST:
        state = UNUSABLE  # Prefect would refuse every lease (no decay, or a burst below one)
    else:
        state = READY
    return LimitState(method, name, state, rate, burst)


def _read(client: SyncPrefectClient, name: str) -> Any | None:
    try:
        return client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None


def describe_limits(base_url: str, methods: tuple[str, ...] = METHODS) -> list[LimitState]:
    """The state of the organisation's limits in the configured Prefect server."""
    names = limit_names(base_url)
    with prefect_client() as client:
        return [_state(m, names[m], _read(client, names[m])) for m in methods]


def ensure_limits(base_url: str, rate: float) -> list[tuple[str, str]]:
    """Create or update the organisation's limits for `rate` requests per second per method
    (idempotent); returns each limit's name and `created`, `updated` or `unchanged`."""
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a finite number of requests per second > 0, got {rate!r}")
    limit = BURST_REQUESTS * SLOTS_PER_REQUEST
    decay = rate * SLOTS_PER_REQUEST
    done: list[tuple[str, str]] = []
    with prefect_client() as client:
        for name in limit_names(base_url).values():
            current = _read(client, name)
            if current is None:
                try:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(
                            name=name, limit=limit, slot_decay_per_second=decay, active=True
                        )
                    )
                    done.append((name, "created"))
                    continue
                except ObjectAlreadyExists:  # another deploy made it meanwhile: update it
                    current = _read(client, name)
            if (
                current is not None
                and current.active
                and current.limit == limit
                and math.isclose(current.slot_decay_per_second, decay, rel_tol=1e-9)
            ):
                done.append((name, "unchanged"))
                continue
            client.update_global_concurrency_limit(
                name,
                GlobalConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=decay, active=True),
            )
            done.append((name, "updated"))
    return done
