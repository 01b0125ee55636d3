"""Bursts while the budget is idle: no sleep of ours when sending now cannot overrun our share.

Everything runs in virtual time (`VirtualClock`, or a spy `sleep` that never sleeps), except
the last test, which reads the real clock against a loopback sandbox and asserts that the
client never even asked to sleep.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gladly_client import GladlyClient, LockFilePaces
from gladly_client.constants import RATE_WINDOW_SECONDS, THROTTLE_BACKOFF_FACTOR
from gladly_client.pacing import (
    MIXED_MEMORY_SECONDS,
    Pace,
    Priority,
    burst_size,
    observe,
    reserve,
)
from gladly_client.throttle import Throttle
from gladly_sandbox import Sandbox
from tests.gladly_client._virtual_clock import DEADLOCK_SECONDS, VirtualClock

RATE = 8.0
INTERVAL = 1 / RATE
RTT = 0.003  # a loopback round trip: the answer comes back this long after the send


class SleepSpy:
    """A `sleep` that moves a VirtualClock (without workers) and records every call."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.sleep(seconds)


def half_open_max(sends: list[float], window: float = RATE_WINDOW_SECONDS) -> int:
    """Most sends inside any window (t - window, t]: how Gladly's one-second windows count.

    Two sends a window apart are in different windows (a nanosecond's slack for the float sums).
    """
    ordered = sorted(sends)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window + 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


def send(
    throttle: Throttle, clock: VirtualClock, priority: Priority = Priority.PROMPT, **answer: int
) -> tuple[float, float]:
    """One request: wait for a slot, send, hear the answer RTT later. (waited, sent at)."""
    waited = throttle.acquire("GET", priority)
    sent = clock()
    clock.advance(RTT)
    throttle.on_response("GET", answer.get("status", 200), answer.get("remaining"))
    return waited, sent


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=100.0)


@pytest.fixture
def spy(clock: VirtualClock) -> SleepSpy:
    return SleepSpy(clock)


@pytest.fixture
def throttle(clock: VirtualClock, spy: SleepSpy) -> Throttle:
    return Throttle(RATE, clock=clock, sleep=spy)


# -- (a) an idle budget: a handful of requests go without any sleep --------------------------


def test_a_handful_of_requests_on_an_idle_budget_never_sleep(
    clock: VirtualClock, spy: SleepSpy, throttle: Throttle
) -> None:
    # Our share is 8 a second: eight prompt requests in a row, each answered, none waits.
    # Gladly's count falls 9, 8, ... 2 (nobody else is busy): no pause is due.
    for i in range(8):
        waited, _ = send(throttle, clock, remaining=9 - i)
        assert waited == 0.0
    assert spy.calls == []
    # The ninth would be the window's ninth of ours: it waits for the first to leave it.
    waited, sent = send(throttle, clock)
    assert sent == pytest.approx(100.0 + RATE_WINDOW_SECONDS)
    assert spy.calls == [pytest.approx(waited)]


def test_an_export_jobs_requests_go_at_once_at_bulk_priority(
    clock: VirtualClock, spy: SleepSpy, throttle: Throttle
) -> None:
    # An export run starts with two listings (completed and failed jobs), then one job's four
    # files (agents, topics, customers, items): six GETs one after the other at BULK priority.
    assert burst_size(RATE) == 8
    for _ in range(6):
        assert send(throttle, clock, Priority.BULK)[0] == 0.0
    assert spy.calls == []


def test_after_a_quiet_spell_the_burst_is_there_again(
    clock: VirtualClock, spy: SleepSpy, throttle: Throttle
) -> None:
    for _ in range(8):
        send(throttle, clock)
    clock.advance(RATE_WINDOW_SECONDS)  # the export converts and commits a big file
    for _ in range(8):
        assert send(throttle, clock)[0] == 0.0
    assert spy.calls == []


def test_a_long_download_is_one_request_however_long_its_body_streams(
    clock: VirtualClock, spy: SleepSpy, throttle: Throttle
) -> None:
    # The slot is taken when the request is sent and the answer is its headers; the thirty
    # seconds its body takes to stream count for nothing.
    send(throttle, clock)
    clock.advance(30.0)
    for _ in range(8):
        assert send(throttle, clock)[0] == 0.0
    assert spy.calls == []


def test_no_burst_while_a_request_of_ours_is_unanswered(
    clock: VirtualClock, throttle: Throttle
) -> None:
    # Without an answer we do not know what Gladly counted: one interval apart, as before.
    assert throttle.acquire("GET") == 0.0
    assert throttle.acquire("GET") == pytest.approx(INTERVAL)
    clock.advance(RTT)
    throttle.on_response("GET", 200, None)  # the answers are in
    assert throttle.acquire("GET") == 0.0


