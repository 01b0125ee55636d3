"""Gladly's per-organisation, per-method rate limit: one-second windows or a leaky bucket."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gladly_sandbox.other_integrations import (
    METHODS,
    first_index,
    through_bucket,
    through_window,
)
from gladly_sandbox.settings import RateLimitAlgorithm

HEADER_LIMIT = "Ratelimit-Limit-Second"
HEADER_REMAINING = "Ratelimit-Remaining-Second"
HEADER_RETRY_AFTER = "Retry-After"
REPORT_WINDOW_SECONDS = 60.0  # the Reports API's limit is per minute (rolling, ASSUMPTION)


@dataclass(frozen=True)
class RateDecision:
    """One request's verdict and the numbers for its rate-limit headers."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds until a request of this method would pass again (≥ 1 on 429)

    def headers(self, *, retry_after: bool = False) -> dict[str, str]:
        """`Ratelimit-*` headers (and `Retry-After` on a refusal, when switched on)."""
        headers = {HEADER_LIMIT: str(self.limit), HEADER_REMAINING: str(self.remaining)}
        if retry_after and not self.allowed:
            headers[HEADER_RETRY_AFTER] = str(self.retry_after)
        return headers


@dataclass(frozen=True)
class ReportDecision:
    """Whether a report may start now; when not, why and when one could."""

    allowed: bool
    detail: str = ""
    retry_after: int = 0  # whole seconds (≥ 1 on a refusal)


