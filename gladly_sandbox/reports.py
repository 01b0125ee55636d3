"""Gladly's Reports API (`POST /reports`): the request's rules and two conversation CSVs."""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gladly_sandbox import tables as t
from gladly_sandbox.errors import ApiError
from gladly_sandbox.tables import render_time, to_micros
from gladly_sandbox.traits import conversation_traits, topic_change_rows, topic_rows

if TYPE_CHECKING:
    from gladly_sandbox.content import Renderer
    from gladly_sandbox.orgdata import OrgData

CSV = "text/csv; charset=utf-8"
_P = TypeVar("_P", bound=tuple[Any, ...])
# The metric sets Gladly's spec lists for `metricSet` (any other value is a 400).
METRIC_SETS: tuple[str, ...] = (
    "AgentAwayTimeReport",
    "AgentDurationsReport",
    "AgentDurationsReportV2",
    "AgentLoginTimeReport",
    "AgentSummary",
    "AgentSummaryV2",
    "AgentSummaryGlanceReport",
    "AgentSummaryGlanceReportV2",
    "AgentTimestampsReport",
    "FirstContactResolutionByAgentV2Report",
    "PaymentsByAgentReport",
    "WorkSessionEventsReportV3",
    "WorkSessionsReport",
    "WorkSessionsReportV3",
    "AnswerUsageReport",
    "AnswerUsageByAgentReport",
    "ChannelMixReportV2",
    "ChannelWaitTimeReport",
    "ChannelWaitTimeReportV2",
    "ContactExportReport",
    "ContactExportReportV2",
    "ContactExportReportV3",
    "ContactSummaryReport",
    "ContactSummaryReportV2",
    "ContactSummaryCountsReport",
    "ContactSummaryDurationsReport",
    "ContactSummaryDurationsReportV2",
    "ContactTimestampsReport",
    "ConversationExportReport",
    "ConversationSummaryReport",
    "ConversationTimestampsReport",
    "AbandonedCallsInIVRReport",
    "AutoThrottleMissedConversationsReport",
    "IVRExecutiveSummaryReportV2",
    "IvrEndStatesReportV2",
    "PaymentsSummaryReport",
    "ProactiveVoiceSummaryReport",
    "TopicHierarchyReport",
    "TaskExportReport",
    "TaskSummaryReport",
    "TaskTimestampsReport",
    "TopicSummaryReport",
    "AutoThrottleChangesReport",
    "ChatDisplayPctChangesReport",
    "HelpCenterAnswerSearchReport",
    "HelpCenterAnswerUsageReport",
    "QuickActionsUsageReport",
    "SelfServiceThreadsReport",
    "SidekickAssistsByClassificationTopicReport",
    "GladAppAnswerSearchReport",
    "GladAppAnswerUsageReport",
    "GladAppContactPointsReport",
)
CONVERSATION_EXPORT = "ConversationExportReport"
CONVERSATION_TIMESTAMPS = "ConversationTimestampsReport"
IMPLEMENTED: tuple[str, ...] = (CONVERSATION_EXPORT, CONVERSATION_TIMESTAMPS)
AGGREGATION_LEVELS = ("halfHourly", "daily", "weekly", "monthly", "quarterly")
FILTERS = ("channel", "inboxes", "teams", "phoneNumber")
# The filters the spec says apply to each implemented metric set.
_APPLICABLE_FILTERS = {
    CONVERSATION_EXPORT: frozenset({"inboxes"}),
    CONVERSATION_TIMESTAMPS: frozenset(),
}
# ASSUMPTION: the organisation's default timezone (used when `timezone` is omitted) is UTC.
DEFAULT_TIMEZONE = "UTC"

# The columns a public Gladly integration parses, in its order; `Topic IDs` is ours (ASSUMPTION).
EXPORT_COLUMNS: tuple[str, ...] = (
    "Created At",
    "Conversation ID",
    "Customer ID",
    "Status",
    "Assigned Agent ID - Current",
    "Inbox ID - Current",
    "Topic IDs",
    "First Closed At",
    "Last Closed At",
)
TIMESTAMPS_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "Event Type",
    "Conversation ID",
    "Customer ID",
    "Inbox ID",
    "Topic ID",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REPORT_DIGITS = 3  # report times: UTC with milliseconds, `2024-03-04T10:00:00.000Z`
