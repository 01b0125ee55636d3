"""Conversation facts in bulk: Gladly's reports for whole windows, its events for what changed.

Export files carry no inbox, status or topics. Reading them with one GET per conversation costs
a day and a half of the organisation's whole budget at a million conversations, so:

- a **report pass** asks for the `ConversationExportReport` of each window of creation days
  (one POST per window, under the Reports API's own 10-a-minute budget), windows sized from
  the archive's own counts so each stays well under Gladly's row cap;
- a daily **events pass** (when the last pass is less than 24 hours old) reads what changed
  since (`GET /events`, one call) and refreshes only that: a window's report where many of
  its conversations changed, else one GET per changed conversation; it records profile
  changes, deletions and merges as marker rows of `customer_profiles` (attributes unknown
  from then on, so a policy that needs them fetches them again).

Only conversations the archive knows (or of customers it knows) are kept: the report lists
the whole organisation's. Rows that say what the archive already says are not written again.
"""

# SQL here is built only from the schema's own column names; no value is ever inlined.
# ruff: noqa: S608

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive import Archive
from gladly_archive.enrichment import (
    EnrichmentState,
    append_snapshot,
    read_enrichment_state,
    write_enrichment_state,
)
from gladly_archive.name_refresh import refresh_conversation_names
from gladly_archive.schemas import CONVERSATIONS, CUSTOMER_PROFILES
from gladly_client import BadRequestError, CustomerMovedError, GladlyClient, NotFoundError
from gladly_client.models import Conversation, Event, Report

__all__ = [
    "CONVERSATION_REPORT",
    "REPORT_ROW_CAP",
    "ConversationFacts",
    "FactsPlan",
    "ReportColumnError",
    "ReportColumns",
    "Window",
    "plan_conversation_facts",
    "plan_windows",
    "refresh_conversation_facts",
]

CONVERSATION_REPORT = "ConversationExportReport"
# ASSUMPTION (one public integration's experience, not Gladly's documentation): a report is cut
# at 100,000 rows without a word. A window whose report reaches the cap is split and asked again.
REPORT_ROW_CAP = 100_000
# Windows are packed from the archive's conversations per creation day up to this many (the
# report also lists conversations the archive has not seen yet: room is left for them).
ROWS_PER_WINDOW = 50_000
MAX_WINDOW_DAYS = 366
# Gladly serves events of the last 24 hours only; an events pass starts this long before its
# watermark (events trail real time by up to 15 s) and is chosen only while the watermark is
# this much younger than 24 hours.
EVENTS_HORIZON = timedelta(hours=24)
EVENTS_MARGIN = timedelta(minutes=15)
EVENTS_LAG = timedelta(minutes=1)
# In an events pass a window is re-read with one report when at least this many of its
# conversations changed; fewer are read one GET each (a report costs a sixth of the Reports
# API's minute; a GET a tenth of a second of the GET budget).
REPORT_WORTH = 25
EVENT_ENTITIES = ("CONVERSATION", "CUSTOMER")
_PROFILE_EVENTS = ("CUSTOMER_PROFILE/UPDATED", "CUSTOMER_PROFILE/DELETED")
_MERGED = "CUSTOMER/MERGED"

Progress = Callable[[str, int, int], None]


class ReportColumnError(ValueError):
    """A report lacks a column the facts are read from: nothing of it is used."""


