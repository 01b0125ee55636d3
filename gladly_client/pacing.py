"""The pacing rules of one HTTP method, as plain functions over plain state (no I/O, no locks).

`Throttle` keeps this state in memory for one process; `gladly_client.budget` keeps the very
same state in a file that every process of the machine reads and writes under a lock, so the
rules are written once and the processes agree on them.

Two things set the pace of a method: the configured rate (our share of Gladly's limit), and
cuts that recover linearly while answers come back without a 429.
- Slots are `1 / rate` apart (GCRA, virtual scheduling), with a burst tolerance: while the
  budget is idle, up to our share's per-second count go at once instead of one interval
  apart. Idle means nothing says it binds: the pace is not cut, no pause holds,
  the other priority has not asked in the last MIXED_MEMORY_SECONDS, and every slot handed out
  has been answered (so the pause rules below have seen the latest count). Whatever the
  tolerance, no one-second window holds more than `ceil(rate)` of our slots (`Pace.recent`).
- A 429 pauses the method until the next window.
- An answer whose `Ratelimit-Remaining-Second` is 1 or 0 pauses the method until the next
  window: the window's last request is left to the other integrations. At 0 the window is spent
  although we kept to our share: they are busy, so the pace also gives way by a tenth (once
  per window). A 429 that says 0 remain gives way the same; a 429 without the header halves.
- A pause voids the slots already handed out (`Pace.epoch`): their holders ask again.
- Where the next window starts is learnt from the rises of `Ratelimit-Remaining-Second`
  (`_learn_phase`); until it is known, a pause lasts a whole second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gladly_client.constants import (
    GIVE_WAY_FACTOR,
    GLADLY_RATE_LIMIT_PER_SECOND,
    RATE_WINDOW_SECONDS,
    THROTTLE_BACKOFF_FACTOR,
    THROTTLE_RECOVERY_PER_SECOND,
)

# A window's start is used once known within this much; answers travel, so wait this much more.
MAX_PHASE_ARC = 0.25
PHASE_MARGIN = 0.02

# Requests of a window we leave to the other integrations: once an answer says this few
# remain, ours wait for the next window.
LEFT_TO_OTHERS = 1

# For this long after a request of one priority, the other gets no burst: mixed, every
# slot waits its turn and the queue rule decides who goes first.
MIXED_MEMORY_SECONDS = 2.0

# Slack when comparing times on the clock (slots are sums of float intervals).
_EPSILON = 1e-9
# A budget file edited to hold more recent slots than this is refused.
_MAX_RECENT = 10_000

__all__ = ["Pace", "Priority", "burst_size", "effective_rate", "observe", "reserve"]


class Priority(StrEnum):
    """Who goes first when the budget is contended.

    PROMPT: a deletion, its verification, a one-off request someone is waiting for.
    BULK: enrichment and export work that can wait a few slots.
    """

    PROMPT = "prompt"
    BULK = "bulk"


@dataclass
class Pace:
    """One method's pacing state; JSON-ready through `to_json` / `from_json`."""

    rate: float  # the 429-driven rate (configured, or cut and recovering)
    # The theoretical time of the next slot (virtual scheduling / GCRA): without a burst, the
    # earliest time the next request of this method may be sent.
    next_free: float = -math.inf
    # Recovery is linear from (anchor_rate at anchor_time); None means "never penalised".
    anchor_rate: float = 0.0
    anchor_time: float | None = None
    # Time of the last multiplicative cut, so one overrun's burst of 429s cuts only once.
    last_cut_time: float | None = None
    # Gladly's limit as its last `Ratelimit-Limit-Second` said.
    limit: float = GLADLY_RATE_LIMIT_PER_SECOND
    # When an answer last said the organisation's window was spent (remaining 0).
    gave_way: float | None = None
    # Bumped by every pause: a slot reserved before it is void and must be reserved again.
    epoch: int = 0
    # The last answer's time and `Ratelimit-Remaining-Second` (-1: none yet).
    answered: float | None = None
    remaining: int = -1
    # Where Gladly's one-second windows start, as an arc of the clock modulo one second
    # (start, length) that holds every rollover seen so far; None until one is seen.
    phase: tuple[float, float] | None = None
    # Nothing of this method is sent before this time (a pause), burst or not.
    paused_until: float = -math.inf
    # The latest slot handed out, and when the last answer of any kind came back: a request
    # goes sooner than an interval after the latest slot only once that slot was answered.
    last_slot: float = -math.inf
    heard: float | None = None
    # The slots handed out within the last window (and ahead), ascending: no one-second window
    # holds more than `ceil(rate)` of them.
    recent: list[float] = field(default_factory=list)
    # When a PROMPT and a BULK request last asked for a slot (both lately: no bursts).
    prompted: float | None = None
    bulked: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A dict `json.dumps` accepts (infinity as None)."""
        return {
            "rate": self.rate,
            "next_free": None if math.isinf(self.next_free) else self.next_free,
            "anchor_rate": self.anchor_rate,
            "anchor_time": self.anchor_time,
            "last_cut_time": self.last_cut_time,
            "limit": self.limit,
            "gave_way": self.gave_way,
            "epoch": self.epoch,
            "answered": self.answered,
            "remaining": self.remaining,
            "phase": None if self.phase is None else list(self.phase),
            "paused_until": _finite_or_none(self.paused_until),
            "last_slot": _finite_or_none(self.last_slot),
            "heard": self.heard,
            "recent": list(self.recent),
            "prompted": self.prompted,
            "bulked": self.bulked,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pace:
        """The inverse of `to_json`; raises KeyError, TypeError or ValueError on a bad dict."""
        next_free = data["next_free"]
        pace = cls(
            rate=float(data["rate"]),
            next_free=-math.inf if next_free is None else float(next_free),
            anchor_rate=float(data["anchor_rate"]),
            anchor_time=_optional_float(data["anchor_time"]),
            last_cut_time=_optional_float(data["last_cut_time"]),
            limit=float(data["limit"]),
            gave_way=_optional_float(data["gave_way"]),
            epoch=int(data["epoch"]),
            answered=_optional_float(data["answered"]),
            remaining=int(data["remaining"]),
            phase=None if data["phase"] is None else _arc(data["phase"]),
            # Absent from a file written before bursts were allowed: nothing known yet.
            paused_until=_time_or_minus_infinity(data.get("paused_until")),
            last_slot=_time_or_minus_infinity(data.get("last_slot")),
            heard=_optional_float(data.get("heard")),
            recent=_times(data.get("recent", [])),
            prompted=_optional_float(data.get("prompted")),
            bulked=_optional_float(data.get("bulked")),
        )
        if not all(math.isfinite(v) and v > 0 for v in (pace.rate, pace.limit)):
            raise ValueError("pace rate and limit must be finite numbers > 0")
        return pace


def effective_rate(pace: Pace, configured: float, floor: float, now: float) -> float:
    """The rate `reserve` paces at: the configured or cut rate, never below `floor`.

    Gladly "may adjust limits": when `Ratelimit-Limit-Second` says less than the 10 the
    configured rate was sized for, the rate shrinks in proportion (it never grows).
    """
    adjusted = configured * min(1.0, pace.limit / GLADLY_RATE_LIMIT_PER_SECOND)
    return max(floor, min(adjusted, pace.rate))


def burst_size(rate: float) -> int:
    """How many requests may go at once from an idle budget at `rate`: our share's count."""
    return max(1, math.floor(rate + _EPSILON))


