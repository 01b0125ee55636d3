"""Gladly's Events API: the organisation's recent state changes, kept 24 hours, read as JSONL."""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gladly_sandbox.errors import ApiError
from gladly_sandbox.tables import quantize, render_time, to_micros

if TYPE_CHECKING:
    from gladly_sandbox.clock import SandboxClock
    from gladly_sandbox.orgdata import OrgData

# Documented: the entity types `GET /events?entities=` accepts.
ENTITIES: tuple[str, ...] = (
    "AGENT_AVAILABILITY",
    "AGENT_STATUS",
    "CONTACT",
    "CONVERSATION",
    "CUSTOMER",
    "PAYMENT_REQUEST",
    "TASK",
)
# Documented: startAt "must be from last 24 hours"; the sandbox keeps events exactly that long.
RETENTION = timedelta(hours=24)
# Documented as webhook events only; streamed while `profile_events_in_stream` is on.
PROFILE_EVENTS = frozenset(
    {"CUSTOMER_PROFILE/CREATED", "CUSTOMER_PROFILE/UPDATED", "CUSTOMER_PROFILE/DELETED"}
)
# The entity an event type belongs to, where its prefix is not the entity's name.
_ENTITY_OF_PREFIX = {"CONVERSATION_ASSIGNEE": "CONVERSATION", "CUSTOMER_PROFILE": "CUSTOMER"}
# Event ids sort like the order events were recorded in: the first characters count up in an
# alphabet whose ASCII order is its order (all of it URL-safe base64), the rest is a keyed hash.
_SORTABLE = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_SEQ_CHARS = 8
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
EVENT_DIGITS = 3  # event timestamps show milliseconds, like `2019-07-03T04:30:12.070Z`
JSONLINES = "application/x-jsonlines"


def entity_of(event_type: str) -> str:
    """The `entities` value that selects events of `event_type`."""
    prefix = event_type.split("/", 1)[0]
    return _ENTITY_OF_PREFIX.get(prefix, prefix)


