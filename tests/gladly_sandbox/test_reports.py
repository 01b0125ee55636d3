"""POST /api/v1/reports over real HTTP: the CSV contract, its windows, limits and errors."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from gladly_sandbox import FaultSpec, Sandbox
from gladly_sandbox.ids import parse_timestamp
from tests.gladly_sandbox._api import Api as RawApi

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "seed": 31,
    "customers": 40,
    "now": NOW,
    "frozen_clock": True,
    "open_share": 0.3,
    "rate_limit_per_second": 1000,  # the general limit stays out of the way
    "report_rate_limit_per_minute": None,  # so does the Reports API's, except where tested
    "report_concurrency_limit": None,
}
EVER = {"startAt": "2020-01-01", "endAt": "2025-06-30"}
EXPORT = "ConversationExportReport"
TIMESTAMPS = "ConversationTimestampsReport"
EXPORT_HEADER = [
    "Created At",
    "Conversation ID",
    "Customer ID",
    "Status",
    "Assigned Agent ID - Current",
    "Inbox ID - Current",
    "Topic IDs",
    "First Closed At",
    "Last Closed At",
]
TIMESTAMPS_HEADER = [
    "Timestamp",
    "Event Type",
    "Conversation ID",
    "Customer ID",
    "Inbox ID",
    "Topic ID",
]


class FakeMonotonic:
    """The server's monotonic clock, moved by hand (tests never sleep)."""

    def __init__(self, start: float = 5000.5) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value


class Api(RawApi):
    """Raw HTTP against one sandbox with the admin's credentials, and its report call."""

    def report(self, metric_set: str = EXPORT, **body: Any) -> requests.Response:
        return self("POST", "/reports", json={"metricSet": metric_set, **EVER, **body})


def _rows(response: requests.Response) -> tuple[list[str], list[dict[str, str]]]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    reader = csv.reader(io.StringIO(response.content.decode("utf-8")))
    header = next(reader, [])  # a report without rows is an empty body (by default)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def _ms(text: str) -> str:
    """A Gladly timestamp cut to milliseconds, as the reports write times."""
    when = parse_timestamp(text)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _errors(response: requests.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, list)
    assert len(errors) == 1
    entry: dict[str, Any] = errors[0]
    return entry


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    with Sandbox(**SPEC) as sb:
        yield sb


@pytest.fixture
def api(shared: Sandbox) -> Iterator[Api]:
    yield Api(shared)
    shared.configure(report_row_cap=100_000, faults={})


def _live_customers(sb: Sandbox) -> list[dict[str, Any]]:
    found = []
    for customer_id in sb.org.customer_ids():
        raw = sb.org.raw_customer(customer_id) or {}
        if not raw.get("merged_into") and not raw.get("deleted"):
            found.append(raw)
    return found


def _open_conversation(sb: Sandbox, customer_id: str) -> str | None:
    conversations, _ = sb.org.list_conversations(customer_id)
    return next((c["id"] for c in conversations if c["status"] != "CLOSED"), None)


def _change_everything(api: Api) -> dict[str, str]:
    """Delete, merge (two open conversations), reassign, close and reopen through the sandbox."""
    sb = api.sb
    customers = _live_customers(sb)
    with_open = [c["id"] for c in customers if _open_conversation(sb, c["id"])]
    only_closed = [
        c["id"] for c in customers if c["conversationIds"] and not _open_conversation(sb, c["id"])
    ]
    source, destination, other = with_open[:3]
    deleted = only_closed[0]
    source_open = _open_conversation(sb, source)
    other_open = _open_conversation(sb, other)
    assert source_open
    assert other_open
    inboxes = [i["id"] for i in sb.org.list_inboxes()]
    agents = [a["id"] for a in sb.org.list_agents()]
    assert api("DELETE", f"/customer-profiles/{deleted}").status_code == 204
    body = {"assignee": {"inboxId": inboxes[-1], "agentId": agents[-1]}}
    assert api("PATCH", f"/conversations/{other_open}", json=body).status_code == 204
    closed = {"status": {"value": "CLOSED", "force": True}}
    assert api("PATCH", f"/conversations/{other_open}", json=closed).status_code == 204
    reopen = {"status": {"value": "OPEN"}}
    assert api("PATCH", f"/conversations/{other_open}", json=reopen).status_code == 204
    sb.advance(minutes=5)
    assert api("PATCH", f"/conversations/{other_open}", json=closed).status_code == 204
    merged = sb.merge_customers(source, destination)
    assert merged["sourceConversationId"] == source_open
    return {"deleted": deleted, "absorbed": source_open, "reopened": other_open}


