"""Tests for the retry policy: what is retried, how long it waits, and what it logs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from gladly_client.constants import (
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_MAX_SECONDS,
    RETRY_AFTER_MAX_SECONDS,
)
from gladly_client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CustomerMovedError,
    ErrorDetail,
    GladlyConnectionError,
    GladlyError,
    GladlyTimeoutError,
    IncompleteDownloadError,
    NotFoundError,
    PermissionDeniedError,
    ProfileHasOpenConversationsError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    UnexpectedStatusError,
    error_from_response,
)
from gladly_client.retry import (
    BACKOFF_MIN_SECONDS,
    backoff_seconds,
    build_retrying,
    is_retryable,
)

PATH = "/customer-profiles/{customerId}"


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(status=429, method="GET", path_template=PATH, retry_after=retry_after)


def server_error(status: int = 503) -> ServerError:
    return ServerError(status=status, method="GET", path_template=PATH)


def api_error(cls: type[GladlyError], status: int) -> GladlyError:
    if cls is CustomerMovedError:
        return CustomerMovedError(
            old_id="a", new_id="b", status=status, method="GET", path_template=PATH
        )
    return cls(status=status, method="GET", path_template=PATH)  # type: ignore[call-arg]


class Script:
    """A callable that raises the given errors in turn, then returns "ok"."""

    def __init__(self, outcomes: Iterable[BaseException]) -> None:
        self._outcomes = list(outcomes)
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        if self._outcomes:
            exc = self._outcomes.pop(0)
            self.raised.append(exc)
            raise exc
        return "ok"


class Sleeps(list[float]):
    """Records requested sleeps instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def retrying(
    max_attempts: int = 6,
    random: Callable[[], float] = lambda: 1.0,
    logger: logging.Logger | None = None,
) -> tuple[tenacity.Retrying, Sleeps]:
    sleeps = Sleeps()
    return (
        build_retrying(max_attempts=max_attempts, sleep=sleeps, random=random, logger=logger),
        sleeps,
    )


# -- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (rate_limited(), True),
        (rate_limited(retry_after=3.0), True),
        (server_error(500), True),
        (server_error(503), True),
        (GladlyConnectionError("GET", PATH, "connection reset"), True),
        (GladlyTimeoutError("GET", PATH, "read timed out"), True),
        (IncompleteDownloadError("GET", PATH, received=10, expected=100), True),
        (api_error(BadRequestError, 400), False),
        (api_error(ProfileHasOpenConversationsError, 400), False),
        (api_error(AuthenticationError, 401), False),
        (api_error(PermissionDeniedError, 403), False),
        (api_error(NotFoundError, 404), False),
        (api_error(ConflictError, 409), False),
        (api_error(CustomerMovedError, 301), False),
        (api_error(UnexpectedStatusError, 418), False),
        (ResponseValidationError("GET", PATH, "Customer", ["emails.0"]), False),
        (ValueError("bad"), False),
        (ConnectionError("stdlib, not ours"), False),
        (KeyboardInterrupt(), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_retryable(exc: BaseException, expected: bool) -> None:
    assert is_retryable(exc) is expected


# -- backoff_seconds ------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [0.0, 1.5, 7.0])
def test_retry_after_is_honoured_exactly(retry_after: float) -> None:
    for attempt in (1, 4):
        assert backoff_seconds(attempt, rate_limited(retry_after), random=lambda: 1.0) == (
            retry_after
        )


def test_retry_after_is_capped_even_when_built_by_hand() -> None:
    assert backoff_seconds(1, rate_limited(10_000.0)) == RETRY_AFTER_MAX_SECONDS


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (1.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
        (0.5, [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]),
    ],
)
def test_full_jitter_grows_exponentially_to_the_cap(draw: float, expected: list[float]) -> None:
    got = [backoff_seconds(n, server_error(), random=lambda: draw) for n in range(1, 9)]
    assert got == expected
    # A 429 without Retry-After takes the same path.
    assert backoff_seconds(3, rate_limited(None), random=lambda: draw) == expected[2]


def test_jitter_never_drops_below_the_floor() -> None:
    assert backoff_seconds(1, rate_limited(None), random=lambda: 0.0) == BACKOFF_MIN_SECONDS
    assert backoff_seconds(1, None, random=lambda: 0.01) == BACKOFF_MIN_SECONDS


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff_seconds(100_000, None, random=lambda: 1.0) == BACKOFF_MAX_SECONDS


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_numbers_start_at_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt_number"):
        backoff_seconds(attempt, None)


@given(attempt=st.integers(1, 200), draw=st.floats(0.0, 1.0))
def test_backoff_stays_within_jitter_bounds(attempt: int, draw: float) -> None:
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2.0 ** min(attempt - 1, 62))
    wait = backoff_seconds(attempt, server_error(), random=lambda: draw)
    assert BACKOFF_MIN_SECONDS <= wait <= ceiling


# -- build_retrying -------------------------------------------------------------------------------


def test_two_429s_then_success() -> None:
    policy, sleeps = retrying()
    send = Script([rate_limited(), rate_limited()])

    assert policy(send) == "ok"
    assert send.calls == 3
    assert sleeps == [0.5, 1.0]


def test_503_then_success() -> None:
    policy, sleeps = retrying()
    send = Script([server_error(503)])

    assert policy(send) == "ok"
    assert send.calls == 2
    assert sleeps == [0.5]


def test_arguments_are_passed_through() -> None:
    policy, _ = retrying()
    seen: list[tuple[object, ...]] = []

    def send(*args: object, **kwargs: object) -> str:
        seen.append((args, kwargs))
        return "ok"

    assert policy(send, "a", b=2) == "ok"
    assert seen == [(("a",), {"b": 2})]