def test_machine_budget_processes_share_the_window(tmp_path: Path, clock: VirtualClock) -> None:
    # Two processes on one lock file: what one sent in a burst counts in the other's window.
    path = tmp_path / "budget.json"
    first = Throttle(RATE, clock=clock, sleep=clock.sleep, store=LockFilePaces(path))
    second = Throttle(RATE, clock=clock, sleep=clock.sleep, store=LockFilePaces(path))
    sends = [send(first if i % 2 else second, clock)[1] for i in range(12)]
    assert sends[:8] == pytest.approx([100.0 + i * RTT for i in range(8)])
    assert sends[8] == pytest.approx(100.0 + RATE_WINDOW_SECONDS)
    assert half_open_max(sends) == 8


# -- (b) a sustained stream: at most the rate in any one-second window -----------------------


def test_a_sustained_stream_holds_the_rate_in_every_window(
    clock: VirtualClock, throttle: Throttle
) -> None:
    sends = [send(throttle, clock)[1] for _ in range(400)]
    assert half_open_max(sends) == 8
    # 400 requests: 8 in the first window, then 8 a second.
    assert sends[-1] - sends[0] >= (400 - 8) / RATE - 1e-9


def test_eight_threads_with_answers_hold_the_rate_in_every_window() -> None:
    # Eight threads, each sending, hearing the answer a round trip later, sending again.
    clock = VirtualClock()
    throttle = Throttle(RATE, clock=clock, sleep=clock.sleep)
    sends: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(125):
                throttle.acquire("GET")
                with lock:
                    sends.append(clock())
                clock.sleep(RTT)
                throttle.on_response("GET", 200, None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            clock.leave()

    clock.enter(8)
    pool = [threading.Thread(target=worker) for _ in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=DEADLOCK_SECONDS)
        assert not thread.is_alive(), "worker did not finish"
    assert not errors, errors
    assert len(sends) == 1000
    assert half_open_max(sends) <= 8
    assert max(sends) - min(sends) >= (1000 - 8) / RATE - 1e-9


@settings(max_examples=150, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=20),
    steps=st.lists(
        st.tuples(
            st.sampled_from([Priority.PROMPT, Priority.BULK]),
            st.floats(0.0, 1.5),  # quiet time before the request
            st.one_of(st.none(), st.floats(0.0, 0.5)),  # its answer's delay, or no answer
        ),
        min_size=1,
        max_size=150,
    ),
)
def test_any_mix_of_bursts_stays_within_the_rate_in_every_window(
    rate: int, steps: list[tuple[Priority, float, float | None]]
) -> None:
    clock = VirtualClock()
    throttle = Throttle(float(rate), clock=clock, sleep=clock.sleep)
    sends = []
    for priority, gap, answer in steps:
        clock.advance(gap)
        throttle.acquire("GET", priority)
        sends.append(clock())
        if answer is not None:
            clock.advance(answer)
            throttle.on_response("GET", 200, None)
    assert half_open_max(sends) <= rate
    # And over the whole run no more than the rate allows after one burst.
    assert len(sends) <= rate * (sends[-1] - sends[0]) + rate + 1e-6


# -- (c) what says the budget binds still stops a burst --------------------------------------


def test_a_429_still_pauses_and_the_cut_pace_has_no_burst(
    clock: VirtualClock, throttle: Throttle
) -> None:
    for _ in range(3):
        send(throttle, clock)
    waited, sent = send(throttle, clock, status=429)
    assert waited == 0.0
    assert throttle.current_rate("GET") == pytest.approx(RATE * THROTTLE_BACKOFF_FACTOR)
    # The 429 (heard RTT after the send) pauses the method for a whole window...
    waited, after = send(throttle, clock)
    assert after == pytest.approx(sent + RTT + RATE_WINDOW_SECONDS)
    assert waited == pytest.approx(RATE_WINDOW_SECONDS)
    # ...and while the cut pace recovers, every request waits its interval: no burst.
    times = [after] + [send(throttle, clock)[1] for _ in range(5)]
    assert all(later - earlier > INTERVAL for earlier, later in itertools.pairwise(times))


def test_one_remaining_still_pauses_a_burst(clock: VirtualClock, throttle: Throttle) -> None:
    # Others are busy: Gladly says 1 remains after our third. The window's last request is
    # theirs; ours waits for the next window although our own burst is far from spent.
    send(throttle, clock, remaining=5)
    send(throttle, clock, remaining=3)
    _, third = send(throttle, clock, remaining=1)
    waited, fourth = send(throttle, clock)
    assert fourth == pytest.approx(third + RTT + RATE_WINDOW_SECONDS)
    assert waited == pytest.approx(RATE_WINDOW_SECONDS)


