"""A thread-safe, per-HTTP-method request pacer that adapts to Gladly's rate-limit answers."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gladly_client.constants import (
    MIN_REQUESTS_PER_SECOND,
    RATE_WINDOW_SECONDS,
    THROTTLE_BACKOFF_FACTOR,
    THROTTLE_RECOVERY_PER_SECOND,
)

__all__ = ["ReportGate", "Throttle"]


@dataclass
class _Schedule:
    """Pacing state of one HTTP method. Only read or written under `Throttle._lock`."""

    rate: float
    # Earliest time the next request of this method may be sent (virtual scheduling / GCRA).
    next_free: float = -math.inf
    # Recovery is linear from (anchor_rate at anchor_time); None means "never penalised".
    anchor_rate: float = 0.0
    anchor_time: float | None = None
    # Time of the last multiplicative cut, so one overrun's burst of 429s cuts only once.
    last_cut_time: float | None = None


class Throttle:
    """Paces requests per HTTP method so one client stays under its share of Gladly's limit.

    Gladly counts requests per method per organisation, so every method has its own schedule.
    Each `acquire` reserves the next free slot under a lock and sleeps outside it, so sends are
    spaced exactly `1 / rate` apart with no burst allowance: any closed one-second window holds
    at most `floor(rate) + 1` sends.

    `on_response` adapts the rate: a 429 cuts it (multiplicatively, floored) and pauses the
    method for a window; an exhausted window (`remaining == 0`) pauses without cutting; any other
    response lets the rate climb back linearly toward the configured rate.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
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
        self._lock = threading.Lock()
        self._schedules: dict[str, _Schedule] = {}

    @property
    def configured_rate(self) -> float:
        """The rate, in requests per second per method, the throttle recovers toward."""
        return self._configured

    def acquire(self, method: str) -> float:
        """Block until a request of `method` may be sent; return the seconds spent waiting."""
        with self._lock:
            # Read the clock under the lock so slots are handed out in clock order.
            now = self._clock()
            schedule = self._schedule(method)
            slot = max(now, schedule.next_free)
            schedule.next_free = slot + 1.0 / schedule.rate
        wait = slot - now
        # Sleeping outside the lock lets other threads reserve the following slots meanwhile.
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def on_response(self, method: str, status: int, remaining: int | None) -> None:
        """Adapt `method`'s schedule to one response's status and `Ratelimit-Remaining-Second`."""
        with self._lock:
            now = self._clock()
            schedule = self._schedule(method)
            if status == 429:
                cut_recently = (
                    schedule.last_cut_time is not None
                    and now - schedule.last_cut_time < RATE_WINDOW_SECONDS
                )
                # The 429s of requests already in flight describe the same overrun; cutting for
                # each of them would drop straight to the floor after a single busy second.
                if not cut_recently:
                    schedule.rate = max(self._floor, schedule.rate * THROTTLE_BACKOFF_FACTOR)
                    schedule.last_cut_time = now
                self._anchor(schedule, now)
                schedule.next_free = max(schedule.next_free, now + RATE_WINDOW_SECONDS)
                return
            # Only an answer that is not a 429 earns recovery; silence or 429s prove nothing.
            self._recover(schedule, now)
            if remaining == 0:
                # The organisation's window is spent (perhaps by other integrations): wait it
                # out, keep the rate, and restart recovery since this is no sign of headroom.
                self._anchor(schedule, now)
                schedule.next_free = max(schedule.next_free, now + RATE_WINDOW_SECONDS)

    def current_rate(self, method: str) -> float:
        """The rate, in requests per second, `acquire` currently paces `method` at."""
        with self._lock:
            schedule = self._schedules.get(method.upper())
            return schedule.rate if schedule is not None else self._configured

    def _schedule(self, method: str) -> _Schedule:
        key = method.upper()
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = self._schedules[key] = _Schedule(rate=self._configured)
        return schedule

    def _recover(self, schedule: _Schedule, now: float) -> None:
        # Linear from the last penalty, computed from the clock so no timer thread is needed.
        if schedule.anchor_time is None or schedule.rate >= self._configured:
            return
        elapsed = max(0.0, now - schedule.anchor_time)
        regained = THROTTLE_RECOVERY_PER_SECOND * self._configured * elapsed
        schedule.rate = min(self._configured, schedule.anchor_rate + regained)

    @staticmethod
    def _anchor(schedule: _Schedule, now: float) -> None:
        schedule.anchor_rate = schedule.rate
        schedule.anchor_time = now


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
