"""The audit log's half of the status, and the order in which both halves' sections are shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evidence.status import SECTIONS, AuditStatus, in_status_order, read_audit_status
from evidence.status_audit import ChainState, EngineRun, OpenRequest, RequestsState
from evidence.status_plans import AwaitingPlan, PlansState

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
OURS = {"plans", "requests", "audit"}


def test_the_halves_parts_come_out_in_the_status_order() -> None:
    archive = {
        "last_export": 1,
        "unarchived_jobs": 2,
        "enrichment": 3,
        "reappeared": 6,
        "refilled_details": 7,
    }
    audit = {"plans": 4, "requests": 5, "audit": 8}
    joined = in_status_order(archive, audit)
    assert list(joined) == list(SECTIONS)
    assert list(joined.values()) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert in_status_order(audit, archive) == joined


@pytest.mark.parametrize(
    "audit",
    [
        {"plans": 4, "requests": 5},  # a section missing
        {"plans": 4, "requests": 5, "audit": 7, "reappeared": 6},  # one held twice
        {"plans": 4, "requests": 5, "audit": 7, "surprise": 8},  # one unknown
    ],
)
def test_a_section_missing_twice_or_unknown_is_refused(audit: dict[str, int]) -> None:
    archive = {
        "last_export": 1,
        "unarchived_jobs": 2,
        "enrichment": 3,
        "reappeared": 6,
        "refilled_details": 7,
    }
    with pytest.raises(ValueError, match="the status's sections are"):
        in_status_order(archive, audit)


def _status() -> AuditStatus:
    overdue = AwaitingPlan(
        "p1", "a" * 64, NOW - timedelta(hours=80), timedelta(hours=80), 5, 1, (), 0
    )
    fresh = AwaitingPlan("p2", "b" * 64, NOW - timedelta(hours=1), timedelta(hours=1), 2, 0, (), 1)
    run = EngineRun("crashed", "c" * 64, NOW - timedelta(hours=2), False, 3, False, 1)
    request = OpenRequest("request", "d" * 64, "crashed", run.started_at, 3, 0, 1, 1, 1)
    return AuditStatus(
        plans=PlansState("/archive/_plans", 3, 1, 0, 0, (overdue, fresh), ()),
        requests=RequestsState((run,), (request,)),
        chain=ChainState(True, 2, 1, 40, "e" * 64, False, "seq 3 was altered"),
    )


def test_each_output_holds_the_audit_logs_sections_and_nothing_else() -> None:
    status = _status()
    assert set(status.attention()) == set(status.lines()) == set(status.json()) == OURS


def test_what_needs_a_person_is_named_by_hash_prefix_under_its_section() -> None:
    assert _status().attention() == {
        "plans": ["plan aaaaaaaaaaaa has awaited approval 80.0 h"],
        "requests": [
            "run crashed started 2026-05-20 07:00Z and did not finish",
            "request dddddddddddd: 1 failed, 1 interrupted, 1 not reached",
        ],
        "audit": ["the audit chain does not verify: seq 3 was altered"],
    }


def test_the_lines_and_the_json_say_the_same() -> None:
    status = _status()
    lines, data = status.lines(), status.json()
    assert "    planned 3.3 days ago, over 72 h" in lines["plans"]
    assert "    rehearsed 1 time" in lines["plans"]
    assert "    1 failed, 1 interrupted, 1 not reached of 3 targets" in lines["requests"]
    assert lines["audit"][-1] == "  THE CHAIN DOES NOT VERIFY: seq 3 was altered"
    assert [p["overdue"] for p in data["plans"]["awaiting"]] == [True, False]
    assert data["requests"]["failed_targets"] == data["requests"]["interrupted_targets"] == 1
    assert data["audit"]["head_hash_prefix"] == "e" * 12


def test_a_root_without_plans_or_audit_log(tmp_path: Path) -> None:
    status = read_audit_status(str(tmp_path), now=NOW, audit_key=b"key")
    assert status.attention() == {"plans": [], "requests": [], "audit": []}
    assert status.lines()["audit"] == ["Audit log", "  no audit log yet"]
    assert status.json()["plans"]["total"] == 0
