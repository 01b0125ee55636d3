"""Tests for the per-method adaptive throttle, run entirely in virtual time."""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gladly_client.constants import (
    GIVE_WAY_FACTOR,
    MIN_REQUESTS_PER_SECOND,
    RATE_WINDOW_SECONDS,
    THROTTLE_BACKOFF_FACTOR,
    THROTTLE_RECOVERY_PER_SECOND,
)
from gladly_client.pacing import PHASE_MARGIN, Priority, reserve
from gladly_client.throttle import Throttle
from tests.gladly_client._virtual_clock import DEADLOCK_SECONDS, VirtualClock


class Acquirer:
    """What the harness needs from a throttle (the real one or a deliberately broken one)."""

    def acquire(self, method: str) -> float:
        raise NotImplementedError


def run_threads(
    throttle: Throttle | Acquirer,
    clock: VirtualClock,
    plan: list[str],
    threads: int,
) -> dict[str, list[float]]:
    """Send every method in `plan` once from `threads` workers; return send times per method.

    A send time is `clock()` read right after `acquire` returns.
    """
    todo = list(reversed(plan))
    sends: dict[str, list[float]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    method = todo.pop()
                throttle.acquire(method)
                sent = clock()
                with lock:
                    sends.setdefault(method, []).append(sent)
        except BaseException as exc:
            errors.append(exc)
        finally:
            clock.leave()

    # Register all workers before any starts, so time cannot run ahead of a late starter.
    clock.enter(threads)
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=DEADLOCK_SECONDS)
        assert not thread.is_alive(), "worker did not finish"
    if errors:
        raise errors[0]
    return {method: sorted(times) for method, times in sends.items()}


def achieved_rate(sends: list[float]) -> float:
    return len(sends) / (max(sends) - min(sends))


def max_sends_in_window(sends: list[float], window: float = 1.0) -> int:
    """Most sends inside any closed window [t, t + window] (a hair wider, to be strict)."""
    ordered = sorted(sends)
    best = 0
    end = 0
    for start, t in enumerate(ordered):
        while end < len(ordered) and ordered[end] <= t + window + 1e-9:
            end += 1
        best = max(best, end - start)
    return best


def assert_exact_spacing(sends: list[float], rate: float) -> None:
    start = sends[0]
    expected = [start + i / rate for i in range(len(sends))]
    assert sends == pytest.approx(expected, abs=1e-9)


# -- acceptance: 1,000 GETs from 8 threads at 8 req/s --------------------------------------------


def test_thousand_requests_from_eight_threads_hold_eight_per_second() -> None:
    clock = VirtualClock()
    throttle = Throttle(8.0, clock=clock, sleep=clock.sleep)

    sends = run_threads(throttle, clock, ["GET"] * 1000, threads=8)["GET"]

    assert len(sends) == 1000
    assert achieved_rate(sends) == pytest.approx(8.0, rel=0.05)
    assert max_sends_in_window(sends) <= 9
    # Stronger than both: every slot used once, exactly 1/8 s apart, starting at once.
    assert sends[0] == 0.0
    assert_exact_spacing(sends, 8.0)


class NaiveFormulaThrottle(Acquirer):
    """The classic bug: the next slot counted from *now*, not from the slot just handed out."""

    def __init__(self, rate: float, clock: VirtualClock) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._lock = threading.Lock()
        self._next_free = -math.inf

    def acquire(self, method: str) -> float:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_free)
            self._next_free = now + self._interval
        if slot > now:
            self._clock.sleep(slot - now)
        return slot - now


class BurstyBucketThrottle(Acquirer):
    """A token bucket holding a full second of tokens: right on average, bursty at the edges."""

    def __init__(self, rate: float, clock: VirtualClock) -> None:
        self._rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = rate
        self._updated = 0.0

    def acquire(self, method: str) -> float:
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._rate, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                shortfall = (1.0 - self._tokens) / self._rate
            self._clock.sleep(shortfall)
            waited += shortfall


