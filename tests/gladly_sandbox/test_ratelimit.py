"""Rate limit: per-method one-second windows across the organisation, headers on every answer."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from gladly_sandbox import Sandbox
from gladly_sandbox.ratelimit import RateLimiter
from gladly_sandbox.settings import RateLimitAlgorithm

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def _call(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request on a fresh connection (no Gladly credentials unless given)."""
    return requests.request(method, url, timeout=10, **kwargs)


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.25) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=3, customers=10, now=NOW, frozen_clock=True) as sb:
        yield sb


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[tuple[Sandbox, requests.Session, FakeMonotonic]]:
    """The shared sandbox with a hand-moved rate-limit clock and fresh counts and settings."""
    fake = FakeMonotonic()
    sandbox.server.ratelimiter.monotonic = fake
    sandbox.server.ratelimiter.reset()
    session = requests.Session()
    session.auth = (sandbox.user, sandbox.api_token)
    yield sandbox, session, fake
    session.close()
    sandbox.configure(
        rate_limit_per_second=10,
        rate_limit_algorithm="fixed_window",
        retry_after_header=False,
        other_integrations_per_second=0,
    )


def _remaining(response: requests.Response) -> int:
    return int(response.headers["Ratelimit-Remaining-Second"])


def test_limiter_counts_a_burst_in_one_window() -> None:
    fake = FakeMonotonic()
    limiter = RateLimiter(monotonic=fake)
    decisions = [limiter.hit("GET", 10) for _ in range(25)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 15
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] + [0] * 15
    assert {d.limit for d in decisions} == {10}
    assert decisions[-1].retry_after == 1


def test_limiter_windows_follow_whole_seconds_of_the_clock() -> None:
    fake = FakeMonotonic(1000.9)
    limiter = RateLimiter(monotonic=fake)
    assert all(limiter.hit("GET", 10).allowed for _ in range(10))
    assert not limiter.hit("GET", 10).allowed
    fake.value = 1001.0  # a new window starts on the second, not a second after the first hit
    assert limiter.hit("GET", 10).remaining == 9


def test_leaky_bucket_drains_at_the_limit_rate() -> None:
    fake = FakeMonotonic()
    limiter = RateLimiter(monotonic=fake)
    burst = [limiter.hit("GET", 10, "leaky_bucket") for _ in range(12)]
    assert [d.allowed for d in burst] == [True] * 10 + [False] * 2
    fake.value += 0.1  # one request's worth drains
    assert limiter.hit("GET", 10, "leaky_bucket").allowed
    assert not limiter.hit("GET", 10, "leaky_bucket").allowed
    fake.value += 1.0
    assert limiter.hit("GET", 10, "leaky_bucket").remaining == 9


def test_burst_over_http_gets_ten_then_429s(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, _ = api
    responses = [session.get(f"{sb.base_url}/api/v1/agents") for _ in range(25)]
    assert [r.status_code for r in responses] == [200] * 10 + [429] * 15
    assert [_remaining(r) for r in responses] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] + [0] * 15
    assert {r.headers["Ratelimit-Limit-Second"] for r in responses} == {"10"}
    refused = responses[-1]
    assert refused.json() == {"errors": [{"code": "rate_limited", "detail": "rate limit reached"}]}
    assert refused.headers["Content-Type"] == "application/json"
    assert "Retry-After" not in refused.headers
    assert sb.stats()["by_route"]["GET /agents"]["429"] >= 15