# --- ConversationExportReport ---------------------------------------------------------------------


def test_export_report_agrees_with_get_conversation_for_every_conversation() -> None:
    with Sandbox(**SPEC) as sb:
        api = Api(sb)
        changed = _change_everything(api)
        response = api.report()
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"] == (
            "attachment; filename=ConversationExportReport-20200101-20250630.csv"
        )
        header, rows = _rows(response)
        assert header == EXPORT_HEADER
        ids = [r["Conversation ID"] for r in rows]
        assert sorted(ids) == sorted(sb.org.conversation_ids())
        assert changed["absorbed"] not in ids
        assert all(r["Customer ID"] != changed["deleted"] for r in rows)
        assert [(r["Created At"], r["Conversation ID"]) for r in rows] == sorted(
            (r["Created At"], r["Conversation ID"]) for r in rows
        )
        for row in rows:
            got = api("GET", f"/conversations/{row['Conversation ID']}")
            assert got.status_code == 200
            conversation = got.json()
            assert row["Customer ID"] == conversation["customerId"]
            assert row["Status"] == conversation["status"]
            assert row["Inbox ID - Current"] == conversation["inboxId"]
            assert row["Assigned Agent ID - Current"] == conversation.get("agentId", "")
            assert row["Topic IDs"] == ",".join(conversation["topicIds"])
            assert row["Created At"] == _ms(conversation["createdAt"])
            if conversation["status"] == "CLOSED":
                assert row["Last Closed At"] == _ms(conversation["closedAt"])
                assert row["First Closed At"] <= row["Last Closed At"]
            else:
                assert row["First Closed At"] == row["Last Closed At"] == ""
        reopened = next(r for r in rows if r["Conversation ID"] == changed["reopened"])
        assert reopened["First Closed At"] < reopened["Last Closed At"]


def test_topic_ids_share_one_quoted_cell(api: Api) -> None:
    response = api.report()
    _, rows = _rows(response)
    several = next(r for r in rows if "," in r["Topic IDs"])
    assert f'"{several["Topic IDs"]}"' in response.text