@pytest.mark.parametrize("max_attempts", [1, 3, 6])
def test_gives_up_after_max_attempts_with_the_last_error(max_attempts: int) -> None:
    policy, sleeps = retrying(max_attempts=max_attempts)
    send = Script([server_error(502 + i % 2) for i in range(max_attempts + 5)])

    with pytest.raises(ServerError) as caught:
        policy(send)

    assert send.calls == max_attempts
    assert caught.value is send.raised[-1]
    assert not isinstance(caught.value, tenacity.RetryError)
    assert len(sleeps) == max_attempts - 1


def test_last_error_keeps_its_own_class() -> None:
    policy, _ = retrying(max_attempts=3)
    last = GladlyTimeoutError("GET", PATH, "read timed out")
    send = Script([rate_limited(), server_error(), last])

    with pytest.raises(GladlyTimeoutError) as caught:
        policy(send)
    assert caught.value is last


@pytest.mark.parametrize(
    "exc",
    [
        api_error(NotFoundError, 404),
        api_error(BadRequestError, 400),
        api_error(AuthenticationError, 401),
        ResponseValidationError("GET", PATH, "Customer", ["id"]),
        ValueError("programming error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_are_not_retried(exc: BaseException) -> None:
    policy, sleeps = retrying()
    send = Script([exc])

    with pytest.raises(type(exc)) as caught:
        policy(send)
    assert caught.value is exc
    assert send.calls == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "exc",
    [
        GladlyConnectionError("GET", PATH, "connection refused"),
        GladlyTimeoutError("GET", PATH, "connect timed out"),
        IncompleteDownloadError("GET", PATH, received=512, expected=None),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_trouble_is_retried(exc: BaseException) -> None:
    policy, sleeps = retrying()
    send = Script([exc, exc])

    assert policy(send) == "ok"
    assert send.calls == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("retry_after", [0.0, 1.5, 7.0])
def test_policy_sleeps_exactly_retry_after(retry_after: float) -> None:
    policy, sleeps = retrying()
    send = Script([rate_limited(retry_after), rate_limited(retry_after)])

    assert policy(send) == "ok"
    assert sleeps == [retry_after, retry_after]


def test_retry_after_header_reaches_the_sleep() -> None:
    # End to end from the response mapping: the header, parsed once in errors, is what we wait.
    exc = error_from_response(
        status=429, method="GET", path_template=PATH, headers={"Retry-After": "3"}, body=b""
    )
    policy, sleeps = retrying()

    policy(Script([exc]))
    assert sleeps == [3.0]


def test_mixed_errors_use_retry_after_only_when_given() -> None:
    policy, sleeps = retrying(random=lambda: 0.5)
    send = Script([server_error(), rate_limited(2.0), rate_limited(None), server_error()])

    assert policy(send) == "ok"
    assert sleeps == [0.25, 2.0, 1.0, 2.0]


@pytest.mark.parametrize("max_attempts", [0, -3])
def test_max_attempts_below_one_is_rejected(max_attempts: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        build_retrying(max_attempts=max_attempts)


# -- logging --------------------------------------------------------------------------------------

TOKEN = "sk_live_9f8e7d6c5b4a3210fedcba9876543210"
EMAIL = "jane.doe@example.com"


def test_each_retry_logs_one_warning_with_only_safe_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test_retry.policy")
    exc = RateLimitError(
        status=429,
        method="GET",
        path_template=PATH,
        request_id="req-42",
        errors=(ErrorDetail(code="too_many_requests", detail=f"user {EMAIL} token {TOKEN}"),),
        retry_after=None,
    )
    policy, _ = retrying(max_attempts=3, logger=logger)
    send = Script([exc])

    with caplog.at_level(logging.DEBUG, logger="test_retry.policy"):
        # The secrets travel alongside the call, as the real client's would.
        assert policy(send, f"/customer-profiles/{EMAIL}?token={TOKEN}", token=TOKEN) == "ok"

    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.levelno == logging.WARNING
    assert record.name == "test_retry.policy"
    assert record.exc_info is None
    assert record.args == (
        "RateLimitError",
        "GET /customer-profiles/{customerId} returned 429 (too_many_requests) [request req-42]",
        1,
        3,
        0.5,
    )
    assert record.getMessage() == (
        "retrying RateLimitError after GET /customer-profiles/{customerId} returned 429 "
        "(too_many_requests) [request req-42] (attempt 1 of 3, waiting 0.50 s)"
    )
    assert TOKEN not in caplog.text
    assert EMAIL not in caplog.text


def test_logs_one_line_per_retry_with_attempt_numbers(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test_retry.count")
    policy, _ = retrying(max_attempts=4, random=lambda: 1.0, logger=logger)

    with caplog.at_level(logging.WARNING, logger="test_retry.count"), pytest.raises(ServerError):
        policy(Script([server_error()] * 4))

    assert [r.args[2:] for r in caplog.records if isinstance(r.args, tuple)] == [
        (1, 4, 0.5),
        (2, 4, 1.0),
        (3, 4, 2.0),
    ]


def test_default_logger_is_the_module_logger(caplog: pytest.LogCaptureFixture) -> None:
    policy = build_retrying(max_attempts=2, sleep=lambda _: None)

    with caplog.at_level(logging.WARNING, logger="gladly_client.retry"):
        policy(Script([server_error()]))

    assert [r.name for r in caplog.records] == ["gladly_client.retry"]
