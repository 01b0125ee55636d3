"""The organisation's other integrations: evenly spaced requests that share the rate limit."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Gladly's HTTP methods; the other integrations send each at the same rate.
METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
_EPSILON = 1e-9  # as in the leaky bucket's own comparison


# Their k-th request of a method is at (k + 0.5) / rate seconds of the monotonic clock: a fixed
# phase, so runs with the same clock see the same crowd. Progress is kept as an index k, not a
# time, so a request on a window's edge is counted exactly once.


def at_or_before(rate: float, moment: float) -> int:
    """The index of the last request scheduled at or before `moment`."""
    return math.floor(moment * rate - 0.5)


def before(rate: float, moment: float) -> int:
    """The index of the last request scheduled strictly before `moment`."""
    return math.ceil(moment * rate - 0.5) - 1


def first_index(rate: float, now: float, since: float | None) -> int:
    """Where a new schedule starts: the index before its first request to count.

    From the start of the current second, or from `since` (when the limiter last looked at this
    method) if that is later, so no request of theirs is counted twice.
    """
    start = before(rate, math.floor(now))
    return start if since is None else max(start, at_or_before(rate, since))


@dataclass(frozen=True)
class Arrivals:
    """What counting the others' requests up to now did: how many passed and were refused."""

    last: int  # index of the last scheduled request now counted
    served: int
    refused: int


def through_window(
    rate: float, capacity: int, last: int, now: float, window: int | None, used: int
) -> tuple[Arrivals, int, int]:
    """Count the others' requests after index `last` up to `now` in one-second windows.

    `window`, `used`: the window counted last and its count (None: none yet). Returns the
    arrivals and the current window and count. Windows that none of our requests reached are
    counted without a loop: each holds floor(rate) or ceil(rate) requests, and rate < capacity + 1.
    """
    current = math.floor(now)
    if window is None or window > current:
        window, used = current, 0
    newest = at_or_before(rate, now)
    if newest <= last:
        return Arrivals(last, 0, 0), window, used
    served = refused = 0
    if window < current:
        # The rest of the window counted last, on top of what it holds.
        end = min(newest, before(rate, window + 1))
        arrived = max(0, end - last)
        taken = min(arrived, max(0, capacity - used))
        served, refused = taken, arrived - taken
        last = max(last, end)
        # Whole windows since: each started empty.
        end = before(rate, current)
        arrived = max(0, end - last)
        over = max(0, arrived - capacity * (current - window - 1))
        served, refused = served + arrived - over, refused + over
        last = max(last, end)
        window, used = current, 0
    arrived = max(0, newest - last)
    taken = min(arrived, max(0, capacity - used))
    served, refused = served + taken, refused + arrived - taken
    return Arrivals(newest, served, refused), window, used + taken


def through_bucket(
    rate: float,
    drain: float,
    capacity: int,
    last: int,
    now: float,
    bucket: tuple[float, float] | None,
) -> tuple[Arrivals, tuple[float, float] | None]:
    """Count the others' requests after index `last` up to `now` in a leaky bucket.

    `bucket`: its level and when (None: empty); it drains at `drain` per second (`rate` <=
    `drain`). Returns the arrivals and the bucket (level, time). Only the first requests can
    find the bucket full: once one is served, each later one finds it lower, so the rest are
    counted without a loop.
    """
    level, at = bucket or (0.0, -math.inf)
    if bucket is not None:  # never before the bucket's own time
        last = max(last, at_or_before(rate, at))
    newest = at_or_before(rate, now)
    served = refused = 0
    index = last + 1
    while index <= newest:
        moment = (index + 0.5) / rate
        level = max(0.0, level - max(0.0, moment - at) * drain)
        at = max(at, moment)
        if level + 1.0 > capacity + _EPSILON:
            refused += 1
            index += 1
            continue
        rest = newest - index
        # After each served request the level is max(1, previous - (drain / rate - 1)).
        level = max(1.0, level + 1.0 - rest * (drain / rate - 1.0)) if rest else level + 1.0
        at = (newest + 0.5) / rate if rest else at
        served = rest + 1
        break
    arrivals = Arrivals(max(last, newest), served, refused)
    return arrivals, (level, at) if math.isfinite(at) else bucket