def test_window_is_whole_days_in_the_timezone(api: Api) -> None:
    _, rows = _rows(api.report())
    created = parse_timestamp(rows[len(rows) // 2]["Created At"])
    conversation_id = rows[len(rows) // 2]["Conversation ID"]
    for zone in ("UTC", "America/Denver", "Asia/Tokyo", "Pacific/Kiritimati"):
        day = created.astimezone(ZoneInfo(zone)).date()
        for offset, expected in ((-1, False), (0, True), (1, False)):
            when = (day + timedelta(days=offset)).isoformat()
            body = {"startAt": when, "endAt": when, "timezone": zone}
            _, found = _rows(api.report(**body))
            assert (conversation_id in {r["Conversation ID"] for r in found}) is expected, zone
            assert all(
                parse_timestamp(r["Created At"]).astimezone(ZoneInfo(zone)).date()
                == date.fromisoformat(when)
                for r in found
            )


def test_window_boundaries_are_local_midnights() -> None:
    """A conversation created at exactly 00:00 UTC belongs to that UTC day, not the one before."""
    with Sandbox(**{**SPEC, "contact_again": True}) as sb:
        api = Api(sb)
        midnight = datetime(2025, 6, 3, tzinfo=UTC)
        assert requests.post(
            f"{sb.base_url}/_sandbox/clock", json={"set": midnight.isoformat()}, timeout=10
        ).ok
        closed_only = next(
            c["id"] for c in _live_customers(sb) if not _open_conversation(sb, c["id"])
        )
        assert api("DELETE", f"/customer-profiles/{closed_only}").status_code == 204
        fresh = (sb.org.raw_customer(closed_only) or {})["recontacted_as"]
        new_conversation = sb.org.conversation_ids(fresh)[0]
        got = api("GET", f"/conversations/{new_conversation}").json()
        assert parse_timestamp(got["createdAt"]) == midnight

        def has(start: str, end: str, zone: str | None = None) -> bool:
            body: dict[str, Any] = {"startAt": start, "endAt": end}
            if zone is not None:
                body["timezone"] = zone
            _, rows = _rows(api.report(**body))
            return new_conversation in {r["Conversation ID"] for r in rows}

        assert has("2025-06-03", "2025-06-03")
        assert not has("2025-06-02", "2025-06-02")  # endAt's day ends just before midnight
        assert has("2025-06-02", "2025-06-03")
        assert has("2025-06-02", "2025-06-02", "America/Denver")  # 18:00 local, June 2
        assert not has("2025-06-03", "2025-06-03", "America/Denver")
        assert has("2025-06-03", "2025-06-03", "Europe/Berlin")  # 02:00 local, June 3


def test_inbox_filter_keeps_the_current_inbox(api: Api) -> None:
    _, rows = _rows(api.report())
    inbox = rows[0]["Inbox ID - Current"]
    _, filtered = _rows(api.report(filters={"inboxes": [inbox]}))
    assert filtered == [r for r in rows if r["Inbox ID - Current"] == inbox]


def test_row_cap_drops_the_rest_silently(api: Api) -> None:
    _, everything = _rows(api.report())
    _, events = _rows(api.report(TIMESTAMPS))
    api.sb.configure(report_row_cap=5)
    capped = api.report()
    assert capped.status_code == 200
    assert not {"Gladly-Limited-Data", "Warning"} & set(capped.headers)
    assert _rows(capped)[1] == everything[:5]
    assert _rows(api.report(TIMESTAMPS))[1] == events[:5]
    api.sb.configure(report_row_cap=0)
    assert api.report().content == b""
    api.sb.configure(report_row_cap=None)
    assert len(_rows(api.report())[1]) == len(everything)


# --- ConversationTimestampsReport -----------------------------------------------------------------


def test_timestamps_report_is_event_grain_and_matches_the_items(api: Api) -> None:
    response = api.report(TIMESTAMPS, startAt="2025-05-01", endAt="2025-06-02")
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=ConversationTimestampsReport-20250501-20250602.csv"
    )
    header, rows = _rows(response)
    assert header == TIMESTAMPS_HEADER
    assert rows
    keys = [(r["Timestamp"], r["Conversation ID"]) for r in rows]
    assert keys == sorted(keys)
    by_conversation: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_conversation.setdefault(row["Conversation ID"], []).append(row)
    assert {r["Event Type"] for r in rows} >= {"CONVERSATION/CREATED", "CONVERSATION/CLOSED"}
    start, end = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 3, tzinfo=UTC)
    for conversation_id, found in by_conversation.items():
        conversation = api("GET", f"/conversations/{conversation_id}").json()
        items = api("GET", f"/conversations/{conversation_id}/items").json()
        expected: list[tuple[str, str, str]] = []
        if start <= parse_timestamp(conversation["createdAt"]) < end:
            expected.append((_ms(conversation["createdAt"]), "CONVERSATION/CREATED", ""))
        for item in items:
            if not start <= parse_timestamp(item["timestamp"]) < end:
                continue
            content = item["content"]
            if content["type"] == "CONVERSATION_STATUS_CHANGE":
                kind = "CLOSED" if content["status"] == "CLOSED" else "REOPENED"
                expected.append((_ms(item["timestamp"]), f"CONVERSATION/{kind}", ""))
            if content["type"] == "TOPIC_CHANGE":
                for key, kind in (("addedTopicIds", "ADDED"), ("removedTopicIds", "REMOVED")):
                    for topic in content.get(key, []):
                        expected.append(
                            (_ms(item["timestamp"]), f"CONVERSATION/TOPIC_{kind}", topic)
                        )
        assert sorted((r["Timestamp"], r["Event Type"], r["Topic ID"]) for r in found) == sorted(
            expected
        )
        for row in found:
            assert row["Customer ID"] == conversation["customerId"]
            assert row["Inbox ID"] == conversation["inboxId"]


def test_timestamps_report_follows_status_changes_made_through_the_api() -> None:
    with Sandbox(**SPEC) as sb:
        api = Api(sb)
        changed = _change_everything(api)
        _, rows = _rows(api.report(TIMESTAMPS, startAt="2025-06-02", endAt="2025-06-02"))
        mine = [r["Event Type"] for r in rows if r["Conversation ID"] == changed["reopened"]]
        assert mine[-3:] == ["CONVERSATION/CLOSED", "CONVERSATION/REOPENED", "CONVERSATION/CLOSED"]
        assert changed["absorbed"] not in {r["Conversation ID"] for r in rows}


def test_a_report_without_rows_is_an_empty_body_unless_switched(api: Api) -> None:
    before_any = {"startAt": "2001-01-01", "endAt": "2001-01-31"}
    for metric_set in (EXPORT, TIMESTAMPS):
        empty = api.report(metric_set, **before_any)
        assert empty.status_code == 200
        assert empty.content == b""
        assert empty.headers["Content-Disposition"].endswith("-20010101-20010131.csv")
    api.sb.configure(report_empty_body_when_no_rows=False)
    try:
        assert api.report(**before_any).text == ",".join(EXPORT_HEADER) + "\r\n"
        assert _rows(api.report(TIMESTAMPS, **before_any)) == (TIMESTAMPS_HEADER, [])
    finally:
        api.sb.configure(report_empty_body_when_no_rows=True)


# --- errors ---------------------------------------------------------------------------------------


def _body(metric_set: Any = EXPORT, **fields: Any) -> dict[str, Any]:
    return {"metricSet": metric_set, **EVER, **fields}


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({**EVER}, "metricSet", "blank"),
        (_body(""), "metricSet", "blank"),
        (_body("ConversationReport"), "metricSet", "invalid"),
        (_body(7), "metricSet", "invalid"),
        ({"metricSet": EXPORT, "endAt": "2025-06-01"}, "startAt", "blank"),
        ({"metricSet": EXPORT, "startAt": "2025-06-01"}, "endAt", "blank"),
        (_body(startAt="2025/06/01"), "startAt", "invalid"),
        (_body(startAt="2025-02-30"), "startAt", "invalid"),
        (_body(startAt="2025-06-01T00:00:00Z"), "startAt", "invalid"),
        (_body(endAt=20250601), "endAt", "invalid"),
        (_body(startAt="2025-06-02", endAt="2025-06-01"), "endAt", "invalid"),
        (_body(timezone="Mars/Olympus_Mons"), "timezone", "invalid"),
        (_body(timezone=""), "timezone", "invalid"),
        (_body(timezone="../../etc/passwd"), "timezone", "invalid"),
        (_body(aggregationLevel="hourly"), "aggregationLevel", "invalid"),
        (_body(filters={"inboxes": ["nope"]}), "filters.inboxes", "present"),
        (_body(filters={"channel": "chat"}), "filters.channel", "invalid"),
        (_body(filters=["inboxes"]), "filters", "invalid"),
        (_body(TIMESTAMPS, filters={"inboxes": []}), "filters.inboxes", "invalid"),
        (_body(filters={"colour": "red"}), "filters.colour", "invalid"),
    ],
)
def test_bad_requests_are_400_in_the_documented_form(
    api: Api, body: dict[str, Any], attr: str, code: str
) -> None:
    entry = _errors(api("POST", "/reports", json=body))
    assert entry["attr"] == attr
    assert entry["code"] == code
    assert entry["detail"]


