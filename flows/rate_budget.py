"""The organisation's Gladly rate budget shared by every worker, through Prefect's limits.

`GLADLY_RATE_BUDGET=prefect` (or `auto`, when the limits exist) paces each process with its own
`Throttle` (spacing, and adapting to Gladly's answers) and, before each send, takes one slot of
the method's Prefect global concurrency limit (`flows.rate_limits`), which caps all workers
together at our share of Gladly's limit.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from prefect.client.orchestration import get_client
from prefect.context import SettingsContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

from flows.rate_limits import (
    BURST_REQUESTS,
    CREATE_COMMAND,
    INACTIVE,
    MISSING,
    READY,
    SLOTS_PER_REQUEST,
    RateBudgetError,
    configured_api,
    describe_limits,
    ensure_limits,
    limit_names,
    require_api,
)
from gladly_client import GladlyClient, LockFilePaces, Priority, RateBudget, Throttle
from gladly_client.budget import budget_file_from_env, budget_kind, rate_from_env
from gladly_client.constants import ENV_BASE_URL
from gladly_client.throttle import PaceStore

__all__ = [
    "PrefectBudget",
    "PrefectSlots",
    "RateBudgetError",
    "client_budget",
    "describe_limits",
    "ensure_limits",
    "paced_client",
    "retry_delay",
]

logger = logging.getLogger(__name__)

# A PROMPT caller denied a slot asks again within this part of one request's interval.
PROMPT_RETRY_INTERVALS = 0.5
# Waiting this long for slots is said once in the log: other workers hold the whole budget.
WAIT_WARNING_SECONDS = 60.0
# Prefect busy (SQLite's 503 to concurrent writes, 429, 502) or unreachable: asked again after
# these doubling pauses, until it has not answered for GIVE_UP_SECONDS.
BUSY_STATUSES = frozenset({408, 429, 502, 503})
BUSY_FIRST_SECONDS = 0.02
BUSY_MAX_SECONDS = 2.0
GIVE_UP_SECONDS = 30.0


class SlotLeaser(Protocol):
    """Leases slots of a rate limit: None when granted, else the seconds to wait first."""

    def lease(self, name: str, slots: int) -> float | None: ...


class PrefectSlots:
    """Leases slots of Prefect global concurrency limits in rate-limit mode.

    The client's `increment_concurrency_slots` rather than `prefect.concurrency.sync.
    rate_limit(strict=True)`: that helper waits out every 423 with the server's Retry-After
    itself (no room for a priority) and emits a Prefect event per acquisition, which at
    several leases a second would fill the server's event table. Prefect's client's own
    retries are bypassed: a busy SQLite server answers 503 to concurrent writes, which that
    client waits out for about two seconds (even with retries set to 0, measured); this asks
    again within tens of milliseconds, and gives up (fail closed) only when Prefect has not
    answered for `give_up_seconds` (30 s).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        give_up_seconds: float = GIVE_UP_SECONDS,
    ) -> None:
        # Built here, in the caller's thread: Prefect's settings (the API URL) live in a context
        # variable that the threads sending Gladly requests would not see.
        context = SettingsContext.get()
        assert context is not None  # Prefect always has a global settings context
        self._profile = context.profile
        self._settings = context.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: 0})
        with self._settings_context():
            # A busy answer is raised from inside httpx, before Prefect's client can sleep on it.
            hooks = {"response": [_raise_busy]}
            self._client = get_client(httpx_settings={"event_hooks": hooks}, sync_client=True)
            self._client.__enter__()
        self._closer = weakref.finalize(self, self._client.__exit__, None, None, None)
        self._clock = clock
        self._sleep = sleep
        self._give_up = give_up_seconds

    def lease(self, name: str, slots: int) -> float | None:
        """Occupy `slots` of limit `name`; None when granted, else Prefect's Retry-After."""
        failing_since: float | None = None
        failures = 0
        while True:
            try:
                with self._settings_context():
                    granted = self._client.increment_concurrency_slots(
                        names=[name], slots=slots, mode="rate_limit"
                    ).json()
                break
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                if status == 423:
                    return _seconds(exc.response.headers.get("Retry-After"))
                raise RateBudgetError(
                    f"Prefect refused a slot of the rate limit {name} ({status}): set the "
                    f"limits up again with `{CREATE_COMMAND}`"
                ) from None
            except _Busy as busy:
                why = str(busy.status)
            except httpx.TransportError as exc:
                why = type(exc).__name__
            now = self._clock()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since > self._give_up:
                raise RateBudgetError(
                    f"the Prefect API has not answered the rate budget for "
                    f"{self._give_up:g} s ({why}); nothing was sent to Gladly: start the "
                    "server or check PREFECT_API_URL"
                )
            self._sleep(min(BUSY_MAX_SECONDS, BUSY_FIRST_SECONDS * 2**failures))
            failures += 1
        if not granted:  # Prefect's answer for a limit that does not exist: no limiting at all
            raise RateBudgetError(
                f"the rate limit {name} does not exist in Prefect; nothing was sent to Gladly: "
                f"create the limits with `{CREATE_COMMAND}`"
            )
        return None

    def close(self) -> None:
        """Close the connection to the Prefect API."""
        self._closer()

    def _settings_context(self) -> SettingsContext:
        # A new one each time: a context can be entered once at a time, and threads lease
        # different methods at once.
        return SettingsContext(profile=self._profile, settings=self._settings)


class _Busy(Exception):
    """Prefect answered that it is busy (BUSY_STATUSES): ask again shortly."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _raise_busy(response: httpx.Response) -> None:
    if response.status_code in BUSY_STATUSES:
        raise _Busy(response.status_code)


def _seconds(header: str | None) -> float:
    try:
        value = float(header or "nan")
    except ValueError:
        value = math.nan
    return value if math.isfinite(value) and value >= 0 else math.nan


def retry_delay(retry_after: float, priority: Priority, rate: float) -> float:
    """How long a caller waits before asking again for a slot it was denied.

    PROMPT asks again within half a request's interval (a denial costs Prefect one update and
    does not slow the limit's decay, measured); BULK waits Prefect's Retry-After, which grows
    with the slots others were denied, and one request's interval more. So when both wait,
    PROMPT takes the slot that frees next (measured: about 85 % of the slots both wanted).
    """
    interval = 1.0 / rate
    if math.isnan(retry_after):
        retry_after = interval
    if priority is Priority.PROMPT:
        return min(retry_after, PROMPT_RETRY_INTERVALS * interval)
    return retry_after + interval


@dataclass
class _Slots:
    """One method's slots leased and not yet used, and who is waiting for them."""

    ready: threading.Condition = field(default_factory=threading.Condition)
    count: int = 0
    expires: float = -math.inf
    leasing: bool = False
    prompt_waiting: int = 0


class PrefectBudget:
    """A `RateBudget` shared by every worker of an organisation, on every machine.

    Before each send a request takes one slot leased from its method's Prefect limit, then
    passes a `Throttle`, which spaces the sends and pauses on Gladly's 429 and a spent window;
    with `paces` from a lock file (as `client_budget` builds it) that throttle is shared by the
    workers of this machine, so one worker's pause holds its neighbours too. One thread per
    method talks to Prefect at a time and leases `batch` requests' worth per round trip; a
    leased slot not used within its share of time (batch / rate after the lease) is dropped,
    so slots saved up never make a burst.
    """

    def __init__(
        self,
        base_url: str,
        requests_per_second: float,
        *,
        slots: SlotLeaser | None = None,
        batch: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        paces: PaceStore | None = None,
    ) -> None:
        if not 1 <= batch <= BURST_REQUESTS:
            raise ValueError(
                f"batch must be 1 to {BURST_REQUESTS} (a lease cannot exceed the burst), "
                f"got {batch}"
            )
        self._names = limit_names(base_url)
        # `paces`: this machine's shared paces (a lock file), so that a pause one worker
        # decides on Gladly's answers holds its neighbours too; memory when not given.
        self._throttle = Throttle(requests_per_second, clock=clock, sleep=sleep, store=paces)
        self._leaser = slots if slots is not None else PrefectSlots()
        self._batch = batch
        self._clock = clock
        self._sleep = sleep
        self._slots = {method: _Slots() for method in self._names}
        prefix = self._names["GET"].removesuffix("-get")
        self.description = f"Prefect limits {prefix}-* (shared by every worker)"

    @property
    def configured_rate(self) -> float:
        """This process's pace in requests per second per method (the limits cap all)."""
        return self._throttle.configured_rate

    def current_rate(self, method: str) -> float:
        """The rate this process currently paces `method` at."""
        return self._throttle.current_rate(method)

    def acquire(self, method: str, priority: Priority = Priority.PROMPT) -> float:
        """Block until a request of `method` may be sent; return the seconds waited."""
        started = self._clock()
        self._take_slot(method.upper(), priority)
        self._throttle.acquire(method, priority)
        return self._clock() - started

    def on_response(
        self, method: str, status: int, remaining: int | None, limit: int | None = None
    ) -> None:
        """Adapt this process's pace to one of Gladly's answers."""
        self._throttle.on_response(method, status, remaining, limit)

    def _take_slot(self, method: str, priority: Priority) -> None:
        slots = self._slots.get(method)
        if slots is None:
            raise ValueError(f"no rate limit for HTTP method {method!r}")
        prompt = priority is Priority.PROMPT
        with slots.ready:
            slots.prompt_waiting += prompt
            try:
                while True:
                    if slots.count > 0 and self._clock() < slots.expires:
                        slots.count -= 1
                        return
                    if not slots.leasing:
                        slots.leasing = True
                        break
                    slots.ready.wait()
            finally:
                slots.prompt_waiting -= prompt
        granted = False
        try:
            self._lease(method, slots, prompt)
            granted = True
        finally:
            with slots.ready:
                slots.leasing = False
                if granted:
                    slots.count = self._batch - 1
                    slots.expires = self._clock() + self._batch / self.configured_rate
                slots.ready.notify_all()

    def _lease(self, method: str, slots: _Slots, prompt: bool) -> None:
        name = self._names[method]
        started = self._clock()
        warned = False
        units = self._batch * SLOTS_PER_REQUEST
        while (retry_after := self._leaser.lease(name, units)) is not None:
            # The leaser asks for whoever waits: promptly if any PROMPT caller does.
            with slots.ready:
                urgent = prompt or slots.prompt_waiting > 0
            priority = Priority.PROMPT if urgent else Priority.BULK
            self._sleep(retry_delay(retry_after, priority, self.configured_rate))
            if not warned and self._clock() - started > WAIT_WARNING_SECONDS:
                warned = True
                _run_logger().warning(
                    "rate budget: waited %.0f s for a %s slot of %s; other workers hold the "
                    "organisation's budget",
                    self._clock() - started,
                    method,
                    name,
                )


def client_budget(env: Mapping[str, str], base_url: str, rate: float) -> RateBudget | None:
    """The budget `GLADLY_RATE_BUDGET` asks for when Prefect keeps it, or None.

    `prefect`: a PrefectBudget, or a RateBudgetError when no Prefect API is configured or the
    limits are missing or unusable. `auto`: a PrefectBudget when a Prefect API is configured
    and the limits exist, else None (the caller then shares a lock file between this
    machine's processes, `GladlyClient.from_env`). `machine`, `process`: None. Logs one line
    saying which budget paces the requests.
    """
    kind = budget_kind(env)
    if kind in ("machine", "process"):
        return None
    why = "GLADLY_RATE_BUDGET=prefect"
    if kind == "prefect":
        require_api(
            env,
            why,
            ", or set GLADLY_RATE_BUDGET=machine to share the budget between this machine's "
            "processes only",
        )
    elif not configured_api(env):
        _announce("rate budget: this machine's processes (no Prefect API configured)")
        return None
    try:
        states = describe_limits(base_url)
    except RateBudgetError:
        if kind == "prefect":
            raise
        _announce("rate budget: this machine's processes (the Prefect API did not answer)")
        return None
    unready = [s for s in states if s.state != READY]
    if (
        kind == "auto"
        and len(unready) == len(states)
        and all(s.state in (MISSING, INACTIVE) for s in unready)
    ):
        prefix = states[0].name.removesuffix("-get")
        _announce(
            f"rate budget: this machine's processes (no active Prefect limits {prefix}-*; "
            f"`{CREATE_COMMAND}` shares it between every worker)"
        )
        return None
    if unready:
        listed = ", ".join(f"{s.name} {s.state}" for s in unready)
        raise RateBudgetError(
            f"the rate budget's Prefect limits are not ready ({listed}); nothing was sent to "
            f"Gladly: set them up with `{CREATE_COMMAND}`"
        )
    paces = LockFilePaces(budget_file_from_env(env, base_url))
    budget = PrefectBudget(base_url, rate, paces=paces)
    _announce(f"rate budget: {budget.description}, at most {rate:g} requests/s per method here")
    return budget


def paced_client(env: Mapping[str, str], *, priority: Priority = Priority.PROMPT) -> GladlyClient:
    """`GladlyClient.from_env(env)` paced by `client_budget` when it gives a budget."""
    base_url = env.get(ENV_BASE_URL, "")
    # Without a base URL from_env says what is missing; the budget is named after it.
    budget = client_budget(env, base_url, rate_from_env(env)) if base_url else None
    if budget is None:
        return GladlyClient.from_env(env, priority=priority)
    return GladlyClient.from_env(env, budget=budget, priority=priority)


def _announce(line: str) -> None:
    _run_logger().info(line)


def _run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    # The run's log when there is a run (its UI shows it), else this module's.
    try:
        return get_run_logger()
    except MissingContextError:
        return logger
