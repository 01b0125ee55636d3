"""Virtual time for the throttle tests: `clock` and `sleep` that never sleep for real."""

from __future__ import annotations

import threading
import time

# Real seconds a simulated thread may stay blocked before the test calls it a deadlock.
DEADLOCK_SECONDS = 20.0


class VirtualClock:
    """Shared virtual time for the throttle's `clock` and `sleep`.

    Without registered workers, `sleep(d)` simply advances time to max(now, now_at_call + d).
    With workers (threads registered through `enter` and released through `leave`) it is a
    discrete-event simulation: a sleeping worker blocks until time reaches its wake-up, and time
    only moves, to the earliest pending wake-up, once every worker is asleep. So a worker reads
    exactly its reserved slot from `clock()` after `acquire` returns, never a time another
    thread's later slot has already pushed the clock to.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._workers = 0
        self._running = 0
        self._sleepers: list[list[float | bool]] = []  # [wake_time, woken]

    def __call__(self) -> float:
        with self._cond:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._cond:
            wake = self._now + max(0.0, seconds)
            if self._workers == 0:
                self._now = max(self._now, wake)
                return
            entry: list[float | bool] = [wake, False]
            self._sleepers.append(entry)
            self._running -= 1
            self._advance_if_idle()
            deadline = time.monotonic() + DEADLOCK_SECONDS
            while not entry[1]:
                if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise RuntimeError("virtual clock deadlocked")

    def advance(self, seconds: float) -> None:
        """Move time forward from the test's main thread (no workers running)."""
        with self._cond:
            self._now += seconds

    def enter(self, count: int = 1) -> None:
        with self._cond:
            self._workers += count
            self._running += count

    def leave(self) -> None:
        with self._cond:
            self._workers -= 1
            self._running -= 1
            self._advance_if_idle()

    def _advance_if_idle(self) -> None:
        if self._running > 0 or not self._sleepers:
            return
        self._now = max(self._now, min(float(e[0]) for e in self._sleepers))
        # Wake (and count as running) every sleeper due now before anyone else can move time.
        for entry in [e for e in self._sleepers if float(e[0]) <= self._now]:
            entry[1] = True
            self._sleepers.remove(entry)
            self._running += 1
        self._cond.notify_all()
