"""Conversation facts in bulk (reports), changes since the last run (events), and profiles only
for the customers a policy needs — against the sandbox, whose state is the truth."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_archive.enrichment import read_enrichment_state
from gladly_client import GladlyClient
from gladly_client.models import Report
from gladly_sandbox import Sandbox
from ingest.conversation_facts import (
    ReportColumnError,
    ReportColumns,
    Window,
    plan_conversation_facts,
    plan_windows,
)
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from retention_policies.candidates import profile_candidates
from retention_policies.facts import load_tables
from tests._policies import TIER_LAPSED

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)

BRONZE = TIER_LAPSED.format(tier="bronze")


# --- windows and columns (no Gladly needed) ---------------------------------------------------


def test_windows_cover_every_day_and_hold_at_most_the_rows_asked_for() -> None:
    first, last = date(2024, 1, 1), date(2024, 3, 31)
    counts = {first + timedelta(days=i): 10 for i in range(91)}
    counts[date(2024, 2, 10)] = 500  # a busy day gets a window of its own
    windows = plan_windows(counts, first, last, rows_per_window=300, max_days=400)
    assert windows[0].start == first
    assert windows[-1].end == last
    for before, after in itertools.pairwise(windows):
        assert after.start == before.end + timedelta(days=1)  # no gap, no overlap
    busy = next(w for w in windows if date(2024, 2, 10) in w)
    assert (busy.start, busy.end, busy.expected) == (date(2024, 2, 10), date(2024, 2, 10), 500)
    assert all(w.expected <= 300 for w in windows if w is not busy)
    assert sum(w.expected for w in windows) == sum(counts.values())


def test_windows_are_bounded_in_days_even_when_empty() -> None:
    windows = plan_windows({}, date(2020, 1, 1), date(2023, 12, 31), max_days=366)
    assert len(windows) == 4
    assert all((w.end - w.start).days < 366 for w in windows)


def test_a_window_splits_into_two_halves_that_cover_it() -> None:
    first, second = Window(date(2024, 1, 1), date(2024, 1, 10)).halves()
    assert (first.start, first.end, second.start, second.end) == (
        date(2024, 1, 1),
        date(2024, 1, 5),
        date(2024, 1, 6),
        date(2024, 1, 10),
    )


def _report(header: tuple[str, ...]) -> Report:
    return Report("ConversationExportReport", date(2024, 1, 1), date(2024, 1, 7), header, [])


def test_a_report_missing_a_column_is_refused_naming_it_and_how_to_map_it() -> None:
    defaults = ReportColumns()
    header = (
        *tuple(
            getattr(defaults, f) for f in ("conversation_id", "customer_id", "created_at", "status")
        ),
        "Inbox ID - Current",
        "Assigned Agent ID - Current",
        "Last Closed At",
    )
    with pytest.raises(ReportColumnError) as caught:
        defaults.positions(_report(header))
    message = str(caught.value)
    assert "'Topic IDs' (topic_ids)" in message
    assert "2024-01-01..2024-01-07" in message
    assert "--report-columns" in message
    mapped = ReportColumns.from_mapping({"topic_ids": "Inbox ID - Current"})
    assert mapped.positions(_report(header))["topic_ids"] == 4


def test_report_columns_load_from_toml_and_refuse_unknown_facts(tmp_path: Path) -> None:
    good = tmp_path / "columns.toml"
    good.write_text('topic_ids = "Topics"\ninbox_id = "Inbox ID"\n')
    columns = ReportColumns.load(good)
    assert (columns.topic_ids, columns.inbox_id, columns.status) == ("Topics", "Inbox ID", "Status")
    bad = tmp_path / "bad.toml"
    bad.write_text('topics = "Topics"\n')
    with pytest.raises(ValueError, match=r"unknown fact.*topics.*known: conversation_id"):
        ReportColumns.load(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text('status = "  "\n')
    with pytest.raises(ValueError, match="status must be a non-empty column header"):
        ReportColumns.load(empty)


# --- against the sandbox ------------------------------------------------------------------------


@dataclass
class Org:
    sb: Sandbox
    client: GladlyClient
    archive: Archive
    root: Path
    tmp: Path

    def newest_conversations(self) -> dict[str, dict[str, object]]:
        rows = self.archive.dataset("conversations").to_table().to_pylist()
        newest: dict[str, dict[str, object]] = {}
        for row in sorted(rows, key=lambda r: r["fetched_at"]):
            newest[str(row["conversation_id"])] = row
        return newest


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    with Sandbox(
        seed=31, customers=60, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        root = tmp_path / "archive"
        archive = Archive.open(root)
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, archive, now=NOW).failed == []
            yield Org(sb, c, archive, root, tmp_path)


def _archived_conversations(archive: Archive) -> set[str]:
    items = archive.dataset("items").to_table(columns=["conversation_id"])
    return {c for c in items.column(0).to_pylist() if c is not None}


@pytest.mark.integration
def test_a_report_pass_fills_every_archived_conversation_with_what_gladly_says(org: Org) -> None:
    report = enrich_archive(org.client, org.archive, now=NOW)
    facts = report.facts
    assert facts is not None
    assert facts.mode == "reports"
    archived = _archived_conversations(org.archive)
    # One report per window of days, not one GET per conversation.
    assert facts.get_calls == 0
    assert facts.report_calls <= 4  # three years of days, at most 366 days a window
    newest = org.newest_conversations()
    assert archived <= set(newest)
    for conversation in archived:
        truth = org.sb.org.get_conversation(conversation)
        row = newest[conversation]
        assert row["inbox_id"] == truth["inboxId"]
        assert row["status"] == truth["status"]
        assert row["customer_id"] == truth["customerId"]
        assert row["topic_ids"] == sorted(truth.get("topicIds", []))
    state = read_enrichment_state(org.archive)
    assert state is not None
    assert state.as_of == NOW
    # No profile was fetched: nobody asked for one.
    assert report.customers_fetched == 0
    assert report.candidates is None
    # A second run at once reads the events instead and writes nothing new.
    again = enrich_archive(org.client, org.archive, now=NOW + timedelta(minutes=5))
    assert again.facts is not None
    assert again.facts.mode == "events"
    assert again.facts.rows_written == 0
    assert again.facts.report_calls == 0


@pytest.mark.integration
def test_the_events_pass_refreshes_a_moved_conversation_and_a_changed_customer(org: Org) -> None:
    policies = org.tmp / "bronze.yaml"
    policies.write_text(BRONZE)

    def candidates() -> set[str]:
        return profile_candidates(str(org.root), policies, now=NOW).customer_ids

    first = enrich_archive(org.client, org.archive, now=NOW, candidates=candidates)
    assert first.candidates
    assert first.customers_fetched == first.candidates
    assert candidates() == set()  # every customer the policy needs is known now
    # Only the customers the policy's other filter (a year without contact) selects.
    tables = load_tables(org.root)
    lapsed = {
        r[0]
        for r in tables.con.execute(
            "SELECT customer_id FROM customers WHERE last_activity < ?", [NOW - timedelta(days=365)]
        ).fetchall()
    }
    everyone = tables.con.execute("SELECT count(*) FROM customers").fetchone()
    tables.con.close()
    assert first.candidates <= len(lapsed) < (everyone[0] if everyone else 0)

    # An agent moves an open conversation to another inbox; someone changes a lapsed
    # customer's loyalty tier. An hour later the daily run reads the events.
    newest = org.newest_conversations()
    moving = next(c for c, r in sorted(newest.items()) if r["status"] in ("OPEN", "WAITING"))
    old_inbox = newest[moving]["inbox_id"]
    new_inbox = next(i["id"] for i in org.sb.org.list_inboxes() if i["id"] != old_inbox)
    org.sb.advance(minutes=30)
    org.sb.org.update_conversation(moving, {"assignee": {"inboxId": new_inbox}})
    changed_customer = sorted(lapsed)[0]
    org.sb.org.update_customer(changed_customer, {"customAttributes": {"loyaltyTier": "bronze"}})
    org.sb.advance(minutes=30)
    later = NOW + timedelta(hours=1)
    # Until the events are read the archive cannot know: its profile is still the one fetched.
    assert profile_candidates(str(org.root), policies, now=later).customer_ids == set()

    second = enrich_archive(org.client, org.archive, now=later, candidates=candidates)
    facts = second.facts
    assert facts is not None
    assert facts.mode == "events"
    assert facts.event_calls == 1
    assert facts.report_calls == 0
    assert facts.changed_conversations >= 1
    assert facts.get_calls == facts.changed_conversations
    assert org.newest_conversations()[moving]["inbox_id"] == new_inbox
    # The profile change was recorded, so the customer's attributes were unknown, so its
    # profile was fetched again: the archive now says what Gladly says.
    assert facts.profile_markers >= 1
    assert second.customers_fetched >= 1
    profiles = org.archive.dataset("customer_profiles").to_table().to_pylist()
    mine = max(
        (p for p in profiles if p["customer_id"] == changed_customer),
        key=lambda p: p["fetched_at"],
    )
    assert json.loads(str(mine["custom_attributes_json"]))["loyaltyTier"] == "bronze"
    assert _attributes(org.root, changed_customer)["loyaltyTier"] == "bronze"


@pytest.mark.integration
def test_a_merge_seen_in_the_events_moves_the_facts_to_the_survivor(org: Org) -> None:
    enrich_archive(org.client, org.archive, now=NOW)
    tables = load_tables(org.root)
    pair = tables.con.execute(
        """SELECT customer_id FROM customers WHERE NOT has_open_conversation
           AND conversation_count > 0 ORDER BY customer_id LIMIT 2"""
    ).fetchall()
    before = dict(
        tables.con.execute(
            "SELECT customer_id, conversation_count FROM customers WHERE customer_id IN (?, ?)",
            [pair[0][0], pair[1][0]],
        ).fetchall()
    )
    tables.con.close()
    source, survivor = pair[0][0], pair[1][0]
    org.sb.advance(minutes=10)
    org.sb.merge_customers(source, survivor)
    org.sb.advance(minutes=10)
    report = enrich_archive(org.client, org.archive, now=NOW + timedelta(minutes=20))
    assert report.facts is not None
    assert report.facts.merges == 1
    tables = load_tables(org.root)
    after = dict(
        tables.con.execute("SELECT customer_id, conversation_count FROM customers").fetchall()
    )
    owners = {
        r[0]
        for r in tables.con.execute(
            "SELECT DISTINCT customer_id FROM items WHERE customer_id IN (?, ?)", [source, survivor]
        ).fetchall()
    }
    tables.con.close()
    assert source not in after
    assert after[survivor] == before[source] + before[survivor]
    assert owners == {survivor}


@pytest.mark.integration
def test_a_report_missing_an_expected_column_stops_enrichment_and_writes_nothing(
    org: Org,
) -> None:
    columns = ReportColumns.from_mapping({"topic_ids": "Topics"})
    with pytest.raises(ReportColumnError, match="'Topics' \\(topic_ids\\)"):
        enrich_archive(org.client, org.archive, now=NOW, columns=columns)
    assert org.archive.dataset("conversations").to_table().num_rows == 0
    assert read_enrichment_state(org.archive) is None


@pytest.mark.integration
def test_a_pass_older_than_a_day_is_followed_by_reports_not_events(org: Org) -> None:
    enrich_archive(org.client, org.archive, now=NOW)
    plan = plan_conversation_facts(org.archive, NOW + timedelta(hours=23, minutes=50))
    assert plan.mode == "reports"
    assert "24 h" in plan.reason
    plan = plan_conversation_facts(org.archive, NOW + timedelta(hours=2))
    assert plan.mode == "events"
    # A watermark in the future (a clock gone wrong, or an edited file) is not trusted.
    plan = plan_conversation_facts(org.archive, NOW - timedelta(hours=1))
    assert plan.mode == "reports"


@pytest.mark.integration
def test_a_budget_too_small_for_the_reports_says_so_and_leaves_a_backlog(org: Org) -> None:
    report = enrich_archive(org.client, org.archive, now=NOW, max_calls=3)
    assert report.facts is None
    assert "need at least" in report.facts_reason
    assert report.backlog
    assert org.archive.dataset("conversations").to_table().num_rows == 0


@pytest.mark.integration
def test_without_profile_events_a_week_old_profile_is_read_again(org: Org) -> None:
    """Gladly's documented events stream carries no profile changes: a candidate's profile is
    read again once it is a week old, so a plan never rests on older attributes."""
    org.sb.configure(profile_events_in_stream=False)
    policies = org.tmp / "bronze.yaml"
    policies.write_text(BRONZE)

    def candidates(at: datetime) -> set[str]:
        return profile_candidates(str(org.root), policies, now=at).customer_ids

    first = enrich_archive(org.client, org.archive, now=NOW, candidates=lambda: candidates(NOW))
    assert first.customers_fetched
    customer = sorted(_fetched(org.archive))[0]
    org.sb.org.update_customer(customer, {"customAttributes": {"loyaltyTier": "bronze"}})
    day = NOW + timedelta(days=1)
    assert candidates(day) == set()  # nothing says it changed, and it is a day old
    week = NOW + timedelta(days=8)
    assert customer in candidates(week)
    again = enrich_archive(org.client, org.archive, now=week, candidates=lambda: candidates(week))
    assert again.customers_fetched >= first.customers_fetched  # (and who lapsed since)
    assert candidates(week) == set()
    assert _attributes(org.root, customer)["loyaltyTier"] == "bronze"


def _fetched(archive: Archive) -> set[str]:
    table = archive.dataset("customer_profiles").to_table(columns=["customer_id"])
    return set(table.column(0).to_pylist())


def _attributes(root: Path, customer: str) -> dict[str, object]:
    """The customer's custom attributes as the planner's facts hold them."""
    tables = load_tables(root)
    row = tables.con.execute(
        "SELECT custom_attributes FROM customers WHERE customer_id = ?", [customer]
    ).fetchone()
    tables.con.close()
    assert row is not None
    assert row[0] is not None
    return dict(json.loads(row[0]))
