"""Seeded fault decisions: 5xx, 429, connection resets, cut-short downloads, slow starts."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from gladly_sandbox.settings import FaultSpec

ERROR_STATUSES = (500, 502, 503)
NO_FAULT_SPEC = FaultSpec()


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong with one request (nothing, in the common case)."""

    reset: bool = False
    throttled: bool = False  # 429 as if the organisation's shared budget were used up
    error_status: int | None = None
    truncate_at: float | None = None  # fraction of the body to send before cutting, in [0, 1)
    slow_first_byte_ms: float = 0.0

    @property
    def any(self) -> bool:
        """Whether anything goes wrong."""
        return (
            self.reset
            or self.throttled
            or self.error_status is not None
            or self.truncate_at is not None
            or self.slow_first_byte_ms > 0
        )


NO_FAULT = FaultPlan()


class FaultInjector:
    """Draws fault decisions from one seeded RNG, so a sequential run is reproducible.

    Each request that has a fault spec draws the same fixed sequence of numbers (reset, error,
    error status, slow, truncate, cut point) whether or not a fault fires; concurrent requests
    interleave their draws, so only sequential runs repeat exactly.
    """

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Start the fault sequence again from `seed`."""
        with self._lock:
            self._seed = seed
            self._rng = random.Random(seed)

    @property
    def seed(self) -> int:
        """The seed the current sequence started from."""
        return self._seed

    def decide(self, spec: FaultSpec | None, *, download: bool) -> FaultPlan:
        """Decide one request's faults; truncation only applies to file downloads."""
        if spec is None or not spec.active:
            return NO_FAULT
        with self._lock:
            rng = self._rng
            reset_draw, error_draw, status_draw = rng.random(), rng.random(), rng.random()
            slow_draw, truncate_draw, cut_draw = rng.random(), rng.random(), rng.random()
            # Drawn only when asked for, so sequences without it stay as they were.
            throttle_draw = rng.random() if spec.throttle_rate else 1.0
        if reset_draw < spec.reset_rate:
            return FaultPlan(reset=True)
        if throttle_draw < spec.throttle_rate:
            return FaultPlan(throttled=True)
        slow = spec.slow_first_byte_ms if slow_draw < spec.slow_first_byte_rate else 0.0
        if error_draw < spec.error_rate:
            status = ERROR_STATUSES[int(status_draw * len(ERROR_STATUSES))]
            return FaultPlan(error_status=status, slow_first_byte_ms=slow)
        truncate = cut_draw if download and truncate_draw < spec.truncate_rate else None
        return FaultPlan(truncate_at=truncate, slow_first_byte_ms=slow)