@dataclass(frozen=True)
class ReportColumns:
    """Which CSV column of the `ConversationExportReport` holds each fact.

    Gladly does not document the report's columns. The defaults are the headers a public
    integration reads (`Topic IDs`, a comma- or semicolon-separated list, is ours to confirm);
    a different header is set in a TOML or JSON file of `fact = "Header"` lines
    (`gladly-pipeline enrich --report-columns FILE`). A report without one of them stops
    enrichment with a message naming it.
    """

    conversation_id: str = "Conversation ID"
    customer_id: str = "Customer ID"
    created_at: str = "Created At"
    status: str = "Status"
    inbox_id: str = "Inbox ID - Current"
    agent_id: str = "Assigned Agent ID - Current"
    topic_ids: str = "Topic IDs"
    closed_at: str = "Last Closed At"

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, object], *, where: str = "report columns"
    ) -> ReportColumns:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"{where}: unknown fact(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        for name, value in data.items():
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: {name} must be a non-empty column header")
        return cls(**{k: str(v).strip() for k, v in data.items()})

    @classmethod
    def load(cls, path: str | Path) -> ReportColumns:
        """Read a TOML (`.toml`) or JSON file of `fact = "Header"`; unknown facts are refused."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
            data = tomllib.loads(text) if source.suffix != ".json" else json.loads(text)
        except OSError as exc:
            raise ValueError(f"{source}: cannot read report columns ({exc.strerror})") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{source}: not valid TOML/JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f'{source}: expected a table of fact = "Header"')
        return cls.from_mapping(data, where=str(source))

    def positions(self, report: Report) -> dict[str, int]:
        """Each fact's column in `report`; raises ReportColumnError naming every missing one."""
        found = {f.name: report.index(getattr(self, f.name)) for f in fields(self)}
        missing = [name for name, at in found.items() if at is None]
        if missing:
            named = ", ".join(f"{getattr(self, m)!r} ({m})" for m in missing)
            present = ", ".join(repr(h) for h in report.header) or "none"
            raise ReportColumnError(
                f"the {report.metric_set} report for {report.start}..{report.end} has no column "
                f"{named}; its columns: {present}. Map each fact to the header Gladly sends in a "
                'TOML file (e.g. topic_ids = "Topics") and pass it with --report-columns; '
                "nothing of this report was used"
            )
        return {name: int(at) for name, at in found.items() if at is not None}