def test_a_body_that_is_not_a_json_object_is_400(api: Api) -> None:
    assert _errors(api("POST", "/reports", data=b"metricSet=x"))["code"] == "invalid"
    assert _errors(api("POST", "/reports", json=[EXPORT]))["code"] == "invalid"


def test_metric_sets_the_sandbox_does_not_make_are_501(api: Api) -> None:
    entry = _errors(api.report("ContactExportReportV3"), status=501)
    assert entry["attr"] == "metricSet"
    assert EXPORT in entry["detail"]
    assert TIMESTAMPS in entry["detail"]
    assert "ContactExportReportV3" in entry["detail"]


# --- limits ---------------------------------------------------------------------------------------


@pytest.fixture
def limited() -> Iterator[tuple[Api, FakeMonotonic]]:
    """A sandbox with the documented report limits and a hand-moved monotonic clock."""
    spec = {**SPEC, "customers": 8, "report_rate_limit_per_minute": 10}
    spec["report_concurrency_limit"] = 2
    with Sandbox(**spec) as sb:
        fake = FakeMonotonic()
        sb.server.ratelimiter.monotonic = fake
        yield Api(sb), fake


def test_eleventh_report_in_a_minute_is_429_until_the_first_leaves_the_window(
    limited: tuple[Api, FakeMonotonic],
) -> None:
    api, fake = limited
    assert [api.report().status_code for _ in range(10)] == [200] * 10  # at 5000.5
    fake.value = 5001.5
    refused = api.report(TIMESTAMPS)
    entry = _errors(refused, status=429)
    assert entry["code"] == "rate_limited"
    assert "per minute" in entry["detail"]
    assert "Retry-After" not in refused.headers
    assert "Ratelimit-Remaining-Second" in refused.headers  # the general limiter's headers
    fake.value = 5060.25  # still inside the rolling minute of the first ten
    assert api.report().status_code == 429
    api.sb.configure(retry_after_header=True)
    assert api.report().headers["Retry-After"] == "1"
    fake.value = 5060.5  # the first ten leave the window together
    assert api.report().status_code == 200  # refused requests did not count
    stats = api.sb.stats()["by_route"]["POST /reports"]
    assert stats == {"200": 11, "429": 3}


