"""Rate limit: per-method one-second windows across the organisation, headers on every answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from gladly_sandbox import Sandbox
from gladly_sandbox.ratelimit import RateLimiter

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
        rate_limit_per_second=10, rate_limit_algorithm="fixed_window", retry_after_header=False
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
