"""SandboxClock: frozen vs running time, moving it forward, refusing to move it back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from gladly_sandbox.clock import SandboxClock

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class FakeMonotonic:
    """A monotonic source the test moves by hand."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def test_frozen_clock_ignores_real_time() -> None:
    ticks = FakeMonotonic()
    clock = SandboxClock(START, frozen=True, monotonic=ticks)
    ticks.value += 3600
    assert clock.now() == START
    assert clock.frozen is True


def test_running_clock_adds_elapsed_real_time() -> None:
    ticks = FakeMonotonic()
    clock = SandboxClock(START, monotonic=ticks)
    assert clock.now() == START
    ticks.value += 90.5
    assert clock.now() == START + timedelta(seconds=90.5)
    assert clock.frozen is False


def test_advance_moves_both_kinds_forward() -> None:
    ticks = FakeMonotonic()
    frozen = SandboxClock(START, frozen=True, monotonic=ticks)
    running = SandboxClock(START, monotonic=ticks)
    ticks.value += 10
    frozen.advance(timedelta(days=1))
    running.advance(timedelta(days=1))
    assert frozen.now() == START + timedelta(days=1)
    assert running.now() == START + timedelta(days=1, seconds=10)


def test_set_jumps_to_an_absolute_time() -> None:
    ticks = FakeMonotonic()
    clock = SandboxClock(START, monotonic=ticks)
    ticks.value += 5
    target = START + timedelta(hours=7)
    clock.set(target)
    assert clock.now() == target
    ticks.value += 2
    assert clock.now() == target + timedelta(seconds=2)


@pytest.mark.parametrize("frozen", [True, False])
def test_backwards_is_refused(frozen: bool) -> None:
    clock = SandboxClock(START, frozen=frozen, monotonic=FakeMonotonic())
    clock.advance(timedelta(hours=1))
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="forward"):
        clock.set(START)
    assert clock.now() == START + timedelta(hours=1)


def test_naive_start_is_utc_and_now_is_aware() -> None:
    clock = SandboxClock(datetime(2025, 6, 1, 12, 0), frozen=True)
    assert clock.now() == START
    assert clock.now().tzinfo is not None


def test_concurrent_advances_are_not_lost() -> None:
    clock = SandboxClock(START, frozen=True)

    def bump() -> None:
        for _ in range(500):
            clock.advance(timedelta(seconds=1))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == START + timedelta(seconds=4000)