def test_invalid_report_requests_do_not_count(limited: tuple[Api, FakeMonotonic]) -> None:
    api, _ = limited
    for _ in range(12):
        assert api.report("NotAReport").status_code == 400
        assert api.report("ContactExportReport").status_code == 501
    assert [api.report().status_code for _ in range(10)] == [200] * 10


def test_report_posts_count_against_the_general_post_limit(
    limited: tuple[Api, FakeMonotonic],
) -> None:
    api, fake = limited
    api.sb.configure(rate_limit_per_second=2)
    answers = [api.report() for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["errors"][0]["detail"] == "rate limit reached"
    assert answers[1].headers["Ratelimit-Remaining-Second"] == "0"
    fake.value += 1
    assert api.report().status_code == 200  # the general refusal did not use a report slot


def test_third_concurrent_report_is_429(limited: tuple[Api, FakeMonotonic]) -> None:
    api, _ = limited
    sb = api.sb
    arrived = threading.Semaphore(0)
    release = threading.Event()
    original_sleep = sb.server.sleep

    def hold(seconds: float) -> None:
        arrived.release()
        release.wait(10)

    sb.server.sleep = hold
    sb.configure(report_latency_ms=1)
    results: list[int] = []

    def one() -> None:
        results.append(Api(sb).report().status_code)

    threads = [threading.Thread(target=one) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        assert arrived.acquire(timeout=10)
        assert arrived.acquire(timeout=10)
        assert sb.server.ratelimiter.reports_in_flight() == 2
        third = api.report()
        entry = _errors(third, status=429)
        assert "at a time" in entry["detail"]
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
        sb.server.sleep = original_sleep
    assert results == [200, 200]
    assert sb.server.ratelimiter.reports_in_flight() == 0
    sb.configure(report_latency_ms=0)
    assert api.report().status_code == 200


def test_limits_can_be_switched_off(limited: tuple[Api, FakeMonotonic]) -> None:
    api, _ = limited
    api.sb.configure(report_rate_limit_per_minute=0)
    assert api.sb.settings.report_rate_limit_per_minute is None
    assert all(api.report().status_code == 200 for _ in range(15))
    with pytest.raises(ValueError, match="report_concurrency_limit"):
        api.sb.configure(report_concurrency_limit=-1)
    with pytest.raises(ValueError, match="report_row_cap"):
        api.sb.configure(report_row_cap=1.5)
    with pytest.raises(ValueError, match="report_latency_ms"):
        api.sb.configure(report_latency_ms=-1)


# --- stats and faults -----------------------------------------------------------------------------


def test_stats_and_faults_see_the_reports_route(api: Api) -> None:
    api.sb.reset_stats()
    api.sb.configure(faults={"/api/v1/reports": FaultSpec(error_rate=1.0)})
    assert api.report().status_code >= 500
    api.sb.configure(faults={})
    assert api.report().status_code == 200
    stats = api.sb.stats()
    assert sum(stats["by_route"]["POST /reports"].values()) == 2
    assert stats["faults"]["error"] == 1
    assert api("GET", "/reports").status_code == 405