@dataclass(frozen=True)
class Window:
    """Days `start`..`end` (both included) of conversation creation, read with one report."""

    start: date
    end: date
    expected: int = 0  # conversations the archive holds created in it

    def halves(self) -> tuple[Window, Window]:
        middle = self.start + timedelta(days=(self.end - self.start).days // 2)
        return Window(self.start, middle), Window(middle + timedelta(days=1), self.end)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def plan_windows(
    counts: Mapping[date, int],
    first: date,
    last: date,
    *,
    rows_per_window: int = ROWS_PER_WINDOW,
    max_days: int = MAX_WINDOW_DAYS,
) -> list[Window]:
    """Consecutive windows covering `first`..`last`, each holding at most `rows_per_window` of
    the counted conversations (a day over it gets a window of its own) and `max_days` days."""
    if last < first:
        return []
    windows: list[Window] = []
    start, total, day = first, 0, first
    while day <= last:
        n = counts.get(day, 0)
        span = (day - start).days
        if day > start and (total + n > rows_per_window or span >= max_days):
            windows.append(Window(start, day - timedelta(days=1), total))
            start, total = day, 0
        total += n
        day += timedelta(days=1)
    windows.append(Window(start, last, total))
    return windows


@dataclass(frozen=True)
class FactsPlan:
    """What a conversation-facts pass will do, known before any call (for the estimate)."""

    mode: Literal["reports", "events"]
    windows: list[Window]  # a report pass reads all; an events pass reads among these
    since: datetime | None  # events pass: events from here on
    covered_from: date
    reason: str
    # What the archive held when planned, so the pass that follows does not read it again.
    known: _Known | None = field(default=None, repr=False, compare=False)

    @property
    def report_calls(self) -> int:
        """Reports a report pass needs (more if a window reaches the row cap)."""
        return len(self.windows) if self.mode == "reports" else 0


@dataclass
class ConversationFacts:
    """What one conversation-facts pass did."""

    mode: str
    report_calls: int = 0
    event_calls: int = 0
    get_calls: int = 0
    events: int = 0
    changed_conversations: int = 0
    rows_written: int = 0
    gone: int = 0  # changed conversations Gladly no longer has (their customer was deleted)
    profile_markers: int = 0  # profile changes, deletions, merges recorded
    merges: int = 0
    windows_split: int = 0
    not_in_reports: int = 0  # archived conversations no report listed (deleted in Gladly)
    incomplete: bool = False  # the budget ran out: the watermark was not moved
    # Archived rows given their conversation's new inbox and topic names, per dataset.
    names_refreshed: dict[str, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return self.report_calls + self.event_calls + self.get_calls


@dataclass
class _Known:
    """What the archive knows: its conversations, customers and their creation days."""

    conversations: set[str]
    customers: set[str]
    created: dict[str, date] = field(default_factory=dict)
    by_customer: dict[str, set[str]] = field(default_factory=dict)
    counts: dict[date, int] = field(default_factory=dict)
    first_day: date | None = None


def _known(archive: Archive) -> _Known:
    items = archive.dataset("items").to_table(
        columns=["conversation_id", "customer_id", "timestamp"],
        filter=pc.field("conversation_id").is_valid(),
    )
    customers = set(
        archive.dataset("customers").to_table(columns=["customer_id"]).column(0).to_pylist()
    )
    per = items.group_by(["conversation_id", "customer_id"]).aggregate([("timestamp", "min")])
    conv_ids = per.column("conversation_id").to_pylist()
    cust_ids = per.column("customer_id").to_pylist()
    firsts = per.column("timestamp_min").to_pylist()
    known = _Known(set(conv_ids), customers | set(cust_ids))
    for conversation, customer, first in zip(conv_ids, cust_ids, firsts, strict=True):
        known.by_customer.setdefault(customer, set()).add(conversation)
        if first is None:
            continue
        day = first.astimezone(UTC).date()
        if conversation not in known.created or day < known.created[conversation]:
            known.created[conversation] = day
    stored = archive.dataset("conversations").to_table(columns=["conversation_id", "created_at"])
    for conversation, created in zip(
        stored.column(0).to_pylist(), stored.column(1).to_pylist(), strict=True
    ):
        if created is not None:
            known.created[conversation] = created.astimezone(UTC).date()
    for day in known.created.values():
        known.counts[day] = known.counts.get(day, 0) + 1
    known.first_day = min(known.counts) if known.counts else None
    return known


def plan_conversation_facts(archive: Archive, now: datetime) -> FactsPlan:
    """Choose the pass: events when the last pass is recent enough and covers the archive's
    oldest conversation, else reports over every creation day from that one to today."""
    known = _known(archive)
    return replace(_plan(archive, known, now), known=known)


def _plan(archive: Archive, known: _Known, now: datetime) -> FactsPlan:
    today = now.astimezone(UTC).date()
    # A day before the oldest item: a conversation is created just before its first item.
    first = (known.first_day or today) - timedelta(days=1)
    windows = plan_windows(known.counts, first, today)
    state = read_enrichment_state(archive)
    if state is None:
        return FactsPlan("reports", windows, None, first, "no earlier pass recorded")
    age = now - state.as_of
    if state.as_of > now:
        return FactsPlan("reports", windows, None, first, "the recorded pass lies in the future")
    if age > EVENTS_HORIZON - EVENTS_MARGIN:
        return FactsPlan(
            "reports",
            windows,
            None,
            first,
            f"the last pass is {_hours(age)} old; Gladly keeps events for 24 h",
        )
    if state.covered_from > first:
        return FactsPlan(
            "reports",
            windows,
            None,
            first,
            f"the archive now holds conversations from {first + timedelta(days=1)}, before the "
            f"last pass's first day {state.covered_from}",
        )
    return FactsPlan(
        "events",
        windows,
        state.as_of - EVENTS_LAG,
        state.covered_from,
        f"the last pass is {_hours(age)} old: reading what changed since",
    )


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def refresh_conversation_facts(
    client: GladlyClient,
    archive: Archive,
    *,
    now: datetime,
    run_id: str,
    columns: ReportColumns | None = None,
    row_cap: int = REPORT_ROW_CAP,
    progress: Progress | None = None,
    plan: FactsPlan | None = None,
    max_calls: int | None = None,
) -> ConversationFacts:
    """Run the pass `plan` (default: `plan_conversation_facts`) and record how far it reached.

    Each window's rows are written as soon as they are read, so a crash costs the calls of the
    window in flight; the state (the watermark) is written last, so a crashed pass is run again
    whole. A report lacking a column raises ReportColumnError before anything of it is written.
    An events pass that cannot read every change within `max_calls` reads what fits and leaves
    the watermark where it was (`incomplete`).
    """
    columns = columns or ReportColumns()
    known = plan.known if plan is not None and plan.known is not None else _known(archive)
    plan = plan or _plan(archive, known, now)
    writer = _Writer(archive, run_id, now)
    events: list[Event] | None = None
    if plan.mode == "events":
        assert plan.since is not None
        try:
            events = client.events.fetch(plan.since, None, EVENT_ENTITIES)
        except BadRequestError:
            # Gladly refused the window (its clock and ours disagree about the last 24 hours):
            # a report pass is always correct, only dearer.
            plan = replace(
                plan,
                mode="reports",
                since=None,
                covered_from=plan.windows[0].start if plan.windows else plan.covered_from,
                reason="Gladly refused the events window (400): reading the reports instead",
            )
    done = ConversationFacts(plan.mode)
    if events is not None:
        done.event_calls += 1
    if plan.mode == "reports":
        seen: set[str] = set()
        windows = list(plan.windows)
        total = len(windows)
        while windows:
            window = windows.pop(0)
            report = client.reports.generate(CONVERSATION_REPORT, window.start, window.end)
            done.report_calls += 1
            if len(report.rows) >= row_cap and window.start < window.end:
                # Gladly may have cut it short: ask for each half instead.
                windows[:0] = window.halves()
                total += 1
                done.windows_split += 1
                continue
            if len(report.rows) >= row_cap:
                raise ReportColumnError(
                    f"the {CONVERSATION_REPORT} for the single day {window.start} holds "
                    f"{len(report.rows)} rows, Gladly's row cap: it may be cut short and cannot "
                    "be split further; nothing of it was used"
                )
            rows = _report_rows(report, columns, now)
            seen.update(str(r["conversation_id"]) for r in rows)
            done.rows_written += writer.conversations(_relevant(rows, known))
            if progress is not None:
                progress("conversation reports", done.report_calls, total)
        covered = {c for c, day in known.created.items() if day >= plan.covered_from}
        done.not_in_reports = len(covered - seen)
        started = now
    else:
        budget = max_calls if max_calls is not None else 1 << 62
        assert events is not None
        _events_pass(
            client, plan, events, known, columns, writer, done, now, row_cap, progress, budget
        )
        started = now - EVENTS_LAG
    # Before the watermark moves: a crash here repeats the pass, and the names with it.
    done.names_refreshed = refresh_conversation_names(archive, writer.seen).rows_changed
    if done.incomplete:
        return done
    write_enrichment_state(archive, EnrichmentState(started, plan.covered_from))
    return done


def _events_pass(
    client: GladlyClient,
    plan: FactsPlan,
    events: list[Event],
    known: _Known,
    columns: ReportColumns,
    writer: _Writer,
    done: ConversationFacts,
    now: datetime,
    row_cap: int,
    progress: Progress | None,
    budget: int,
) -> None:
    done.events = len(events)
    changed: set[str] = set()
    markers: list[dict[str, object]] = []
    for event in events:
        content = event.content
        if event.type.startswith(("CONVERSATION/", "CONVERSATION_")):
            conversation = _text(content.get("conversationId"))
            customer = _text(content.get("customerId"))
            if conversation and (
                conversation in known.conversations or customer in known.customers
            ):
                changed.add(conversation)
        elif event.type in _PROFILE_EVENTS:
            customer = _text(content.get("customerId"))
            if customer in known.customers:
                markers.append(_marker(customer, event, None))
        elif event.type == _MERGED:
            source = _text(content.get("sourceCustomerId"))
            into = _text(content.get("destinationCustomerId"))
            if source in known.customers or into in known.customers:
                done.merges += 1
                if source:
                    markers.append(_marker(source, event, into))
                    changed.update(known.by_customer.get(source, ()))
                if into:
                    markers.append(_marker(into, event, None))
    done.profile_markers = writer.markers(markers)
    done.changed_conversations = len(changed)
    today = now.astimezone(UTC).date()
    by_window: dict[int, list[str]] = {}
    for conversation in sorted(changed):
        day = known.created.get(conversation, today)
        at = next((i for i, w in enumerate(plan.windows) if day in w), len(plan.windows) - 1)
        by_window.setdefault(at, []).append(conversation)
    total = len(by_window)
    worth = REPORT_WORTH
    gets = sum(len(m) for m in by_window.values() if len(m) < worth)
    if done.calls + gets + sum(1 for m in by_window.values() if len(m) >= worth) > budget:
        worth = 1  # one report per window where GETs would not fit the budget
    for step, (at, members) in enumerate(sorted(by_window.items()), start=1):
        window = plan.windows[at]
        if done.calls + (1 if len(members) >= worth else len(members)) > budget:
            done.incomplete = True
            return
        if len(members) >= worth:
            rows = _window_rows(client, window, columns, now, row_cap, done)
            wanted = set(members)
            done.rows_written += writer.conversations(
                [r for r in rows if r["conversation_id"] in wanted]
                + _relevant([r for r in rows if r["conversation_id"] not in wanted], known)
            )
        else:
            rows = []
            for conversation in members:
                done.get_calls += 1
                try:
                    rows.append(conversation_row(client.conversations.get(conversation), now))
                except (NotFoundError, CustomerMovedError):
                    done.gone += 1
            done.rows_written += writer.conversations(rows)
        if progress is not None:
            progress("changed conversations", step, total)


def _window_rows(
    client: GladlyClient,
    window: Window,
    columns: ReportColumns,
    now: datetime,
    row_cap: int,
    done: ConversationFacts,
) -> list[dict[str, object]]:
    report = client.reports.generate(CONVERSATION_REPORT, window.start, window.end)
    done.report_calls += 1
    if len(report.rows) < row_cap or window.start == window.end:
        if len(report.rows) >= row_cap:
            raise ReportColumnError(
                f"the {CONVERSATION_REPORT} for the single day {window.start} reaches Gladly's "
                "row cap: it may be cut short; nothing of it was used"
            )
        return _report_rows(report, columns, now)
    done.windows_split += 1
    first, second = window.halves()
    return _window_rows(client, first, columns, now, row_cap, done) + _window_rows(
        client, second, columns, now, row_cap, done
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _marker(customer: str, event: Event, merged_into: str | None) -> dict[str, object]:
    return {
        "customer_id": customer,
        "custom_attributes_json": None,
        "updated_at": event.timestamp,
        "fetched_at": event.timestamp,
        "event": event.type,
        "merged_into": merged_into,
    }


def _relevant(rows: list[dict[str, object]], known: _Known) -> list[dict[str, object]]:
    return [
        r
        for r in rows
        if r["conversation_id"] in known.conversations or r["customer_id"] in known.customers
    ]


def _report_rows(report: Report, columns: ReportColumns, now: datetime) -> list[dict[str, object]]:
    if not report.header and not report.rows:
        return []  # Gladly answers a window without conversations with an empty body
    at = columns.positions(report)
    width = len(report.header)
    out: list[dict[str, object]] = []
    for line, row in enumerate(report.rows, start=2):
        if len(row) != width:
            raise ReportColumnError(
                f"the {report.metric_set} report for {report.start}..{report.end}: line {line} "
                f"has {len(row)} cells, its header {width}; nothing of this report was used"
            )

        def cell(name: str, row: list[str] = row) -> str | None:
            value = row[at[name]].strip()
            return value or None

        conversation, customer = cell("conversation_id"), cell("customer_id")
        if conversation is None or customer is None:
            raise ReportColumnError(
                f"the {report.metric_set} report for {report.start}..{report.end}: line {line} "
                "has no conversation or customer id; nothing of this report was used"
            )
        topics = cell("topic_ids")
        out.append(
            {
                "conversation_id": conversation,
                "customer_id": customer,
                "inbox_id": cell("inbox_id"),
                "status": (cell("status") or "").upper() or None,
                "created_at": _timestamp(cell("created_at"), report, line),
                "closed_at": _timestamp(cell("closed_at"), report, line),
                "topic_ids": sorted(
                    {t.strip() for t in topics.replace(";", ",").split(",") if t.strip()}
                )
                if topics
                else [],
                "agent_id": cell("agent_id"),
                "fetched_at": now,
            }
        )
    return out


def _timestamp(value: str | None, report: Report, line: int) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportColumnError(
            f"the {report.metric_set} report for {report.start}..{report.end}: line {line} has "
            "a time that is not ISO 8601; nothing of this report was used"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def conversation_row(conversation: Conversation, now: datetime) -> dict[str, object]:
    """A `conversations` row from GET /conversations/{id}."""
    return {
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
        "inbox_id": conversation.inbox_id,
        "status": conversation.status,
        "created_at": conversation.created_at,
        "closed_at": conversation.closed_at,
        "topic_ids": sorted(conversation.topic_ids),
        "agent_id": conversation.agent_id,
        "fetched_at": now,
    }


_FACT_COLUMNS = [name for name in CONVERSATIONS.names if name != "fetched_at"]
# What `_unseen` compares: the facts without their fetch time, every column nullable.
_FACT_SCHEMA = pa.schema([pa.field(n, CONVERSATIONS.field(n).type) for n in _FACT_COLUMNS])


class _Writer:
    """Appends rows of one pass, each batch its own run partition, skipping what is stored."""

    def __init__(self, archive: Archive, run_id: str, now: datetime) -> None:
        self.archive = archive
        self.run_id = run_id
        self.batches = 0
        self._stored = _newest_facts(archive)
        # Conversations this pass read facts of (id -> customer): once the pass is done, their
        # archived rows get the inbox and topic names the facts give. All of them, not only
        # those whose facts changed: after a crash between the facts and the names, the rerun
        # finds the facts stored already, and the rows would keep their old names.
        self.seen: dict[str, str] = {}

    def _next_run(self) -> str:
        self.batches += 1
        return f"{self.run_id}-{self.batches:04d}"

    def conversations(self, rows: Iterable[dict[str, object]]) -> int:
        table = pa.Table.from_pylist(list(rows), schema=CONVERSATIONS)
        if table.num_rows == 0:
            return 0
        self.seen.update(
            zip(
                table.column("conversation_id").to_pylist(),
                table.column("customer_id").to_pylist(),
                strict=True,
            )
        )
        table = _unseen(table, self._stored)
        if table.num_rows == 0:
            return 0
        written = append_snapshot(self.archive, "conversations", table, run_id=self._next_run())
        # The rows just written are now the newest word on their conversations.
        replaced = pc.is_in(self._stored.column("conversation_id"), value_set=table.column(0))
        self._stored = pa.concat_tables(
            [
                self._stored.filter(pc.invert(replaced)),
                table.select(_FACT_COLUMNS).cast(_FACT_SCHEMA),
            ]
        )
        return written

    def markers(self, rows: list[dict[str, object]]) -> int:
        if not rows:
            return 0
        table = pa.Table.from_pylist(rows, schema=CUSTOMER_PROFILES)
        return append_snapshot(self.archive, "customer_profiles", table, run_id=self._next_run())


def _newest_facts(archive: Archive) -> pa.Table:
    stored = archive.dataset("conversations").to_table(columns=[*_FACT_COLUMNS, "fetched_at"])
    if stored.num_rows == 0:
        return stored.select(_FACT_COLUMNS).cast(_FACT_SCHEMA)
    con = duckdb.connect()
    try:
        con.register("stored", stored)
        cols = ", ".join(f'"{c}"' for c in _FACT_COLUMNS)
        return (
            con.sql(
                f"SELECT {cols} FROM stored QUALIFY row_number() OVER "
                "(PARTITION BY conversation_id ORDER BY fetched_at DESC) = 1"
            )
            .to_arrow_table()
            .cast(_FACT_SCHEMA)
        )
    finally:
        con.close()


def _unseen(table: pa.Table, stored: pa.Table) -> pa.Table:
    """Rows of `table` whose facts differ from the newest stored row of their conversation."""
    if stored.num_rows == 0:
        return table
    con = duckdb.connect()
    try:
        con.register("fresh", table)
        con.register("stored", stored)
        cols = ", ".join(f'"{c}"' for c in _FACT_COLUMNS)
        keep = con.sql(
            f"SELECT conversation_id FROM (SELECT {cols} FROM fresh EXCEPT SELECT {cols} FROM "
            "stored)"
        ).to_arrow_table()
    finally:
        con.close()
    mask = pc.is_in(table.column("conversation_id"), value_set=keep.column(0))
    return table.filter(mask)
