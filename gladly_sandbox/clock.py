"""The sandbox organisation's notion of "now": frozen or running, and only ever moved forward."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SandboxClock:
    """The organisation's notion of now; tests move it.

    A frozen clock shows `start` plus whatever was advanced; a running clock also adds the real
    time elapsed since it was made, read from `monotonic` (injectable, so tests never sleep).
    """

    def __init__(
        self,
        start: datetime,
        *,
        frozen: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._start = start.astimezone(UTC)
        self._frozen = frozen
        self._monotonic = monotonic
        self._origin = monotonic()
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    @property
    def frozen(self) -> bool:
        """True when only `advance` / `set` move this clock."""
        return self._frozen

    def now(self) -> datetime:
        """The current sandbox time, aware UTC."""
        with self._lock:
            return self._now_locked()

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`; a negative delta is refused (time never runs back)."""
        if delta < timedelta(0):
            raise ValueError(f"the sandbox clock only moves forward, got {delta}")
        with self._lock:
            self._offset += delta

    def set(self, when: datetime) -> None:
        """Jump forward to `when`; a time before the current one is refused."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            current = self._now_locked()
            if when < current:
                raise ValueError(
                    f"the sandbox clock only moves forward: {when} is before {current}"
                )
            self._offset += when - current

    def _now_locked(self) -> datetime:
        elapsed = timedelta(0)
        if not self._frozen:
            # A monotonic source can't go back, but guard anyway: now() must never decrease.
            elapsed = timedelta(seconds=max(0.0, self._monotonic() - self._origin))
        return self._start + elapsed + self._offset