_EVENT_KINDS = {
    t.K_STATUS_CLOSED: "CONVERSATION/CLOSED",
    t.K_STATUS_OPEN: "CONVERSATION/REOPENED",
    t.K_TOPIC_CHANGE: "CONVERSATION/TOPIC_ADDED",
    t.K_TOPIC_REMOVED: "CONVERSATION/TOPIC_REMOVED",
}


@dataclass(frozen=True)
class ReportRequest:
    """A validated `POST /reports` body."""

    metric_set: str
    start: date
    end: date
    timezone: str
    start_us: int  # startAt 00:00 in `timezone`, as UTC microseconds
    end_us: int  # the day after endAt, 00:00 in `timezone` (exclusive)
    inboxes: frozenset[int] | None  # the `filters.inboxes` rows, None for all

    @property
    def filename(self) -> str:
        """`<MetricSet>-<YYYYMMDD>-<YYYYMMDD>.csv`, as the Content-Disposition names it."""
        return f"{self.metric_set}-{self.start:%Y%m%d}-{self.end:%Y%m%d}.csv"


def parse_report_request(body: dict[str, Any], inbox_ids: Sequence[str]) -> ReportRequest:
    """Check a report body as Gladly does: 400 for a bad field, 501 for a set we don't make."""
    metric_set = body.get("metricSet")
    if metric_set is None or metric_set == "":
        raise ApiError(400, "blank", "metricSet must be specified", attr="metricSet")
    if not isinstance(metric_set, str) or metric_set not in METRIC_SETS:
        raise ApiError(400, "invalid", f"{metric_set!r} is not a valid metricSet", attr="metricSet")
    start = _parse_date(body, "startAt")
    end = _parse_date(body, "endAt")
    if end < start:
        raise ApiError(400, "invalid", "endAt must not be before startAt", attr="endAt")
    timezone = body.get("timezone")
    if timezone is None:
        timezone = DEFAULT_TIMEZONE
    zone = _zone(timezone)
    level = body.get("aggregationLevel")
    if level is not None and level not in AGGREGATION_LEVELS:
        raise ApiError(
            400,
            "invalid",
            "the specified value is not a valid aggregation level; valid: "
            + ", ".join(AGGREGATION_LEVELS),
            attr="aggregationLevel",
        )
    filters = body.get("filters")
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise ApiError(400, "invalid", "filters must be an object", attr="filters")
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise ApiError(
            400,
            "invalid",
            f"unknown filter {unknown[0]!r}; valid: {', '.join(FILTERS)}",
            attr=f"filters.{unknown[0]}",
        )
    if metric_set not in IMPLEMENTED:
        raise ApiError(
            501,
            "not_implemented",
            f"the sandbox does not make {metric_set} reports; it implements "
            + " and ".join(IMPLEMENTED),
            attr="metricSet",
        )
    for name in sorted(filters):
        if name not in _APPLICABLE_FILTERS[metric_set]:
            raise ApiError(
                400,
                "invalid",
                f"the {name} filter cannot be applied to the {metric_set} metricSet",
                attr=f"filters.{name}",
            )
    inboxes = _inbox_filter(filters.get("inboxes"), inbox_ids)
    try:
        start_us = to_micros(datetime.combine(start, time(0), zone).astimezone(UTC))
        end_us = to_micros(datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(UTC))
    except (OverflowError, ValueError):
        raise ApiError(400, "invalid", "the dates are out of range", attr="endAt") from None
    return ReportRequest(metric_set, start, end, timezone, start_us, end_us, inboxes)


def _parse_date(body: dict[str, Any], attr: str) -> date:
    value = body.get(attr)
    if value is None or value == "":
        raise ApiError(400, "blank", f"{attr} must be specified", attr=attr)
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ApiError(
        400, "invalid", f"{attr} must be a date in the format YYYY-mm-dd (got {value!r})", attr=attr
    )