class RateLimiter:
    """Counts the whole organisation's requests per HTTP method.

    `fixed_window` (default): windows are whole seconds of the monotonic clock; a request is
    allowed while fewer than `limit` of its method were allowed in the current window.
    `leaky_bucket` (DataGrail says Gladly uses one): each method's bucket holds `limit` requests
    and drains at `limit` per second. Both agree on a burst inside one second.
    Refused requests do not count, so a client that backs off gets through next window.

    `others` (requests per second of each method, below `limit`): the organisation's other
    integrations, evenly spaced, counted in the same window or bucket before each decision and
    each stats read; a new rate starts its schedule with the current second.
    """

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}  # method -> (window index, count)
        self._buckets: dict[str, tuple[float, float]] = {}  # method -> (level, at)
        # method -> (rate, algorithm, index of the others' last request counted, when)
        self._others: dict[str, tuple[float, str, int, float]] = {}
        self._others_served: Counter[str] = Counter()
        self._others_refused: Counter[str] = Counter()
        self._report_starts: deque[float] = deque()  # when allowed reports started
        self._reports_in_flight = 0

    def reset(self) -> None:
        """Forget all counts (reports in flight stay in flight)."""
        with self._lock:
            self._windows.clear()
            self._buckets.clear()
            self._others.clear()
            self._others_served.clear()
            self._others_refused.clear()
            self._report_starts.clear()

    def reset_other_integrations(self) -> None:
        """Zero the other integrations' served and refused counts (the stats reset)."""
        with self._lock:
            self._others_served.clear()
            self._others_refused.clear()

    def other_integrations(
        self, limit: float | None, algorithm: RateLimitAlgorithm, others: float
    ) -> dict[str, Any]:
        """The other integrations' served and refused requests, counted up to now, per method."""
        now = self.monotonic()
        with self._lock:
            if limit is not None:
                for method in METHODS:
                    self._count_others(method, limit, algorithm, others, now)
            served, refused = self._others_served, self._others_refused
            by_method = {
                m: {"served": served[m], "refused": refused[m]}
                for m in sorted(served.keys() | refused.keys())
            }
            return {
                "served": sum(served.values()),
                "refused": sum(refused.values()),
                "by_method": by_method,
            }

    def start_report(self, per_minute: int | None, concurrent: int | None) -> ReportDecision:
        """Count a report that starts now, unless one of the Reports API's limits is reached.

        `per_minute`: reports started in the last 60 seconds of the monotonic clock;
        `concurrent`: reports in flight. None (or 0) switches a limit off. A refused report
        does not count; an allowed one must be ended with `end_report`.
        """
        now = self.monotonic()
        with self._lock:
            starts = self._report_starts
            while starts and starts[0] <= now - REPORT_WINDOW_SECONDS:
                starts.popleft()
            if per_minute and len(starts) >= per_minute:
                wait = starts[len(starts) - per_minute] + REPORT_WINDOW_SECONDS - now
                return ReportDecision(
                    False,
                    f"report rate limit reached: {per_minute} report requests per minute",
                    max(1, math.ceil(wait)),
                )
            if concurrent and self._reports_in_flight >= concurrent:
                return ReportDecision(
                    False,
                    f"report concurrency limit reached: {concurrent} reports at a time",
                    1,
                )
            starts.append(now)
            self._reports_in_flight += 1
            return ReportDecision(True)

    def end_report(self) -> None:
        """A report started with `start_report` has been answered."""
        with self._lock:
            self._reports_in_flight = max(0, self._reports_in_flight - 1)

    def reports_in_flight(self) -> int:
        """How many reports are being made right now."""
        with self._lock:
            return self._reports_in_flight

    def hit(
        self,
        method: str,
        limit: float,
        algorithm: RateLimitAlgorithm = "fixed_window",
        others: float = 0.0,
    ) -> RateDecision:
        """Count one request of `method` and decide whether it passes."""
        return self._decide(method, limit, algorithm, others, count=True)

    def peek(
        self,
        method: str,
        limit: float,
        algorithm: RateLimitAlgorithm = "fixed_window",
        others: float = 0.0,
    ) -> RateDecision:
        """The current numbers without counting a request (for answers sent before the limit)."""
        return self._decide(method, limit, algorithm, others, count=False)

    def _count_others(
        self, method: str, limit: float, algorithm: RateLimitAlgorithm, others: float, now: float
    ) -> None:
        """Count the other integrations' requests of `method` scheduled up to `now`."""
        known = self._others.get(method)
        if others <= 0:
            self._others[method] = (0.0, algorithm, 0, now)
            return
        # The settings keep `others` below the limit; a read torn by a change must not break.
        rate = min(float(others), float(limit))
        if known is not None and known[:2] == (rate, algorithm):
            last = known[2]
        else:  # a new rate or algorithm starts its schedule afresh
            last = first_index(rate, now, None if known is None else known[3])
        if algorithm == "leaky_bucket":
            bucket = self._buckets.get(method)
            arrivals, bucket = through_bucket(rate, float(limit), int(limit), last, now, bucket)
            if bucket is not None:
                self._buckets[method] = bucket
        else:
            stored = self._windows.get(method)
            window, used = stored if stored is not None else (None, 0)
            arrivals, window, used = through_window(rate, int(limit), last, now, window, used)
            self._windows[method] = (window, used)
        self._others[method] = (rate, algorithm, arrivals.last, now)
        if arrivals.served:
            self._others_served[method] += arrivals.served
        if arrivals.refused:
            self._others_refused[method] += arrivals.refused

    def _decide(
        self,
        method: str,
        limit: float,
        algorithm: RateLimitAlgorithm,
        others: float,
        *,
        count: bool,
    ) -> RateDecision:
        now = self.monotonic()
        capacity = int(limit)
        with self._lock:
            self._count_others(method, limit, algorithm, others, now)
            if algorithm == "leaky_bucket":
                return self._leaky(method, float(limit), capacity, now, count)
            window = math.floor(now)
            seen_window, seen = self._windows.get(method, (window, 0))
            used = seen if seen_window == window else 0
            allowed = used < capacity
            if count and allowed:
                used += 1
                self._windows[method] = (window, used)
            return RateDecision(
                allowed=allowed if count else True,
                limit=capacity,
                remaining=max(0, capacity - used),
                retry_after=max(1, math.ceil(window + 1 - now)),
            )

    def _leaky(
        self, method: str, rate: float, capacity: int, now: float, count: bool
    ) -> RateDecision:
        level, at = self._buckets.get(method, (0.0, now))
        level = max(0.0, level - (now - at) * rate)
        allowed = level + 1.0 <= capacity + 1e-9
        if count and allowed:
            level += 1.0
        if count:
            self._buckets[method] = (level, now)
        wait = (level + 1.0 - capacity) / rate
        return RateDecision(
            allowed=allowed if count else True,
            limit=capacity,
            remaining=max(0, math.floor(capacity - level + 1e-9)),
            retry_after=max(1, math.ceil(wait)),
        )
