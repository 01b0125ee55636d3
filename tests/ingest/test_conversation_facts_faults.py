"""Conversation facts under a hostile network, Gladly's report limits and a crash mid-pass:
whatever happens, what the archive ends up saying is what the sandbox says, or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_archive.enrichment import read_enrichment_state
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from tests._fault_proxy import FaultProxy
from tests._virtual_time import VirtualTime

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
CONTROL_PREFIX = "/_sandbox"


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox(
        seed=41, customers=60, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        root = tmp_path / "archive"
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, Archive.open(root), now=NOW).failed == []
        yield sb, root


def _assert_truth(sb: Sandbox, archive: Archive) -> None:
    items = archive.dataset("items").to_table(columns=["conversation_id"])
    archived = {c for c in items.column(0).to_pylist() if c}
    rows = archive.dataset("conversations").to_table().to_pylist()
    newest: dict[str, dict[str, object]] = {}
    for row in sorted(rows, key=lambda r: r["fetched_at"]):
        newest[str(row["conversation_id"])] = row
    assert archived <= set(newest)
    for conversation in archived:
        truth = sb.org.get_conversation(conversation)
        assert newest[conversation]["inbox_id"] == truth["inboxId"]
        assert newest[conversation]["status"] == truth["status"]
        assert newest[conversation]["topic_ids"] == sorted(truth.get("topicIds", []))


def test_reports_and_events_through_a_hostile_network_end_as_the_sandbox_says(
    exported: tuple[Sandbox, Path],
) -> None:
    sb, root = exported
    rates = {
        "429": 0.1,
        "503": 0.1,
        "reset_before": 0.05,
        "reset_after": 0.05,
        "truncated": 0.1,
        "garbled": 0.1,
    }
    vt = VirtualTime()
    with (
        FaultProxy(sb.base_url, seed=11, rates=rates, exclude_paths=(CONTROL_PREFIX,)) as proxy,
        GladlyClient(
            proxy.base_url,
            sb.user,
            sb.api_token,
            requests_per_second=500.0,
            max_attempts=12,
            sleep=vt.sleep,
            clock=vt.clock,
        ) as client,
    ):
        archive = Archive(root)
        first = enrich_archive(client, archive, now=NOW)
        assert first.facts is not None
        assert first.facts.mode == "reports"
        sb.advance(minutes=20)
        rows = archive.dataset("conversations").to_table().to_pylist()
        moving = next(str(r["conversation_id"]) for r in rows if r["status"] in ("OPEN", "WAITING"))
        sb.org.update_conversation(moving, {"status": {"value": "CLOSED", "force": True}})
        sb.advance(minutes=20)
        second = enrich_archive(client, archive, now=NOW.replace(minute=40))
        assert second.facts is not None
        assert second.facts.mode == "events"
        assert sum(proxy.stats.values()) > 0
    _assert_truth(sb, Archive(root))


def test_a_report_cut_at_the_row_cap_is_asked_again_in_halves(
    exported: tuple[Sandbox, Path],
) -> None:
    sb, root = exported
    sb.configure(report_row_cap=25)  # Gladly cuts a report silently at its cap
    with GladlyClient(
        sb.base_url, sb.user, sb.api_token, requests_per_second=500.0, reports_per_minute=1000
    ) as client:
        sb.configure(report_rate_limit_per_minute=None)
        report = enrich_archive(client, Archive(root), now=NOW, row_cap=25)
    assert report.facts is not None
    assert report.facts.windows_split > 0
    assert report.facts.not_in_reports == 0
    _assert_truth(sb, Archive(root))


def test_another_integration_spending_the_report_minute_slows_us_and_we_finish(
    exported: tuple[Sandbox, Path],
) -> None:
    sb, root = exported
    vt = VirtualTime()
    sb.server.ratelimiter.monotonic = vt.clock
    # Only two reports a minute are left to us (another integration takes the rest).
    sb.configure(report_rate_limit_per_minute=2)
    with GladlyClient(
        sb.base_url,
        sb.user,
        sb.api_token,
        requests_per_second=500.0,
        max_attempts=10,
        sleep=vt.sleep,
        clock=vt.clock,
    ) as client:
        sb.reset_stats()
        report = enrich_archive(client, Archive(root), now=NOW)
    assert report.facts is not None
    assert report.facts.report_calls >= 3
    stats = sb.stats()
    assert stats["rate_limited"] > 0  # Gladly said 429 …
    assert vt.now - 1000.0 >= 60.0  # … and we waited the minute out (virtual time)
    _assert_truth(sb, Archive(root))


def test_a_crash_between_two_windows_writes_no_watermark_and_the_rerun_completes(
    exported: tuple[Sandbox, Path],
) -> None:
    sb, root = exported

    class Crash(Exception):
        pass

    def crash_after_first(phase: str, done: int, total: int) -> None:
        if phase == "conversation reports" and done == 1 and total > 1:
            raise Crash

    with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client:
        with pytest.raises(Crash):
            enrich_archive(client, Archive(root), now=NOW, progress=crash_after_first)
        assert read_enrichment_state(Archive(root)) is None
        partial = Archive(root).dataset("conversations").count_rows()
        assert partial > 0  # the first window's rows are kept
        rerun = enrich_archive(client, Archive(root), now=NOW)
    assert rerun.facts is not None
    assert rerun.facts.mode == "reports"  # no watermark: everything again
    assert read_enrichment_state(Archive(root)) is not None
    # What the first window wrote is not written twice.
    assert Archive(root).dataset("conversations").count_rows() == partial + rerun.facts.rows_written
    _assert_truth(sb, Archive(root))


def test_an_edited_watermark_is_not_trusted(exported: tuple[Sandbox, Path]) -> None:
    sb, root = exported
    # Four report passes: Gladly's 10 reports a minute would make this test wait for real.
    sb.configure(report_rate_limit_per_minute=None)
    with GladlyClient(
        sb.base_url, sb.user, sb.api_token, requests_per_second=500.0, reports_per_minute=1000
    ) as client:
        enrich_archive(client, Archive(root), now=NOW)
        state = root / "_enrichment" / "state.json"
        for tampered in (b"{not json", b'{"version": 1, "as_of": "2026-05-20T09:00:00"}', b"[]"):
            state.write_bytes(tampered)
            assert read_enrichment_state(Archive(root)) is None
            report = enrich_archive(client, Archive(root), now=NOW)
            assert report.facts is not None
            assert report.facts.mode == "reports"