class UnlockedThrottle(Acquirer):
    """The right formula without a lock, preempted at the worst moment (read, then write).

    Each worker's first reservation waits at a barrier between reading `next_free` and writing
    it, which is exactly the interleaving an unlocked read-modify-write permits.
    """

    def __init__(self, rate: float, clock: VirtualClock, workers: int = 8) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._next_free = -math.inf
        self._barrier = threading.Barrier(workers)
        self._preempted = threading.local()

    def acquire(self, method: str) -> float:
        now = self._clock()
        slot = max(now, self._next_free)
        if not getattr(self._preempted, "done", False):
            self._preempted.done = True
            self._barrier.wait(timeout=DEADLOCK_SECONDS)
        self._next_free = slot + self._interval
        if slot > now:
            self._clock.sleep(slot - now)
        return slot - now


@pytest.mark.parametrize("broken", [NaiveFormulaThrottle, BurstyBucketThrottle, UnlockedThrottle])
def test_acceptance_checks_catch_broken_throttles(
    broken: Callable[[float, VirtualClock], Acquirer],
) -> None:
    # The same harness must fail implementations that are wrong, or it proves nothing.
    clock = VirtualClock()
    throttle = broken(8.0, clock)

    sends = run_threads(throttle, clock, ["GET"] * 1000, threads=8)["GET"]

    assert max_sends_in_window(sends) > 9
    with pytest.raises(AssertionError):
        assert_exact_spacing(sends, 8.0)


def _reserve_concurrently(throttle: Throttle, threads: int = 8, each: int = 2000) -> list[float]:
    """Real threads, preempted as often as CPython allows, reserving slots; returns the waits."""
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [throttle.acquire("GET") for _ in range(each)]
        with lock:
            waits.extend(mine)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=DEADLOCK_SECONDS)
    finally:
        sys.setswitchinterval(interval)
    return sorted(waits)


def _frozen_throttle() -> Throttle:
    # A frozen clock and a sleep that returns at once: each wait *is* the reserved slot.
    return Throttle(8.0, clock=lambda: 0.0, sleep=lambda _: None)


def test_lock_holds_under_real_thread_contention() -> None:
    assert _reserve_concurrently(_frozen_throttle()) == [i / 8.0 for i in range(16000)]


def test_real_contention_check_catches_a_missing_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Same check with the lock removed: lost updates show up as duplicate slots. A race is not
    # certain on any one run, so allow a few (in practice the first one always shows it).
    grid = [i / 8.0 for i in range(16000)]
    for _ in range(5):
        throttle = _frozen_throttle()
        monkeypatch.setattr(throttle._store, "_lock", contextlib.nullcontext())
        if _reserve_concurrently(throttle) != grid:
            return
    pytest.fail("removing the lock went unnoticed")


def test_methods_are_paced_independently_under_threads() -> None:
    clock = VirtualClock()
    throttle = Throttle(8.0, clock=clock, sleep=clock.sleep)

    sends = run_threads(throttle, clock, ["GET", "DELETE"] * 200, threads=8)

    for method in ("GET", "DELETE"):
        assert len(sends[method]) == 200
        assert sends[method][0] == 0.0
        assert_exact_spacing(sends[method], 8.0)
        assert max_sends_in_window(sends[method]) <= 9


# -- single-threaded pacing -----------------------------------------------------------------------


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=100.0)


@pytest.fixture
def throttle(clock: VirtualClock) -> Throttle:
    return Throttle(8.0, clock=clock, sleep=clock.sleep)


def test_first_request_goes_at_once_then_one_interval_apart(
    clock: VirtualClock, throttle: Throttle
) -> None:
    assert throttle.acquire("GET") == 0.0
    assert clock() == 100.0
    assert throttle.acquire("GET") == pytest.approx(0.125)
    assert throttle.acquire("GET") == pytest.approx(0.125)
    assert clock() == pytest.approx(100.25)


def test_idle_time_is_not_banked_as_a_burst(clock: VirtualClock, throttle: Throttle) -> None:
    throttle.acquire("GET")
    clock.advance(60.0)
    assert throttle.acquire("GET") == 0.0
    # A minute of silence earns no extra sends: the very next one is a full interval later.
    assert throttle.acquire("GET") == pytest.approx(0.125)