def _zone(name: Any) -> ZoneInfo:
    if isinstance(name, str) and name.strip():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ApiError(
        400,
        "invalid",
        f"timezone must be an IANA timezone such as America/Denver (got {name!r})",
        attr="timezone",
    )


def _inbox_filter(value: Any, inbox_ids: Sequence[str]) -> frozenset[int] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(
            400, "invalid", "filters.inboxes must be a list of inbox ids", attr="filters.inboxes"
        )
    rows = {inbox_id: row for row, inbox_id in enumerate(inbox_ids)}
    if any(v not in rows for v in value):
        raise ApiError(400, "present", "the requested inbox does not exist", attr="filters.inboxes")
    return frozenset(rows[v] for v in value)


class ReportOperations:
    """Report data of an Organisation (mixed into it; relies on its state below).

    The rows are picked under the lock (a pass over column arrays); ids and CSV text are made
    after it is released, so a large report does not hold up other requests for long.
    """

    data: OrgData
    render: Renderer
    lock: threading.RLock

    def report_csv(
        self, request: ReportRequest, row_cap: int | None, *, empty_body: bool = True
    ) -> bytes:
        """The report's CSV: header and at most `row_cap` rows (the rest silently dropped).

        Without rows the body is empty when `empty_body`, else the header line alone.
        """
        if request.metric_set == CONVERSATION_EXPORT:
            columns, rows = EXPORT_COLUMNS, self._conversation_export(request, row_cap)
        else:
            columns, rows = TIMESTAMPS_COLUMNS, self._conversation_timestamps(request, row_cap)
        if not rows and empty_body:
            return b""
        out = io.StringIO()
        writer = csv.writer(out)  # standard quoting, CRLF line ends
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")

    # --- ConversationExportReport ---

    def _conversation_export(self, request: ReportRequest, cap: int | None) -> list[list[str]]:
        """One row per live conversation created in the window, by Created At then id."""
        picked: list[tuple[int, int, int, int, int, int, int, int]] = []
        with self.lock:
            convs = self.data.convs
            for conv in self._created_in(request.start_us, request.end_us):
                inbox = convs.inbox[conv]
                if request.inboxes is not None and inbox not in request.inboxes:
                    continue
                first_closed, last_closed = self._closed_times(conv)
                picked.append(
                    (
                        convs.created[conv],
                        conv,
                        convs.cust[conv],
                        convs.status[conv],
                        convs.agent[conv],
                        inbox,
                        first_closed,
                        last_closed,
                    )
                )
        data = self.data
        encode = data.conv_codec.encode  # each conversation once: no use caching
        keyed = sorted(
            ((p[0], encode(p[1]), p) for p in _before_cap(picked, cap)), key=lambda k: k[:2]
        )
        customers, agents, inboxes, topics = data.customers, data.agents, data.inboxes, data.topics
        rows: list[list[str]] = []
        for created, conversation_id, p in keyed[:cap]:
            _, conv, cust, status, agent, inbox, first_closed, last_closed = p
            traits = conversation_traits(data, conv)
            first_text = _time(first_closed) if first_closed else ""
            rows.append(
                [
                    _time(created),
                    conversation_id,
                    customers[cust].id,
                    t.STATUS_NAME[status],
                    agents[agent].id if agent >= 0 else "",
                    inboxes[inbox].id,
                    ",".join(topics[topic].id for topic in topic_rows(data, conv, traits)),
                    first_text,
                    first_text if last_closed == first_closed else _time(last_closed),
                ]
            )
        return rows

    # --- ConversationTimestampsReport ---

    def _conversation_timestamps(self, request: ReportRequest, cap: int | None) -> list[list[str]]:
        """One row per conversation event in the window: created, closed, reopened, topics.

        Ordered by Timestamp, then Conversation ID, then the order the events happened in.
        """
        start_us, end_us = request.start_us, request.end_us
        # (timestamp, order, event type, conversation now, conversation written in)
        picked: list[tuple[int, int, str, int, int]] = []
        with self.lock:
            data = self.data
            convs, items, customers = data.convs, data.items, data.customers
            for conv in self._created_in(start_us, end_us):
                picked.append((convs.created[conv], -1, "CONVERSATION/CREATED", conv, conv))
            kinds, ts, flags = items.kind, items.ts, items.flags
            for kind, event_type in _EVENT_KINDS.items():
                needle = bytes([kind])
                row = kinds.find(needle)
                while row >= 0:
                    when = ts[row]
                    if (
                        start_us <= when < end_us
                        and not flags[row] & t.F_DELETED
                        and not customers[items.cust[row]].deleted
                    ):
                        written_in = items.conv[row]
                        holder = convs.holder(written_in)
                        picked.append((when, row, event_type, holder, written_in))
                    row = kinds.find(needle, row + 1)
            # Each conversation's current owner and inbox, read while the lock is held.
            owners = {p[3]: (convs.cust[p[3]], convs.inbox[p[3]]) for p in picked}
        ids = {conv: data.conv_codec.encode(conv) for conv in owners}
        # A topic change adds one row per topic, so rows ≥ events: cut the events first.
        keyed = sorted(
            ((p[0], ids[p[3]], p[1], p) for p in _before_cap(picked, cap)), key=lambda k: k[:3]
        )
        rows: list[list[str]] = []
        for when, conversation_id, _, p in keyed:
            if cap is not None and len(rows) >= cap:
                break
            event_type, conv, written_in = p[2], p[3], p[4]
            cust, inbox = owners[conv]
            head = [_time(when), event_type, conversation_id, data.customers[cust].id]
            inbox_id = data.inboxes[inbox].id
            changed = self._event_topics(event_type, written_in, p[1])
            if changed is None:
                rows.append([*head, inbox_id, ""])
            else:
                rows.extend([*head, inbox_id, data.topics[topic].id] for topic in changed)
        return rows[:cap]

    def _event_topics(self, event_type: str, conv: int, row: int) -> list[int] | None:
        """The topics TOPIC_CHANGE item `row` added or removed (as its content shows), else None."""
        if event_type == "CONVERSATION/TOPIC_ADDED":
            return list(topic_change_rows(self.data, row, conversation_traits(self.data, conv)))
        if event_type == "CONVERSATION/TOPIC_REMOVED":
            removed = conversation_traits(self.data, conv).removed_topic
            return [] if removed is None else [removed]
        return None

    # --- shared, under the lock ---

    def _created_in(self, start_us: int, end_us: int) -> list[int]:
        """Live conversations (customer not deleted, not merged away) created in the window."""
        convs, customers = self.data.convs, self.data.customers
        absorbed = convs.absorbed_into
        created, cust = convs.created, convs.cust
        return [
            conv
            for conv in range(len(convs))
            if start_us <= created[conv] < end_us
            and not customers[cust[conv]].deleted
            and conv not in absorbed
        ]

    def _closed_times(self, conv: int) -> tuple[int, int]:
        """(first, last) time the conversation was closed; 0 when it never was."""
        convs, items = self.data.convs, self.data.items
        merged = convs.merged_rows.get(conv)
        if merged is not None:
            rows: list[int] = list(merged)
        else:
            # Generation closes a conversation with the last item of its block, if at all.
            count = convs.item_count[conv]
            rows = [convs.first_item[conv] + count - 1] if count else []
        rows.extend(convs.extra_items.get(conv, ()))
        kinds, ts = items.kind, items.ts
        closes = [ts[r] for r in rows if kinds[r] == t.K_STATUS_CLOSED]
        if not closes:
            return 0, 0
        return min(closes), max(closes)


def _before_cap(picked: list[_P], cap: int | None) -> list[_P]:
    """The rows up to the cap by time (plus any tied with the last), so only those get ids."""
    if cap is None or len(picked) <= cap:
        return picked
    picked.sort(key=lambda p: p[0])
    if cap == 0:
        return []
    keep = cap
    boundary = picked[cap - 1][0]
    while keep < len(picked) and picked[keep][0] == boundary:
        keep += 1
    return picked[:keep]


def _time(micros: int) -> str:
    return render_time(micros, _REPORT_DIGITS)
