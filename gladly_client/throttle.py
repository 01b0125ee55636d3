"""A thread-safe, per-HTTP-method request pacer that adapts to Gladly's rate-limit answers."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from gladly_client.constants import MIN_REQUESTS_PER_SECOND
from gladly_client.pacing import Pace, Priority, effective_rate, observe, reserve

__all__ = ["MemoryPaces", "PaceStore", "ReportGate", "Throttle"]


class PaceStore(Protocol):
    """Where the methods' `Pace` lives: `locked()` yields them, and keeps what was changed."""

    description: str

    def locked(self) -> AbstractContextManager[dict[str, Pace]]: ...


class MemoryPaces:
    """The paces of one process, in memory."""

    description = "this process only"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paces: dict[str, Pace] = {}

    @contextmanager
    def locked(self) -> Iterator[dict[str, Pace]]:
        with self._lock:
            yield self._paces


class Throttle:
    """Paces requests per HTTP method so our requests stay under our share of Gladly's limit.

    Gladly counts requests per method per organisation, so every method has its own pace
    (`gladly_client.pacing`). Each `acquire` reserves the next free slot under the store's lock
    and sleeps outside it. Slots are `1 / rate` apart, but while the budget is idle (every
    earlier request answered, no pause, no cut, not both priorities about) up to our share's
    per-second count go at once without sleeping; whatever the mix, no one-second window holds
    more than `ceil(rate)` sends. With a shared store (`gladly_client.budget.LockFilePaces`)
    every process of the machine draws from one pace.

    `on_response` adapts the pace to Gladly's answers; a pause it decides voids the slots
    already reserved, and their holders reserve again.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        store: PaceStore | None = None,
    ) -> None:
        if not (math.isfinite(requests_per_second) and requests_per_second > 0):
            raise ValueError(
                f"requests_per_second must be a finite number > 0, got {requests_per_second!r}"
            )
        self._configured = float(requests_per_second)
        # A floor above the configured rate would make a 429 speed the client up.
        self._floor = min(MIN_REQUESTS_PER_SECOND, self._configured)
        self._clock = clock
        self._sleep = sleep
        self._store: PaceStore = store if store is not None else MemoryPaces()

    @property
    def configured_rate(self) -> float:
        """The rate, in requests per second per method, the throttle recovers toward."""
        return self._configured

    @property
    def description(self) -> str:
        """Who shares this pace (for the log line that says how requests are paced)."""
        return self._store.description

    def acquire(self, method: str, priority: Priority = Priority.PROMPT) -> float:
        """Block until a request of `method` may be sent; return the seconds spent waiting."""
        key = method.upper()
        waited = 0.0
        while True:
            with self._store.locked() as paces:
                # Read the clock under the lock so slots are handed out in clock order.
                now = self._clock()
                pace = self._pace(paces, key)
                at, granted = reserve(pace, now, priority, self._configured, self._floor)
                epoch = pace.epoch
            wait = at - now
            # Sleeping outside the lock lets others reserve the following slots meanwhile.
            if wait > 0:
                self._sleep(wait)
                waited += wait
            if granted and (wait <= 0 or self._still_valid(key, epoch)):
                return waited

    def on_response(
        self, method: str, status: int, remaining: int | None, limit: int | None = None
    ) -> None:
        """Adapt `method`'s pace to one answer's status and `Ratelimit-*-Second` headers."""
        with self._store.locked() as paces:
            pace = self._pace(paces, method.upper())
            observe(pace, self._clock(), status, remaining, limit, self._configured, self._floor)

    def current_rate(self, method: str) -> float:
        """The rate, in requests per second, `acquire` currently paces `method` at."""
        with self._store.locked() as paces:
            pace = paces.get(method.upper())
            if pace is None:
                return self._configured
            return effective_rate(pace, self._configured, self._floor, self._clock())

    def _still_valid(self, key: str, epoch: int) -> bool:
        # A pause decided while we slept voids the slot: the window it was in is spent.
        with self._store.locked() as paces:
            return self._pace(paces, key).epoch == epoch

    def _pace(self, paces: dict[str, Pace], key: str) -> Pace:
        pace = paces.get(key)
        if pace is None:
            pace = paces[key] = Pace(rate=self._configured)
        return pace


class ReportGate:
    """The Reports API's own budget: `per_minute` starts in any 60 s, `concurrent` at once.

    Separate from (and on top of) the per-method throttle, which every POST still passes. Sends
    are allowed in a burst while the rolling minute has room; the eleventh waits for the
    oldest start to leave the window. A 429 on a report (another integration spent the
    organisation's minute) fills the window: nothing is sent for the next 60 s.

        with gate.slot():
            ...send one report request...
    """

    WINDOW_SECONDS = 60.0

    def __init__(
        self,
        per_minute: int,
        concurrent: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1 or concurrent < 1:
            raise ValueError(
                f"per_minute and concurrent must be >= 1, got {per_minute} and {concurrent}"
            )
        self.per_minute = per_minute
        self.concurrent = concurrent
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()
        self._in_flight = threading.BoundedSemaphore(concurrent)

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one of the concurrent slots and one start of the minute; yields seconds waited."""
        with self._in_flight:
            waited = 0.0
            while True:
                with self._lock:
                    now = self._clock()
                    while self._starts and now - self._starts[0] >= self.WINDOW_SECONDS:
                        self._starts.popleft()
                    if len(self._starts) < self.per_minute:
                        self._starts.append(now)
                        break
                    wait = self._starts[0] + self.WINDOW_SECONDS - now
                self._sleep(wait)
                waited += wait
            yield waited

    def refused(self) -> None:
        """Gladly answered 429: treat the minute as spent from now on."""
        with self._lock:
            now = self._clock()
            self._starts.clear()
            self._starts.extend([now] * self.per_minute)

    def seconds_for(self, reports: int) -> float:
        """Least time `reports` report requests take under this gate from an empty minute."""
        if reports <= self.per_minute:
            return 0.0
        return math.ceil(reports / self.per_minute - 1) * self.WINDOW_SECONDS
