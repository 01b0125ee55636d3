"""Which client errors are worth retrying, how long to wait, and the tenacity policy for both."""

from __future__ import annotations

import logging
import random as _random
import time
from collections.abc import Callable

import tenacity

from gladly_client.constants import (
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_MAX_SECONDS,
    RETRY_AFTER_MAX_SECONDS,
)
from gladly_client.errors import (
    GladlyConnectionError,
    RateLimitError,
    ServerError,
)

__all__ = ["BACKOFF_MIN_SECONDS", "backoff_seconds", "build_retrying", "is_retryable"]

# Full jitter may draw ~0; this floor keeps a storm of 429s from turning into a busy loop.
BACKOFF_MIN_SECONDS = 0.05
# 2**62 seconds already dwarfs any cap; bounding the exponent keeps large attempt numbers
# from overflowing the float multiplication.
_MAX_BACKOFF_EXPONENT = 62

# Transient by nature: Gladly's rate limit, its own failures, and a request that never got (or
# never finished) an answer. Everything else would fail the same way again.
_RETRYABLE: tuple[type[BaseException], ...] = (RateLimitError, ServerError, GladlyConnectionError)

_LOG = logging.getLogger(__name__)


def is_retryable(exc: BaseException) -> bool:
    """True for errors a later identical request may not hit: 429, 5xx, connection trouble."""
    return isinstance(exc, _RETRYABLE)


def backoff_seconds(
    attempt_number: int,
    exc: BaseException | None,
    *,
    random: Callable[[], float] = _random.random,
) -> float:
    """Seconds to wait after failed attempt `attempt_number` (1-based) that raised `exc`.

    A 429's `Retry-After` (already parsed and capped) is honoured exactly. Otherwise "full
    jitter": a uniform draw below an exponentially growing, capped ceiling, never below
    `BACKOFF_MIN_SECONDS`.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt_number starts at 1, got {attempt_number}")
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        # Re-clamped in case the error was built by hand rather than by parse_retry_after.
        return max(0.0, min(exc.retry_after, RETRY_AFTER_MAX_SECONDS))
    exponent = min(attempt_number - 1, _MAX_BACKOFF_EXPONENT)
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2.0**exponent)
    draw = min(1.0, max(0.0, random()))
    return max(BACKOFF_MIN_SECONDS, draw * ceiling)


def build_retrying(
    *,
    max_attempts: int,
    sleep: Callable[[float], None] = time.sleep,
    random: Callable[[], float] = _random.random,
    logger: logging.Logger | None = None,
) -> tenacity.Retrying:
    """A tenacity policy: retry `is_retryable` errors up to `max_attempts` calls in total.

    Waits come from `backoff_seconds`; the last error is re-raised as itself (not as
    `tenacity.RetryError`). Each retry logs one WARNING line naming the error's class and its
    message, which by construction holds only method, path template, status, codes and request
    id. Use as `build_retrying(max_attempts=n)(send_once, *args)`.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    log = logger if logger is not None else _LOG

    def wait(retry_state: tenacity.RetryCallState) -> float:
        return backoff_seconds(retry_state.attempt_number, _exception(retry_state), random=random)

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        exc = _exception(retry_state)
        log.warning(
            "retrying %s after %s (attempt %d of %d, waiting %.2f s)",
            type(exc).__name__,
            str(exc),
            retry_state.attempt_number,
            max_attempts,
            retry_state.upcoming_sleep,
        )

    return tenacity.Retrying(
        sleep=sleep,
        stop=tenacity.stop_after_attempt(max_attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(is_retryable),
        before_sleep=before_sleep,
        reraise=True,
    )


def _exception(retry_state: tenacity.RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None