def reserve(
    pace: Pace, now: float, priority: Priority, configured: float, floor: float
) -> tuple[float, bool]:
    """Reserve the next send slot: (slot time, True); or, for BULK, (retry time, False).

    GCRA (virtual scheduling): `next_free` is the theoretical time of the next slot, `1 / rate`
    after the last. While the budget is idle a request may go up to `burst_size - 1` intervals
    before it (a burst tolerance of up to one window), so a handful of requests after a quiet
    spell go at once; the long-run rate stays `rate`. The budget is not idle while the pace is
    cut or paused, while the other priority asked within MIXED_MEMORY_SECONDS, or, for going
    ahead of the last slot's interval, while a request of ours is unanswered. Whatever the
    tolerance, no one-second window holds more than `ceil(rate)` of our slots. A bulk request
    takes a slot only when at most one is already queued ahead of it, so a prompt request
    arriving meanwhile finds the queue short and goes next.
    """
    rate = effective_rate(pace, configured, floor, now)
    interval = 1.0 / rate
    _forget_old_slots(pace, now)
    mixed = _other_priority_about(pace, now, priority)
    if pace.rate < configured or now < pace.paused_until:
        # Cut or paused: the budget binds; every slot waits its turn, as without bursts.
        slot = max(now, pace.next_free)
    elif mixed:
        # Both priorities about: no bursts, and the queue rule below decides who goes first.
        # A prompt request is spaced from the last slot, not made to repay a bulk burst.
        slot = max(
            now, pace.last_slot + interval if priority is Priority.PROMPT else pace.next_free
        )
    else:
        slot = max(now, pace.next_free - (burst_size(rate) - 1) * interval)
        if not _all_answered(pace):
            # A request of ours is in flight unseen: one interval after it, as without bursts.
            slot = max(slot, pace.last_slot + interval)
    most = max(1, math.ceil(rate - _EPSILON))
    if len(pace.recent) >= most:
        # The slot `most` back must have left the window: (slot - 1 s, slot] holds `most`.
        slot = max(slot, pace.recent[-most] + RATE_WINDOW_SECONDS)
    if priority is Priority.BULK and slot - now > interval + _EPSILON:
        return slot - interval, False
    pace.next_free = max(pace.next_free, slot) + interval
    pace.last_slot = slot
    pace.recent.append(slot)
    return slot, True