def test_a_pause_voids_a_slot_reserved_during_a_burst(clock: VirtualClock) -> None:
    # A request sleeps toward its slot (the window is full of our burst); meanwhile an answer
    # says the organisation's window is spent. Its slot is void: it asks again, after the pause.
    voided: list[float] = []

    def sleep_then_answer(seconds: float) -> None:
        if not voided:
            voided.append(seconds)
            throttle.on_response("GET", 200, 0)
        clock.sleep(seconds)

    throttle = Throttle(RATE, clock=clock, sleep=sleep_then_answer)
    for _ in range(8):
        send(throttle, clock)
    throttle.acquire("GET")
    assert voided == [pytest.approx(RATE_WINDOW_SECONDS - 8 * RTT)]
    # Reserved again after the pause: one window after the answer that spent the window.
    assert clock() == pytest.approx(100.0 + 8 * RTT + RATE_WINDOW_SECONDS)


# -- priorities --------------------------------------------------------------------------------


def test_with_both_priorities_about_nobody_bursts_and_prompt_goes_first(
    clock: VirtualClock, throttle: Throttle
) -> None:
    # A bulk burst, then a prompt request: the next slot is the prompt one's, one interval
    # after the burst's last (it does not repay the burst), and a bulk request now finds the
    # queue too long and is told to come back.
    for _ in range(4):
        send(throttle, clock, Priority.BULK)
    last_bulk = clock() - RTT
    _, prompt = send(throttle, clock, Priority.PROMPT)
    assert prompt == pytest.approx(last_bulk + INTERVAL)
    # Both priorities asked lately: one interval apart, whoever asks.
    _, bulk = send(throttle, clock, Priority.BULK)
    assert bulk >= prompt + INTERVAL - 1e-9
    # Once the prompt requests are gone for a while, bulk bursts again.
    clock.advance(MIXED_MEMORY_SECONDS)
    assert send(throttle, clock, Priority.BULK)[0] == 0.0


def test_a_bulk_request_still_leaves_the_queue_to_a_prompt_one() -> None:
    # The queue rule is kept: a bulk request takes a slot only when at most one is queued
    # ahead of it; a prompt request arriving meanwhile takes the next one.
    pace, t = Pace(rate=RATE), 100.0
    for _ in range(3):
        slot, granted = reserve(pace, t, Priority.BULK, RATE, 0.5)
        assert (slot, granted) == (t, True)  # a burst: each answered before the next
        t += RTT
        observe(pace, t, 200, None, None, RATE, 0.5)
    # Now three bulk requests at once (threads), none answered yet.
    assert reserve(pace, t, Priority.BULK, RATE, 0.5) == (t, True)
    queued, granted = reserve(pace, t, Priority.BULK, RATE, 0.5)
    assert granted
    assert queued == pytest.approx(t + INTERVAL)  # in flight: one interval, as without bursts
    retry, granted = reserve(pace, t, Priority.BULK, RATE, 0.5)
    assert not granted  # two would be queued ahead of it: come back
    assert retry == pytest.approx(queued)
    prompt, granted = reserve(pace, t, Priority.PROMPT, RATE, 0.5)
    assert granted
    assert prompt == pytest.approx(queued + INTERVAL)


# -- the budget file ---------------------------------------------------------------------------


def test_a_budget_file_from_before_bursts_is_read_not_started_anew(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = Pace(rate=RATE, next_free=5.0).to_json()
    for key in ("paused_until", "last_slot", "heard", "recent", "prompted", "bulked"):
        del old[key]
    pace = Pace.from_json(old)
    assert pace.next_free == 5.0
    assert (pace.recent, pace.heard, pace.last_slot) == ([], None, -math.inf)
    assert Pace.from_json(Pace(rate=RATE, recent=[1.0, 2.0], heard=2.5).to_json()).recent == [
        1.0,
        2.0,
    ]
    with pytest.raises(ValueError, match="recent"):
        Pace.from_json({**Pace(rate=RATE).to_json(), "recent": "many"})


# -- end to end: a client against a sandbox at Gladly's limit -----------------------------------


@pytest.mark.integration
def test_an_export_jobs_downloads_against_the_sandbox_ask_for_no_sleep() -> None:
    # The real clock, a sleep that only records: listing the jobs and downloading one job's
    # four files (five GETs at BULK priority, as the export runs them) never asks to sleep,
    # and Gladly's limit (on, 10 a second) refuses none.
    asked: list[float] = []
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with (
        Sandbox(seed=11, customers=30, now=now, frozen_clock=True) as sb,
        GladlyClient(
            sb.base_url, sb.user, sb.api_token, sleep=asked.append, priority=Priority.BULK
        ) as client,
        tempfile.TemporaryDirectory() as folder,
    ):
        sb.reset_stats()
        jobs = client.exports.list_jobs(status="COMPLETED")
        job = min(jobs, key=lambda j: j.updated_at)
        for name in job.files:
            client.exports.download_file(job.id, name, Path(folder) / name)
        stats = sb.stats()
    assert len(job.files) == 4
    assert asked == []
    assert stats["by_method"]["GET"] == {"200": 5}