class EventLog:
    """The organisation's events in the order they happened, for the last 24 hours.

    Ids sort in recording order and timestamps never decrease, so the log stays sorted by
    (timestamp, id) — the order `GET /events` answers in.
    """

    def __init__(self, seed: int) -> None:
        self._key = hashlib.blake2b(f"{seed}:events".encode(), digest_size=16).digest()
        # Counting up from a seeded point (with room for 2**47 events) looks less regular.
        self._base = int.from_bytes(self._key[:8], "big") % (64**_SEQ_CHARS // 2)
        self._lock = threading.Lock()
        self._ts: list[int] = []
        self._events: list[dict[str, Any]] = []
        self._seq = 0

    def _event_id(self, seq: int) -> str:
        head = []
        rest = self._base + seq
        for _ in range(_SEQ_CHARS):
            rest, digit = divmod(rest, 64)
            head.append(_SORTABLE[digit])
        digest = hashlib.blake2b(seq.to_bytes(8, "big"), key=self._key, digest_size=16).digest()
        tail = "".join(_URLSAFE[b % 64] for b in digest[: 22 - _SEQ_CHARS])
        return "".join(reversed(head)) + tail

    def record(
        self,
        now: datetime,
        event_type: str,
        content: dict[str, Any],
        initiator: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Append one event at `now` (never before the previous one) and return it."""
        with self._lock:
            ts = quantize(to_micros(now), EVENT_DIGITS)
            if self._ts and ts < self._ts[-1]:
                ts = self._ts[-1]
            event: dict[str, Any] = {
                "id": self._event_id(self._seq),
                "type": event_type,
                "timestamp": render_time(ts, EVENT_DIGITS),
            }
            if initiator is not None:
                event["initiator"] = initiator
            event["content"] = content
            self._seq += 1
            self._ts.append(ts)
            self._events.append(event)
            self._prune_locked(ts)
            return event

    def window(
        self,
        start: datetime,
        end: datetime,
        entities: Collection[str],
        *,
        now: datetime,
        profile_events: bool = True,
    ) -> list[dict[str, Any]]:
        """Events with start <= timestamp <= end of the given entities, ascending."""
        start_us, end_us = to_micros(start), to_micros(end)
        with self._lock:
            self._prune_locked(to_micros(now))
            low = bisect_left(self._ts, start_us)
            high = bisect_right(self._ts, end_us)
            chosen = self._events[low:high] if high > low else []
        wanted = frozenset(entities)
        return [
            event
            for event in chosen
            if entity_of(event["type"]) in wanted
            and (profile_events or event["type"] not in PROFILE_EVENTS)
        ]

    def count(self, now: datetime) -> int:
        """How many events the organisation still keeps (the last 24 hours)."""
        with self._lock:
            self._prune_locked(to_micros(now))
            return len(self._ts)

    def _prune_locked(self, now_us: int) -> None:
        cutoff = now_us - int(RETENTION.total_seconds() * 1_000_000)
        drop = bisect_left(self._ts, cutoff)
        if drop:
            del self._ts[:drop]
            del self._events[:drop]


class EventOperations:
    """What an Organisation records on each state change (mixed into it)."""

    data: OrgData
    clock: SandboxClock
    events: EventLog
    profile_events_in_stream: bool

    # --- recording ---

    def _emit(
        self,
        event_type: str,
        content: dict[str, Any],
        initiator: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.events.record(self.clock.now(), event_type, content, initiator)

    def _api_initiator(self) -> dict[str, str]:
        """Changes made through the REST API (ASSUMPTION: the integration's id, type API)."""
        return {"id": self.data.integration_id, "type": "API"}

    def _assignee(self, conv: int) -> dict[str, str]:
        """The conversation's inbox and agent, as an event's `assignee` / `context.assignee`."""
        data = self.data
        assignee = {"inboxId": data.inboxes[data.convs.inbox[conv]].id}
        if data.convs.agent[conv] >= 0:
            assignee["agentId"] = data.agents[data.convs.agent[conv]].id
        return assignee

    def _emit_conversation(
        self,
        event_type: str,
        conv: int,
        context: dict[str, str],
        initiator: dict[str, str],
        **extra: Any,
    ) -> None:
        """A CONVERSATION event; `context` is the assignee just before the change."""
        data = self.data
        content: dict[str, Any] = {
            "customerId": data.customers[data.convs.cust[conv]].id,
            "conversationId": data.conv_codec.encode(conv),
            **extra,
            "context": {"assignee": context},
        }
        self._emit(event_type, content, initiator)

    def _emit_profile(self, event_type: str, customer_id: str) -> None:
        self._emit(event_type, {"customerId": customer_id})

    # --- reading ---

    def list_events(
        self, start_at: str | None, end_at: str | None, entities: list[str]
    ) -> list[dict[str, Any]]:
        """`GET /events`: validated query → events, ascending by timestamp then id."""
        now = self.clock.now()
        start, end, wanted = parse_events_query(start_at, end_at, entities, now)
        return self.events.window(
            start, end, wanted, now=now, profile_events=self.profile_events_in_stream
        )


def parse_instant(text: str, attr: str) -> datetime:
    """An ISO 8601 time with a UTC offset or `Z`, as aware UTC; 400 `invalid` otherwise."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(
            400,
            "invalid",
            f"{attr} must be an ISO 8601 time such as 2020-05-20T14:00:00Z (got {text!r})",
            attr=attr,
        ) from None
    if parsed.tzinfo is None:
        # ASSUMPTION: a time without an offset is refused rather than read as UTC.
        raise ApiError(
            400, "invalid", f"{attr} must include a UTC offset or Z (got {text!r})", attr=attr
        )
    return parsed.astimezone(UTC)


def parse_events_query(
    start_at: str | None, end_at: str | None, entities: list[str], now: datetime
) -> tuple[datetime, datetime, frozenset[str]]:
    """startAt (last 24 hours), endAt (default now, not before startAt), entities (known)."""
    if start_at is None or not start_at.strip():
        raise ApiError(400, "blank", "startAt must be specified", attr="startAt")
    start = parse_instant(start_at, "startAt")
    if start < now - RETENTION:
        raise ApiError(400, "invalid", "startAt must be from last 24 hours", attr="startAt")
    end = now if end_at is None or not end_at.strip() else parse_instant(end_at, "endAt")
    if end < start:
        raise ApiError(400, "invalid", "endAt must not be before startAt", attr="endAt")
    if not entities or not any(e.strip() for e in entities):
        raise ApiError(
            400,
            "blank",
            f"at least one entity must be specified; valid: {', '.join(ENTITIES)}",
            attr="entities",
        )
    unknown = sorted({e for e in entities if e not in ENTITIES})
    if unknown:
        raise ApiError(
            400,
            "invalid",
            f"unknown entity type(s) {', '.join(unknown)}; valid: {', '.join(ENTITIES)}",
            attr="entities",
        )
    return start, end, frozenset(entities)
