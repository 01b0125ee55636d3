"""The archive's half of the status: what needs a person per section, and the same sections in
lines and in JSON; its wording kept the same as the audit log's half."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import evidence.status
import ingest.status
from gladly_archive import wording
from ingest.reappeared import Reappeared
from ingest.refills import NEW_CONTACT, Refill
from ingest.status import ArchiveStatus, read_archive_status
from ingest.status_sections import (
    EnrichmentStatus,
    ExportsStatus,
    NotAnArchiveError,
    ReappearedStatus,
    RefilledStatus,
    UnarchivedJob,
    UnarchivedStatus,
)

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
SECTIONS = {"last_export", "unarchived_jobs", "enrichment", "reappeared", "refilled_details"}


def _job(name: str, days_left: float, status: str = "COMPLETED") -> UnarchivedJob:
    expires = NOW + timedelta(days=days_left)
    return UnarchivedJob(name, status, expires - timedelta(days=14), expires)


def _status(jobs: int = 0) -> ArchiveStatus:
    return ArchiveStatus(
        root="/archive",
        now=NOW,
        exports=ExportsStatus(3, 1, "job-c", NOW - timedelta(minutes=30)),
        unarchived=UnarchivedStatus(
            live=True,
            jobs=(_job("soon", 0.5), *(_job(f"later-{i:02}", 5 + i) for i in range(jobs))),
            failed=(_job("broken", 9, "FAILED"),),
        ),
        enrichment=EnrichmentStatus(NOW - timedelta(hours=3), date(2026, 5, 1), "events", "ok"),
        reappeared=ReappearedStatus(
            checked=True,
            tombstones=2,
            customers=(Reappeared("new-id", "erased-id", NOW - timedelta(days=4), "phone"),),
        ),
        refilled=RefilledStatus(
            checked=True,
            watched=3,
            details=(Refill("back-id", "external_id", "ab" * 8, "from-id", NEW_CONTACT),),
        ),
    )


def test_each_output_holds_the_archives_sections_and_nothing_else() -> None:
    status = _status()
    assert set(status.attention()) == set(status.lines()) == set(status.json()) == SECTIONS


def test_what_needs_a_person_is_named_by_id_under_its_section() -> None:
    notes = _status(jobs=2).attention()
    assert notes["unarchived_jobs"] == [
        "export job soon is not archived and Gladly deletes it in 0.5 days",
        "export job broken: Gladly failed it",
    ]
    assert notes["reappeared"] == ["customer new-id has the phone of erased erased-id"]
    assert notes["refilled_details"] == [
        f"customer back-id has the external id unlinked by {'ab' * 8} back "
        "(a new contact brought it back)"
    ]
    assert notes["last_export"] == notes["enrichment"] == []


def test_a_refilled_detail_is_named_with_where_it_was_unlinked_and_its_source() -> None:
    assert _status().lines()["refilled_details"] == [
        "Unlinked details back on a profile",
        "  customer back-id",
        f"    has the external id unlinked by {'ab' * 8} back",
        "    (unlinked from from-id)",
        "    likely source: a new contact brought it back",
        "  3 unlinked details watched",
    ]


def test_the_lines_list_ten_jobs_then_count_the_rest() -> None:
    lines = _status(jobs=12).lines()["unarchived_jobs"]
    assert lines[:3] == [
        "Export jobs not archived",
        "  13 completed jobs not archived (from Gladly)",
        "  1 within 2 days of expiry",
    ]
    assert lines[3] == "  soon: Gladly deletes it in 0.5 days"
    assert sum(": Gladly deletes it in" in line for line in lines) == 10
    assert lines[-2:] == ["  … and 3 more", "  broken: FAILED in Gladly"]


def test_the_json_says_the_same_as_the_lines() -> None:
    data = _status().json()
    assert data["last_export"]["jobs_archived"] == 3
    assert data["last_export"]["age_hours"] == 0.5
    assert data["unarchived_jobs"]["expiring"] == 1
    assert data["unarchived_jobs"]["failed"][0]["days_to_expiry"] == 9
    assert data["enrichment"]["covered_from"] == "2026-05-01"
    assert data["reappeared"]["customers"][0]["erased_at"] == "2026-05-16T09:00:00Z"
    assert data["refilled_details"] == {
        "checked": True,
        "watched": 3,
        "details": [
            {
                "customer_id": "back-id",
                "kind": "external_id",
                "watch_id": "ab" * 8,
                "unlinked_from": "from-id",
                "source": "new contact",
            }
        ],
    }


def test_an_empty_directory_is_an_archive_with_nothing_in_it(tmp_path: Path) -> None:
    status = read_archive_status(str(tmp_path), now=NOW, audit_key=None)
    assert status.lines()["last_export"][1] == "  no export job archived yet"
    assert status.json()["unarchived_jobs"]["known"] is False
    assert status.json()["reappeared"]["customers"] is None
    assert status.json()["refilled_details"] == {"checked": False, "watched": 0, "details": None}
    (tmp_path / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(NotAnArchiveError, match="is not an archive root"):
        read_archive_status(str(tmp_path), now=NOW, audit_key=None)


@pytest.mark.parametrize("name", ["_at", "_age", "_n", "_time", "_hours"])
def test_both_halves_word_times_and_counts_with_the_same_functions(name: str) -> None:
    assert getattr(ingest.status, name) is getattr(evidence.status, name)


def test_times_ages_and_counts_are_worded_for_people_and_for_json() -> None:
    assert wording.at(NOW) == "2026-05-20 09:00Z"
    ages = [-60, 59, 3599, 3600, 47 * 3600, 48 * 3600]
    assert [wording.age(timedelta(seconds=s)) for s in ages] == [
        "in the future",
        "1 min",
        "60 min",
        "1.0 h",
        "47.0 h",
        "2.0 days",
    ]
    assert [wording.counted(n, "plan") for n in (0, 1, 1234)] == [
        "0 plans",
        "1 plan",
        "1,234 plans",
    ]
    assert wording.counted(2, "child", "children") == "2 children"
    assert wording.iso_time(datetime(2026, 1, 2, 3, 4, 5, 6, UTC)) == "2026-01-02T03:04:05.000006Z"
    assert wording.iso_time(None) is None
    assert wording.hours(timedelta(minutes=90)) == 1.5