def _other_priority_about(pace: Pace, now: float, priority: Priority) -> bool:
    """Note that `priority` asked now; whether the other priority asked in the last while."""
    if priority is Priority.PROMPT:
        pace.prompted, other = now, pace.bulked
    else:
        pace.bulked, other = now, pace.prompted
    return other is not None and now - other < MIXED_MEMORY_SECONDS


def _all_answered(pace: Pace) -> bool:
    """Whether an answer came back after the latest slot handed out.

    Then no request of ours is in flight unseen, and the pause rules have seen the latest
    `Ratelimit-Remaining-Second`. A request that never gets an answer (a dropped connection)
    holds bursts back only until the next answer.
    """
    return pace.heard is not None and pace.heard > pace.last_slot


def _forget_old_slots(pace: Pace, now: float) -> None:
    """Drop the slots no window that ends at `now` or later holds."""
    keep = 0
    while keep < len(pace.recent) and pace.recent[keep] + RATE_WINDOW_SECONDS <= now:
        keep += 1
    if keep:
        del pace.recent[:keep]


def observe(
    pace: Pace,
    now: float,
    status: int,
    remaining: int | None,
    limit: int | None,
    configured: float,
    floor: float,
) -> None:
    """Adapt to one answer: its status, `Ratelimit-Remaining-Second` and `-Limit-Second`."""
    pace.heard = now if pace.heard is None else max(pace.heard, now)
    if limit is not None and limit > 0:
        pace.limit = float(limit)
    _learn_phase(pace, now, 0 if status == 429 and remaining is None else remaining)
    if status == 429:
        cut_recently = (
            pace.last_cut_time is not None and now - pace.last_cut_time < RATE_WINDOW_SECONDS
        )
        # The 429s of requests already in flight describe the same overrun; cutting for each
        # of them would drop straight to the floor after a single busy second. A 429 that
        # Gladly explains with its count (the header says 0 remain) is a spent window, which
        # the pause handles: the pace only gives way. Without the count, halve it.
        if not cut_recently:
            factor = THROTTLE_BACKOFF_FACTOR if remaining is None else GIVE_WAY_FACTOR
            pace.rate = max(floor, pace.rate * factor)
            pace.last_cut_time = now
        pace.anchor_rate, pace.anchor_time = pace.rate, now
        _pause(pace, now)
        return
    # Only an answer that is not a 429 earns recovery; silence or 429s prove nothing.
    pace.rate = _recovered(pace, configured, now)
    if remaining == 0 and (pace.gave_way is None or now - pace.gave_way >= RATE_WINDOW_SECONDS):
        # The organisation's window is spent though we stayed within our share: the other
        # integrations are busy, so give way a little (once per window) and recover slowly.
        pace.rate = max(floor, pace.rate * GIVE_WAY_FACTOR)
        pace.gave_way = now
        pace.anchor_rate, pace.anchor_time = pace.rate, now
    if remaining is not None and remaining <= LEFT_TO_OTHERS:
        # The window's last requests are left to the other integrations: nothing more of
        # ours until the next window.
        _pause(pace, now)


