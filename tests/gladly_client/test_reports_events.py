"""The Reports API (CSV, its own 10-a-minute gate) and the Events API (JSONL); no real sleeps."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import responses
from responses import matchers

from gladly_client import (
    GladlyClient,
    MalformedResponseError,
    RateLimitError,
    ResponseValidationError,
)
from gladly_client.throttle import ReportGate
from tests._virtual_time import VirtualTime

BASE = "https://acme.gladly.com"
API = f"{BASE}/api/v1"


@pytest.fixture
def time_() -> VirtualTime:
    return VirtualTime(now=0.0)


@pytest.fixture
def client(time_: VirtualTime) -> GladlyClient:
    return GladlyClient(
        BASE,
        "api-user@acme.example.com",
        "tok-SECRET-123",
        requests_per_second=1000.0,
        max_attempts=3,
        sleep=time_.sleep,
        clock=time_.clock,
    )


CSV = (
    "\r\nCreated At,Conversation ID,Customer ID,Status,Topic IDs\r\n"
    '2024-03-04T10:00:00.000Z,conv-1,cust-1,CLOSED,"t1,t2"\r\n'
    "2024-03-05T10:00:00.000Z,conv-2,cust-2,OPEN,\r\n"
)


@responses.activate
def test_a_report_is_posted_with_its_window_and_read_as_header_and_rows(
    client: GladlyClient,
) -> None:
    responses.post(
        f"{API}/reports",
        body=CSV,
        content_type="text/csv",
        match=[
            matchers.json_params_matcher(
                {
                    "metricSet": "ConversationExportReport",
                    "startAt": "2024-03-01",
                    "endAt": "2024-03-07",
                    "timezone": "UTC",
                }
            )
        ],
    )
    report = client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 7))
    assert report.header == ("Created At", "Conversation ID", "Customer ID", "Status", "Topic IDs")
    assert report.rows == [
        ["2024-03-04T10:00:00.000Z", "conv-1", "cust-1", "CLOSED", "t1,t2"],
        ["2024-03-05T10:00:00.000Z", "conv-2", "cust-2", "OPEN", ""],
    ]
    assert report.index(" Status ") == 3
    assert report.index("Inbox ID - Current") is None


@responses.activate
def test_an_empty_report_has_no_header_and_no_rows(client: GladlyClient) -> None:
    responses.post(f"{API}/reports", body="\r\n", content_type="text/csv")
    report = client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert (report.header, report.rows) == ((), [])


def test_a_window_that_ends_before_it_starts_is_refused_before_any_call(
    client: GladlyClient,
) -> None:
    with pytest.raises(ValueError, match="ends"):
        client.reports.generate("ConversationExportReport", date(2024, 3, 2), date(2024, 3, 1))


@responses.activate
def test_the_eleventh_report_in_a_minute_waits_for_the_first_to_leave_the_window(
    client: GladlyClient, time_: VirtualTime
) -> None:
    responses.post(f"{API}/reports", body=CSV, content_type="text/csv")
    for _ in range(10):
        client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert time_.now < 1.0  # ten at once (the POST throttle's spacing only): a burst
    client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert 60.0 <= time_.now < 61.0


@responses.activate
def test_a_429_on_a_report_spends_the_minute_then_the_retry_passes(
    client: GladlyClient, time_: VirtualTime
) -> None:
    responses.post(f"{API}/reports", status=429, json={"errors": [{"code": "rate_limited"}]})
    responses.post(f"{API}/reports", body=CSV, content_type="text/csv")
    report = client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert len(report.rows) == 2
    assert time_.now >= 60.0  # nothing was sent again inside the minute the 429 spoke for
    assert len(responses.calls) == 2


@responses.activate
def test_reports_that_keep_answering_429_raise_rate_limit_error(client: GladlyClient) -> None:
    responses.post(f"{API}/reports", status=429, json={"errors": [{"code": "rate_limited"}]})
    with pytest.raises(RateLimitError):
        client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert len(responses.calls) == 3


def test_the_gate_never_lets_more_than_its_limit_start_in_any_minute() -> None:
    t = VirtualTime(now=0.0)
    gate = ReportGate(10, 2, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(35):
        with gate.slot():
            starts.append(t.now)
        t.now += 1.5  # each report takes a while
    for i, start in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < start + 60.0) <= 10
    assert gate.seconds_for(10) == 0.0
    assert gate.seconds_for(11) == 60.0
    assert gate.seconds_for(35) == 180.0


def test_the_gate_holds_at_most_its_concurrency() -> None:
    t = VirtualTime(now=0.0)
    gate = ReportGate(10, 2, clock=t.clock, sleep=t.sleep)
    with gate.slot(), gate.slot():
        # A third slot would block: the semaphore has none left.
        assert not gate._in_flight.acquire(blocking=False)


def test_the_gate_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        ReportGate(0, 2)


def _event(**over: object) -> dict[str, object]:
    event: dict[str, object] = {
        "id": "ev-1",
        "type": "CONVERSATION/CLOSED",
        "timestamp": "2026-05-20T08:00:00.07Z",
        "content": {"customerId": "cust-1", "conversationId": "conv-1"},
    }
    event.update(over)
    return event


@responses.activate
def test_events_are_asked_for_a_window_and_entities_and_read_line_by_line(
    client: GladlyClient,
) -> None:
    body = "\n".join(
        json.dumps(e)
        for e in (
            _event(),
            _event(
                id="ev-2",
                type="CUSTOMER/MERGED",
                content={"sourceCustomerId": "a", "destinationCustomerId": "b"},
            ),
        )
    )
    responses.get(
        f"{API}/events",
        body=body + "\n",
        content_type="application/x-jsonlines",
        match=[
            matchers.query_string_matcher(
                "startAt=2026-05-19T09%3A00%3A00.000000Z&entities=CONVERSATION&entities=CUSTOMER"
            )
        ],
    )
    events = client.events.fetch(
        datetime(2026, 5, 19, 9, tzinfo=UTC), None, ["CONVERSATION", "CUSTOMER"]
    )
    assert [e.type for e in events] == ["CONVERSATION/CLOSED", "CUSTOMER/MERGED"]
    assert events[0].timestamp == datetime(2026, 5, 20, 8, 0, 0, 70000, tzinfo=UTC)
    assert events[1].content["destinationCustomerId"] == "b"


@responses.activate
def test_an_event_without_its_type_is_a_changed_api_not_a_guess(client: GladlyClient) -> None:
    responses.get(
        f"{API}/events",
        body=json.dumps({"id": "x", "timestamp": "2026-05-20T08:00:00Z"}) + "\n",
        content_type="application/x-jsonlines",
    )
    with pytest.raises(ResponseValidationError):
        client.events.fetch(datetime(2026, 5, 19, 9, tzinfo=UTC), None, ["CONVERSATION"])


def test_events_need_an_entity(client: GladlyClient) -> None:
    with pytest.raises(ValueError, match="entities"):
        client.events.fetch(datetime(2026, 5, 19, 9, tzinfo=UTC), None, [])


@responses.activate
def test_an_html_page_answered_as_a_report_is_a_fault_on_the_way_and_retried(
    client: GladlyClient,
) -> None:
    responses.post(f"{API}/reports", body="<html><body>502 Bad Gateway</body></html>")
    responses.post(f"{API}/reports", body=CSV, content_type="text/csv")
    report = client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert len(report.rows) == 2
    assert len(responses.calls) == 2


@responses.activate
def test_a_report_that_is_never_csv_raises_malformed_naming_no_body(client: GladlyClient) -> None:
    responses.post(f"{API}/reports", body=b"\xff\xfe not utf-8 customer@example.com")
    with pytest.raises(MalformedResponseError, match="not valid CSV") as caught:
        client.reports.generate("ConversationExportReport", date(2024, 3, 1), date(2024, 3, 1))
    assert "customer@example.com" not in str(caught.value)
    assert len(responses.calls) == 3