def test_methods_have_their_own_windows(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, _ = api
    for _ in range(10):
        assert session.get(f"{sb.base_url}/api/v1/agents").status_code == 200
    assert session.get(f"{sb.base_url}/api/v1/topics").status_code == 429  # GETs share one count
    patch = session.patch(f"{sb.base_url}/api/v1/conversations/unknown", json={})
    assert patch.status_code != 429
    assert _remaining(patch) == 9


def test_next_window_resets_the_count(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, fake = api
    for _ in range(11):
        session.get(f"{sb.base_url}/api/v1/agents")
    assert session.get(f"{sb.base_url}/api/v1/agents").status_code == 429
    fake.value += 1.0
    again = session.get(f"{sb.base_url}/api/v1/agents")
    assert again.status_code == 200
    assert _remaining(again) == 9


def test_retry_after_only_when_switched_on(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, _ = api
    sb.configure(retry_after_header=True)
    answers = [session.get(f"{sb.base_url}/api/v1/agents") for _ in range(11)]
    assert "Retry-After" not in answers[0].headers  # only refusals carry it
    assert answers[-1].status_code == 429
    assert answers[-1].headers["Retry-After"] == "1"


def test_limit_none_switches_it_off(api: tuple[Sandbox, requests.Session, FakeMonotonic]) -> None:
    sb, session, _ = api
    sb.configure(rate_limit_per_second=None)
    answers = [session.get(f"{sb.base_url}/api/v1/agents") for _ in range(30)]
    assert {r.status_code for r in answers} == {200}
    assert "Ratelimit-Remaining-Second" not in answers[-1].headers


def test_error_answers_carry_rate_limit_headers(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, _ = api
    missing = session.get(f"{sb.base_url}/api/v1/no-such-route")
    assert missing.status_code == 404
    assert _remaining(missing) == 9
    denied = _call("GET", f"{sb.base_url}/api/v1/agents", auth=("x@example.com", "wrong"))
    assert denied.status_code == 401
    assert _remaining(denied) == 9  # refused before the limit: shown, not counted


def test_leaky_bucket_over_http(api: tuple[Sandbox, requests.Session, FakeMonotonic]) -> None:
    sb, session, fake = api
    sb.configure(rate_limit_algorithm="leaky_bucket", rate_limit_per_second=5)
    statuses = [session.get(f"{sb.base_url}/api/v1/agents").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    fake.value += 0.2  # drains one request at 5/s
    assert session.get(f"{sb.base_url}/api/v1/agents").status_code == 200


# --- the organisation's other integrations -----------------------------------------------------
# At 3/s their requests of each method are at x.1667, x.5 and x.8333 of every second.


def _others(
    limiter: RateLimiter, algorithm: RateLimitAlgorithm = "fixed_window", others: float = 3
) -> dict[str, int]:
    """Their GET counts, read as the stats read them (every method counted up to now)."""
    counts = limiter.other_integrations(10, algorithm, others)["by_method"]
    return dict(counts.get("GET", {"served": 0, "refused": 0}))


def test_others_who_came_first_leave_us_seven_of_ten() -> None:
    limiter = RateLimiter(monotonic=FakeMonotonic(1000.9))
    decisions = [limiter.hit("GET", 10, "fixed_window", 3) for _ in range(9)]
    assert [d.allowed for d in decisions] == [True] * 7 + [False] * 2
    assert [d.remaining for d in decisions[:7]] == [6, 5, 4, 3, 2, 1, 0]
    assert _others(limiter) == {"served": 3, "refused": 0}


def test_our_burst_first_crowds_the_others_out() -> None:
    fake = FakeMonotonic(1000.05)
    limiter = RateLimiter(monotonic=fake)
    assert all(limiter.hit("GET", 10, "fixed_window", 3).allowed for _ in range(10))
    fake.value = 1000.95
    assert limiter.peek("GET", 10, "fixed_window", 3).remaining == 0
    assert _others(limiter) == {"served": 0, "refused": 3}
    fake.value = 1001.9  # the next second they come first again
    assert sum(limiter.hit("GET", 10, "fixed_window", 3).allowed for _ in range(10)) == 7
    assert _others(limiter) == {"served": 3, "refused": 3}
    assert limiter.peek("POST", 10, "fixed_window", 3).remaining == 7  # POST has its own budget


def test_peek_shows_the_remaining_after_the_others() -> None:
    fake = FakeMonotonic(1000.6)
    limiter = RateLimiter(monotonic=fake)
    assert limiter.peek("GET", 10, "fixed_window", 3).remaining == 8  # x.1667 and x.5 so far
    assert limiter.peek("GET", 10, "fixed_window", 3).remaining == 8  # counted once
    fake.value = 1000.9
    assert limiter.peek("GET", 10, "fixed_window", 3).remaining == 7
    assert _others(limiter) == {"served": 3, "refused": 0}


def test_leaky_bucket_drains_for_them_and_for_us() -> None:
    alone = RateLimiter(monotonic=FakeMonotonic(1000.9))
    burst = [alone.hit("GET", 10, "leaky_bucket", 3).allowed for _ in range(11)]
    # Their x.8333 request still holds a third of a place at x.9: nine of ours fit.
    assert burst == [True] * 9 + [False] * 2
    fake = FakeMonotonic(1000.16)
    limiter = RateLimiter(monotonic=fake)
    assert all(limiter.hit("GET", 10, "leaky_bucket", 3).allowed for _ in range(10))
    fake.value = 1000.9
    # Full at x.16: their x.1667 request is refused; x.5 and x.8333 find room as it drains.
    assert limiter.peek("GET", 10, "leaky_bucket", 3).remaining == 5
    assert limiter.peek("GET", 10, "leaky_bucket", 0).remaining == 5  # their places stay taken
    assert _others(limiter, "leaky_bucket") == {"served": 2, "refused": 1}
    plain = RateLimiter(monotonic=FakeMonotonic(1000.16))
    assert all(plain.hit("GET", 10, "leaky_bucket").allowed for _ in range(10))
    plain.monotonic = FakeMonotonic(1000.9)
    assert plain.peek("GET", 10, "leaky_bucket").remaining == 7


@pytest.mark.parametrize("algorithm", ["fixed_window", "leaky_bucket"])
def test_switching_them_off_stops_counting_them(algorithm: RateLimitAlgorithm) -> None:
    fake = FakeMonotonic(1000.9)
    limiter = RateLimiter(monotonic=fake)
    assert limiter.hit("GET", 10, algorithm, 3).remaining < 9
    fake.value = 1005.9
    assert limiter.hit("GET", 10, algorithm, 0).remaining == 9
    assert _others(limiter, algorithm, 0) == {"served": 3, "refused": 0}  # the first second only


@pytest.mark.parametrize("algorithm", ["fixed_window", "leaky_bucket"])
def test_a_long_idle_past_is_counted_served_without_replaying_it(
    algorithm: RateLimitAlgorithm,
) -> None:
    fake = FakeMonotonic(1000.9)
    limiter = RateLimiter(monotonic=fake)
    limiter.hit("GET", 10, algorithm, 3)
    fake.value = 1000.9 + 1e9  # thirty years: replaying three billion requests would hang
    assert limiter.hit("GET", 10, algorithm, 3).remaining == (
        6 if algorithm == "fixed_window" else 8
    )
    assert _others(limiter, algorithm) == {"served": 3 + 3_000_000_000, "refused": 0}


def test_a_new_rate_starts_with_the_current_second() -> None:
    fake = FakeMonotonic(1000.9)
    limiter = RateLimiter(monotonic=fake)
    limiter.hit("GET", 10, "fixed_window", 3)
    fake.value = 1060.95  # at 6/s theirs are at x.0833, x.25, … x.9167: six before ours
    assert limiter.hit("GET", 10, "fixed_window", 6).remaining == 3
    assert _others(limiter, others=6) == {"served": 9, "refused": 0}


def test_reset_forgets_the_others_and_the_counts_reset_keeps_the_window() -> None:
    fake = FakeMonotonic(1000.9)
    limiter = RateLimiter(monotonic=fake)
    limiter.hit("GET", 10, "fixed_window", 3)
    limiter.reset_other_integrations()
    assert _others(limiter) == {"served": 0, "refused": 0}
    assert limiter.peek("GET", 10, "fixed_window", 3).remaining == 6  # their places stay taken
    limiter.reset()
    assert limiter.peek("GET", 10, "fixed_window", 0).remaining == 10
    assert limiter.other_integrations(10, "fixed_window", 0)["by_method"] == {}


def _step_by_step(
    algorithm: str, limit: float, rate: float, ours: list[float]
) -> tuple[list[bool], int, int]:
    """Every request in time order, theirs from the first second of ours (the reference)."""
    capacity = int(limit)
    k = math.ceil(math.floor(ours[0]) * rate - 0.5) if rate else 0
    events: list[tuple[float, bool]] = []
    while rate and (k + 0.5) / rate <= ours[-1]:
        events.append(((k + 0.5) / rate, False))
        k += 1
    events = sorted(events + [(t, True) for t in ours])  # theirs first at the same moment
    allowed: list[bool] = []
    served = refused = 0
    window, used, level, at = -1, 0, 0.0, None
    for moment, is_ours in events:
        if algorithm == "fixed_window":
            if math.floor(moment) != window:
                window, used = math.floor(moment), 0
            passes = used < capacity
            used += passes
        else:
            level = level if at is None else max(0.0, level - (moment - at) * limit)
            at = moment
            passes = level + 1.0 <= capacity + 1e-9
            level += passes
        if is_ours:
            allowed.append(passes)
        elif passes:
            served += 1
        else:
            refused += 1
    return allowed, served, refused


@pytest.mark.parametrize("algorithm", ["fixed_window", "leaky_bucket"])
def test_limiter_agrees_with_counting_every_request_in_turn(algorithm: RateLimitAlgorithm) -> None:
    # Rates whose requests never fall exactly on a second's edge (floats would disagree there);
    # 31/3 with a limit of 10.5 makes some seconds hold more of theirs than the limit; 0 is the
    # limiter without them.
    pairs = [
        (10.0, 0.0),
        (10.0, 3.0),
        (10.0, 9.0),
        (10.0, 10 / 3),
        (10.5, 31 / 3),
        (3.0, 1 / 3),
        (5.0, 4.0),
    ]
    rng = random.Random(7)
    for _ in range(300):
        limit, rate = rng.choice(pairs)
        ours, moment = [], 1000 + rng.random()
        for _ in range(rng.randint(1, 40)):
            moment += rng.choice(
                [0.0, 0.001, rng.random() * 0.2, rng.random() * 3, rng.random() * 40]
            )
            ours.append(moment)
        fake = FakeMonotonic(ours[0])
        limiter = RateLimiter(monotonic=fake)
        allowed, previous = [], ours[0]
        for moment in ours:
            fake.value = previous + (moment - previous) * rng.random()
            if rng.random() < 0.3:  # a peek between ours changes nothing
                limiter.peek("GET", limit, algorithm, rate)
            fake.value = previous = moment
            allowed.append(limiter.hit("GET", limit, algorithm, rate).allowed)
        counts = limiter.other_integrations(limit, algorithm, rate)["by_method"]
        got = (allowed, *counts.get("GET", {"served": 0, "refused": 0}).values())
        assert got == _step_by_step(algorithm, limit, rate, ours), (limit, rate, ours)


def test_others_lower_the_remaining_header_over_http(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, fake = api
    changed = _call(
        "PATCH", f"{sb.base_url}/_sandbox/settings", json={"other_integrations_per_second": 3}
    )
    assert changed.status_code == 200
    assert changed.json()["other_integrations_per_second"] == 3.0
    sb.reset_stats()
    fake.value = 1000.9
    answers = [session.get(f"{sb.base_url}/api/v1/agents") for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 7 + [429]
    assert _remaining(answers[0]) == 6
    stats = _call("GET", f"{sb.base_url}/_sandbox/stats").json()
    assert stats["other_integrations"]["by_method"]["GET"] == {"served": 3, "refused": 0}
    # A stats read counts every method up to now: three each, none refused.
    assert stats["other_integrations"]["served"] == 15
    assert stats["other_integrations"]["refused"] == 0


def test_our_burst_shows_as_their_refusals_in_the_stats(
    api: tuple[Sandbox, requests.Session, FakeMonotonic],
) -> None:
    sb, session, fake = api
    sb.configure(other_integrations_per_second=3)
    fake.value = 1000.05
    assert all(session.get(f"{sb.base_url}/api/v1/agents").ok for _ in range(10))
    fake.value = 1000.95
    others = sb.stats()["other_integrations"]
    assert others["by_method"]["GET"] == {"served": 0, "refused": 3}
    assert others["refused"] == 3
    assert _call("POST", f"{sb.base_url}/_sandbox/stats/reset").status_code == 204
    assert sb.stats()["other_integrations"] == {"served": 0, "refused": 0, "by_method": {}}