def test_methods_are_independent_and_case_insensitive(
    clock: VirtualClock, throttle: Throttle
) -> None:
    waits_get = [throttle.acquire("GET") for _ in range(8)]
    assert throttle.acquire("DELETE") == 0.0
    assert throttle.acquire("delete") == pytest.approx(0.125)
    assert waits_get[0] == 0.0
    assert all(w == pytest.approx(0.125) for w in waits_get[1:])

    throttle.on_response("get", 429, None)
    assert throttle.current_rate("GET") == pytest.approx(4.0)
    assert throttle.current_rate("DELETE") == 8.0


def test_configured_rate_and_unknown_method_rate(throttle: Throttle) -> None:
    assert throttle.configured_rate == 8.0
    assert throttle.current_rate("PATCH") == 8.0


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_invalid_rate_is_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="requests_per_second must be a finite number > 0"):
        Throttle(rate)


# -- adaptation -----------------------------------------------------------------------------------


def test_429_halves_rate_and_pauses_for_a_window(clock: VirtualClock, throttle: Throttle) -> None:
    throttle.acquire("GET")
    throttle.on_response("GET", 429, None)

    assert throttle.current_rate("GET") == pytest.approx(8.0 * THROTTLE_BACKOFF_FACTOR)
    assert throttle.acquire("GET") >= RATE_WINDOW_SECONDS
    assert throttle.acquire("GET") == pytest.approx(1 / 4.0)
    # Other methods keep their pace.
    assert throttle.acquire("DELETE") == 0.0


def test_429_voids_slots_already_reserved(clock: VirtualClock) -> None:
    # Twenty slots reserved ahead would all meet the same spent window: the pause voids them,
    # and the next request is reserved from the end of the pause at the cut pace.
    throttle = Throttle(8.0, clock=clock, sleep=lambda _: None)
    for _ in range(20):
        throttle.acquire("GET")
    throttle.on_response("GET", 429, None)
    assert throttle.acquire("GET") == pytest.approx(RATE_WINDOW_SECONDS)
    assert throttle.acquire("GET") == pytest.approx(RATE_WINDOW_SECONDS + 1 / 4.0)


def test_a_sleeper_whose_slot_was_voided_reserves_again(clock: VirtualClock) -> None:
    # A thread sleeps toward its slot; meanwhile an answer says the window is spent.
    throttle = Throttle(8.0, clock=clock, sleep=clock.sleep)
    throttle.acquire("GET")  # slot at 100.0; the next is at 100.125
    voided = []

    def sleep_then_answer(seconds: float) -> None:
        if not voided:
            voided.append(seconds)
            throttle.on_response("GET", 200, 0)  # arrives while this request sleeps
        clock.sleep(seconds)

    throttle._sleep = sleep_then_answer
    waited = throttle.acquire("GET")
    # Not sent at 100.125 (inside the spent window) but a window after the answer.
    assert voided == [pytest.approx(0.125)]
    assert clock() == pytest.approx(100.0 + RATE_WINDOW_SECONDS)
    assert waited == pytest.approx(RATE_WINDOW_SECONDS)


def test_429s_from_one_overrun_cut_once(clock: VirtualClock, throttle: Throttle) -> None:
    # Eight requests in flight all come back 429 together: that is one overrun, not eight.
    for _ in range(8):
        throttle.on_response("GET", 429, None)
    assert throttle.current_rate("GET") == pytest.approx(4.0)

    clock.advance(RATE_WINDOW_SECONDS)
    throttle.on_response("GET", 429, None)
    assert throttle.current_rate("GET") == pytest.approx(2.0)


