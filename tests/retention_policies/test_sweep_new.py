"""`sweep --new` by committed job: a sweep between two jobs of one export run misses nothing,
runs while an export holds the writer lock, and runs once at a time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_client.models import ExportJob
from gladly_sandbox import Sandbox
from ingest.exporting import JobOutcome, archive_export_job, run_export
from retention_policies.sensitive import KINDS
from retention_policies.sweep import SWEEP_PHASE
from retention_policies.sweep_plan import _LOCK_PATH, make_sweep
from tests._policies import NOW
from tests._progress import ProgressLog

pytestmark = pytest.mark.integration

CARD = "Sure, it is 4111 1111 1111 1111, expires 04/29"


def test_a_sweep_between_two_jobs_of_one_export_run_misses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "arc"
    with Sandbox(
        seed=31, customers=12, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        customer = sb.org.customer_ids()[0]
        sb.org.say(sb.org.conversation_ids(customer)[0], "CHAT_MESSAGE", CARD)
        sb.advance(days=2)  # the newest job carries the card; every job of the run one stamp
        swept_mid_run: list[int] = []
        cards: list[int] = []
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            archive = Archive.open(root)

            def archive_one(job: ExportJob, now: datetime) -> JobOutcome:
                if archive.archived_job_ids():  # between two jobs of the run, oldest first
                    mid = make_sweep(str(root), KINDS, new=True)
                    swept_mid_run.append(mid.scan.items_scanned)
                    cards.append(mid.scan.items_by_kind()["card"])
                return archive_export_job(c, archive, job, now=now)

            report = run_export(c, archive, now=sb.clock.now(), archive_one=archive_one)
    assert len(report.archived) > 1
    assert sum(swept_mid_run) > 0  # the watermark moved mid-run
    cards.append(make_sweep(str(root), KINDS, new=True).scan.items_by_kind()["card"])
    # Found once, by one of the sweeps. Items carry the run's start as archived_at, the same
    # for every job of the run: a watermark of the newest archived_at seen would have skipped
    # every later job of this run, and the card with them.
    assert sum(cards) == 1
    assert make_sweep(str(root), KINDS, new=True).scan.items_scanned == 0


def test_a_sweep_runs_while_an_export_writes_and_one_new_sweep_at_a_time(
    tmp_path: Path,
) -> None:
    root = tmp_path / "arc"
    with (
        Sandbox(seed=31, customers=6, now=NOW, frozen_clock=True, rate_limit_per_second=None) as sb,
        GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c,
    ):
        run_export(c, Archive.open(root), now=sb.clock.now())
    archive = Archive(root)
    writer = archive.lock()
    writer.acquire()  # an export, mid-commit
    try:
        progress = ProgressLog()
        swept = make_sweep(str(root), KINDS, new=True, progress=progress)
        assert swept.scan.items_scanned > 0
        assert progress.final(SWEEP_PHASE) == swept.scan.items_scanned
    finally:
        writer.release()
    other = type(writer)(archive.fs, archive.path(_LOCK_PATH))
    other.acquire()  # another `sweep --new`, live
    try:
        state = (root / "_sweep" / "state.json").read_text()
        with pytest.raises(ValueError, match=r"another `sweep --new` of .* is running"):
            make_sweep(str(root), KINDS, new=True)
        assert (root / "_sweep" / "state.json").read_text() == state
    finally:
        other.release()
