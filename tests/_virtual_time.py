"""A clock that moves only when the code under test sleeps: nothing sleeps for real."""

from __future__ import annotations


class VirtualTime:
    """`clock` and `sleep` for a client's throttle (and a sandbox's limiter): `sleep` moves
    `now` forward and records how long it was asked to wait."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