def test_repeated_429s_stop_at_the_floor(clock: VirtualClock, throttle: Throttle) -> None:
    rates = []
    for _ in range(8):
        throttle.on_response("GET", 429, None)
        rates.append(throttle.current_rate("GET"))
        clock.advance(RATE_WINDOW_SECONDS)
    assert rates == pytest.approx([4.0, 2.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert min(rates) == MIN_REQUESTS_PER_SECOND
    clock.advance(10.0)
    throttle.acquire("GET")
    assert throttle.acquire("GET") == pytest.approx(1 / MIN_REQUESTS_PER_SECOND)


def test_floor_never_exceeds_a_configured_rate_below_it(clock: VirtualClock) -> None:
    slow = Throttle(0.2, clock=clock, sleep=clock.sleep)
    slow.on_response("GET", 429, None)
    assert slow.current_rate("GET") == pytest.approx(0.2)


def test_rate_recovers_linearly_with_successes(clock: VirtualClock, throttle: Throttle) -> None:
    throttle.on_response("GET", 429, None)
    assert throttle.current_rate("GET") == pytest.approx(4.0)

    step = THROTTLE_RECOVERY_PER_SECOND * 8.0  # 2 req/s regained per second
    clock.advance(0.5)
    throttle.on_response("GET", 200, 7)
    assert throttle.current_rate("GET") == pytest.approx(4.0 + 0.5 * step)
    clock.advance(0.5)
    throttle.on_response("GET", 200, None)
    assert throttle.current_rate("GET") == pytest.approx(4.0 + 1.0 * step)
    clock.advance(10.0)
    throttle.on_response("GET", 204, 9)
    assert throttle.current_rate("GET") == 8.0  # never above configured


def test_no_response_no_recovery(clock: VirtualClock, throttle: Throttle) -> None:
    # Recovery is earned by answers that are not 429; silence proves nothing about headroom.
    throttle.on_response("GET", 429, None)
    clock.advance(60.0)
    assert throttle.current_rate("GET") == pytest.approx(4.0)


def test_recovered_client_paces_at_configured_rate(clock: VirtualClock, throttle: Throttle) -> None:
    throttle.on_response("GET", 429, None)
    clock.advance(10.0)
    throttle.on_response("GET", 200, 5)
    throttle.acquire("GET")
    assert throttle.acquire("GET") == pytest.approx(1 / 8.0)


def test_exhausted_window_pauses_and_gives_way(clock: VirtualClock, throttle: Throttle) -> None:
    # Remaining 0 although we kept to our share: the other integrations are busy.
    throttle.acquire("GET")
    clock.advance(0.5)
    throttle.on_response("GET", 200, 0)

    assert throttle.current_rate("GET") == pytest.approx(8.0 * GIVE_WAY_FACTOR)
    assert throttle.acquire("GET") == pytest.approx(RATE_WINDOW_SECONDS)
    assert throttle.acquire("GET") == pytest.approx(1 / (8.0 * GIVE_WAY_FACTOR))


def test_one_spent_window_gives_way_once(clock: VirtualClock, throttle: Throttle) -> None:
    for _ in range(5):
        throttle.on_response("GET", 200, 0)
    assert throttle.current_rate("GET") == pytest.approx(8.0 * GIVE_WAY_FACTOR)
    clock.advance(RATE_WINDOW_SECONDS)
    throttle.on_response("GET", 200, 0)
    recovered = 8.0 * GIVE_WAY_FACTOR + THROTTLE_RECOVERY_PER_SECOND * 8.0 * RATE_WINDOW_SECONDS
    assert throttle.current_rate("GET") == pytest.approx(recovered * GIVE_WAY_FACTOR)


def test_giving_way_recovers_linearly(clock: VirtualClock, throttle: Throttle) -> None:
    throttle.on_response("GET", 200, 0)
    clock.advance(1.0)
    throttle.on_response("GET", 200, 5)
    expected = 8.0 * GIVE_WAY_FACTOR + THROTTLE_RECOVERY_PER_SECOND * 8.0
    assert throttle.current_rate("GET") == pytest.approx(expected)


def test_pause_ends_where_the_next_window_starts_once_it_is_known(
    clock: VirtualClock, throttle: Throttle
) -> None:
    # Gladly's windows start at .30 of each second. Remaining rises from 1 to 9 between
    # answers at 100.25 and 100.35, then from 0 to 8 between 101.28 and 101.33.
    for at, remaining in [(100.25, 1), (100.35, 9), (101.28, 0), (101.33, 8)]:
        clock.advance(at - clock())
        throttle.on_response("GET", 200, remaining)
    clock.advance(102.1 - clock())
    throttle.on_response("GET", 200, 0)  # spent at 102.10: the next window starts at 102.30
    assert throttle.acquire("GET") == pytest.approx(0.33 - 0.10 + PHASE_MARGIN)


def test_a_rise_of_one_is_no_window_start(clock: VirtualClock, throttle: Throttle) -> None:
    # Two answers crossing on the way back differ by one; that says nothing about windows.
    for at, remaining in [(100.25, 3), (100.35, 4), (100.5, 0)]:
        clock.advance(at - clock())
        throttle.on_response("GET", 200, remaining)
    assert throttle.acquire("GET") == pytest.approx(RATE_WINDOW_SECONDS)


def test_a_bulk_request_lets_a_prompt_one_go_first(clock: VirtualClock) -> None:
    throttle = Throttle(8.0, clock=clock, sleep=lambda _: None)
    throttle.acquire("GET", Priority.BULK)  # 100.0
    throttle.acquire("GET", Priority.BULK)  # 100.125: one queued ahead is allowed
    # A third bulk request would queue two ahead: it is told to come back instead.
    paces = throttle._store
    with paces.locked() as held:
        slot, granted = reserve(held["GET"], clock(), Priority.BULK, 8.0, 0.5)
    assert not granted
    assert slot == pytest.approx(100.125)
    # A prompt request takes the next slot at once.
    assert throttle.acquire("GET", Priority.PROMPT) == pytest.approx(0.25)


def test_429_explained_by_the_count_gives_way_instead_of_halving(
    clock: VirtualClock, throttle: Throttle
) -> None:
    # Gladly says 0 remain: the window is spent (by others too); the pause handles it.
    throttle.on_response("GET", 429, 0)
    assert throttle.current_rate("GET") == pytest.approx(8.0 * GIVE_WAY_FACTOR)
    assert throttle.acquire("GET") >= RATE_WINDOW_SECONDS


def test_a_lowered_limit_lowers_the_pace_in_proportion(
    clock: VirtualClock, throttle: Throttle
) -> None:
    throttle.on_response("GET", 200, 4, 5)  # Gladly now allows 5 a second
    assert throttle.current_rate("GET") == pytest.approx(4.0)
    throttle.on_response("GET", 200, 4, 20)  # a raised limit does not raise our share
    assert throttle.current_rate("GET") == 8.0


def test_one_remaining_is_left_to_the_others(clock: VirtualClock, throttle: Throttle) -> None:
    throttle.acquire("GET")
    throttle.on_response("GET", 200, 2)
    assert throttle.acquire("GET") == pytest.approx(0.125)
    throttle.on_response("GET", 200, 1)
    # The window's last request is theirs: ours waits for the next window, at full pace.
    assert throttle.acquire("GET") == pytest.approx(RATE_WINDOW_SECONDS)
    assert throttle.current_rate("GET") == 8.0


# -- property: no window ever over floor(rate) + 1 ----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50.0),
    steps=st.lists(
        st.tuples(st.sampled_from(["GET", "POST", "get"]), st.floats(0.0, 3.0)),
        min_size=1,
        max_size=200,
    ),
)
def test_any_arrival_pattern_stays_within_rate(rate: float, steps: list[tuple[str, float]]) -> None:
    clock = VirtualClock()
    throttle = Throttle(rate, clock=clock, sleep=clock.sleep)
    sends: dict[str, list[float]] = {}
    for method, gap in steps:
        clock.advance(gap)
        throttle.acquire(method)
        sends.setdefault(method.upper(), []).append(clock())
    for times in sends.values():
        assert max_sends_in_window(times) <= math.floor(rate + 1e-9) + 1
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 1 / rate - 1e-9 for g in gaps)