def _pause(pace: Pace, now: float) -> None:
    """Nothing more this window: wait for the next; slots reserved before now are void."""
    wait = RATE_WINDOW_SECONDS
    if pace.phase is not None and pace.phase[1] <= MAX_PHASE_ARC:
        start, length = pace.phase
        # The latest the next window can start, and a little more for the answer's travel.
        wait = (start + length + PHASE_MARGIN - now) % RATE_WINDOW_SECONDS
    pace.next_free = pace.paused_until = now + wait
    pace.epoch += 1
    # The voided slots will not be sent: they count neither in a window nor as unanswered.
    while pace.recent and pace.recent[-1] > now:
        pace.recent.pop()
    pace.last_slot = min(pace.last_slot, now)


def _learn_phase(pace: Pace, now: float, remaining: int | None) -> None:
    """Narrow down where windows start from a jump up in `Ratelimit-Remaining-Second`.

    Within one window remaining only falls; a rise by 2 or more (1 could be two answers
    crossing) means a new window began between the two answers.
    """
    if remaining is None:
        return
    before, pace.answered, previous = pace.answered, now, pace.remaining
    pace.remaining = remaining
    if before is None or previous < 0 or remaining < previous + 2:
        return
    seen = (before % RATE_WINDOW_SECONDS, min(RATE_WINDOW_SECONDS, now - before))
    pace.phase = seen if pace.phase is None else _intersect(pace.phase, seen) or seen


def _intersect(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float] | None:
    """The common part of two arcs of the one-second circle, or None."""
    offset = (b[0] - a[0]) % RATE_WINDOW_SECONDS
    for shift in (offset, offset - RATE_WINDOW_SECONDS):
        low, high = max(0.0, shift), min(a[1], shift + b[1])
        if high >= low:
            return ((a[0] + low) % RATE_WINDOW_SECONDS, high - low)
    return None


def _arc(value: Any) -> tuple[float, float]:
    start, length = (float(v) for v in value)
    if not (0.0 <= start < RATE_WINDOW_SECONDS and 0.0 <= length <= RATE_WINDOW_SECONDS):
        raise ValueError("phase must be [start, length] within one window")
    return (start, length)


def _recovered(pace: Pace, configured: float, now: float) -> float:
    # Linear from the last penalty, computed from the clock so no timer is needed.
    if pace.anchor_time is None or pace.rate >= configured:
        return min(configured, pace.rate)
    elapsed = max(0.0, now - pace.anchor_time)
    regained = THROTTLE_RECOVERY_PER_SECOND * configured * elapsed
    return min(configured, pace.anchor_rate + regained)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _finite_or_none(value: float) -> float | None:
    return None if math.isinf(value) else value


def _time_or_minus_infinity(value: Any) -> float:
    return -math.inf if value is None else float(value)


def _times(value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) > _MAX_RECENT:
        raise ValueError("recent must be a list of times")
    times = [float(v) for v in value]
    if not all(math.isfinite(t) for t in times):
        raise ValueError("recent must hold finite times")
    return sorted(times)
