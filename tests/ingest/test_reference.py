"""The directory (inboxes, topics, agents) fetched into the archive by every ingest path."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient, ServerError
from gladly_sandbox import FaultSpec, Sandbox
from ingest.customer_export import run_customer_export
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from ingest.reference import REFERENCE_CALLS, refresh_reference

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
DIRECTORY_ROUTES = ("GET /inboxes", "GET /topics", "GET /agents")
# What the planner's fact cache keys on (retention_policies.facts.SOURCE_DATASETS).
FACT_SOURCES = ("items", "customers", "conversations", "customer_profiles", "inboxes", "topics")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=13,
        customers=40,
        now=NOW,
        frozen_clock=True,
        rate_limit_per_second=None,
        items_per_customer=4,
    ) as sb:
        yield sb


def _client(sb: Sandbox, **options: object) -> GladlyClient:
    return GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0, **options)  # type: ignore[arg-type]


def _directory_calls(sb: Sandbox) -> dict[str, dict[str, int]]:
    routes = sb.stats()["by_route"]
    return {route: routes[route] for route in DIRECTORY_ROUTES if route in routes}


def _rows(archive: Archive, dataset: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = archive.dataset(dataset).to_table().to_pylist()
    return rows


def test_a_refresh_archives_what_the_sandbox_lists_and_a_rerun_writes_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    archive = Archive.open(tmp_path / "archive")
    with _client(sandbox) as client:
        written = refresh_reference(client, archive, run_id="R1", now=NOW)
        state = archive.state(FACT_SOURCES)
        again = refresh_reference(client, archive, run_id="R2", now=NOW)

    truth = {
        "inboxes": sandbox.org.list_inboxes(),
        "topics": sandbox.org.list_topics(),
        "agents": sandbox.org.list_agents(),
    }
    assert written == {name: len(entries) for name, entries in truth.items()}
    assert again == {"inboxes": 0, "topics": 0, "agents": 0}
    assert archive.state(FACT_SOURCES) == state  # the planner's saved facts stay valid
    assert _directory_calls(sandbox) == {route: {"200": 2} for route in DIRECTORY_ROUTES}
    for name, entries in truth.items():
        rows = _rows(archive, name)
        assert [json.loads(str(r["raw_json"])) for r in rows] == entries  # exactly as sent
        assert {r["job_id"] for r in rows} == {"R1"}
        assert {r["archived_at"] for r in rows} == {NOW}
        assert {p.parent.name for p in (tmp_path / "archive" / name).rglob("*.parquet")} == {
            "job-R1"
        }
    inboxes = {r["inbox_id"]: (r["name"], r["disabled"]) for r in _rows(archive, "inboxes")}
    assert inboxes == {i["id"]: (i["name"], i["disabled"]) for i in truth["inboxes"]}
    topics = {r["topic_id"]: (r["name"], r["parent_id"]) for r in _rows(archive, "topics")}
    assert topics == {t["id"]: (t["name"], t.get("parentId")) for t in truth["topics"]}
    agents = {r["agent_id"]: r["email_address"] for r in _rows(archive, "agents")}
    assert agents == {a["id"]: a["emailAddress"] for a in truth["agents"]}


def test_an_inbox_renamed_in_gladly_reaches_the_planner_on_the_next_export_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from retention_policies.facts import lookup_tables
    from retention_policies.facts_cache import facts_tables

    root = tmp_path / "archive"
    archive = Archive.open(root)
    with _client(sandbox) as client:
        first = run_export(client, archive, now=NOW)
        assert first.archived
        assert first.ok
        # Topics and agents came with the export files already; inboxes only from the API.
        assert first.reference_rows == {"inboxes": 6, "topics": 0, "agents": 0}
        assert first.rows_by_dataset()["inboxes"] == 6
        facts_tables(str(root))
        assert facts_tables(str(root))[1] is True  # saved facts reused while nothing changed

        inbox = sandbox.org.list_inboxes()[2]
        assert inbox["name"] != "Priority Care"
        sandbox.rename_inbox(inbox["id"], "Priority Care")
        second = run_export(client, archive, now=NOW)  # no new job: the directory still moves

    assert second.archived == []
    assert second.reference_rows == {"inboxes": 6, "topics": 0, "agents": 0}
    assert second.ok
    tables, reused = facts_tables(str(root))
    assert reused is False  # the rename changed the archive, so the facts were rebuilt
    names = dict(tables.con.execute("SELECT id, name FROM inboxes").fetchall())
    assert names[inbox["id"]] == "Priority Care"
    con = lookup_tables(root)
    try:
        found = con.execute("SELECT id FROM inboxes WHERE name = 'Priority Care'").fetchall()
    finally:
        con.close()
    assert found == [(inbox["id"],)]


def test_an_export_run_records_a_failed_directory_call_and_archives_its_jobs(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.configure(faults={"/topics": FaultSpec(error_rate=1.0)})
    archive = Archive.open(tmp_path / "archive")
    with (
        caplog.at_level(logging.ERROR, logger="ingest.reference"),
        _client(sandbox, max_attempts=2, sleep=lambda _s: None) as client,
    ):
        report = run_export(client, archive, now=NOW)

    assert report.archived
    assert report.failed == []
    assert report.reference_rows == {}
    assert report.reference_error is not None
    assert "GET /topics" in report.reference_error
    assert not report.ok
    assert "inboxes" not in report.rows_by_dataset()
    # Nothing of the refresh was written, not even the inboxes fetched before the failure.
    assert not (tmp_path / "archive" / "inboxes").exists()
    assert {p.parent.name[:4] for p in (tmp_path / "archive" / "topics").rglob("*.parquet")} == {
        "job-"
    }
    assert any("GET /topics" in r.getMessage() for r in caplog.records)


def test_enrichment_refreshes_first_and_pays_from_its_budget(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    archive = Archive.open(tmp_path / "archive")
    with _client(sandbox) as client:
        run_export(client, archive, now=NOW)
        sandbox.reset_stats()
        small = enrich_archive(client, archive, max_calls=REFERENCE_CALLS - 1, now=NOW)
        assert small.reference_rows is None  # too small a budget: not taken
        assert _directory_calls(sandbox) == {}
        assert small.facts is None  # nor the conversation reports: said, not half done
        assert "need at least" in small.facts_reason

        sandbox.rename_inbox(sandbox.org.list_inboxes()[0]["id"], "Priority Care")
        sandbox.reset_stats()
        report = enrich_archive(client, archive, max_calls=REFERENCE_CALLS + 50, now=NOW)
    assert report.reference_rows == {"inboxes": 6, "topics": 0, "agents": 0}
    assert report.facts is not None
    assert report.facts.report_calls > 0
    assert sandbox.stats()["total"] == REFERENCE_CALLS + report.facts.calls
    assert "Priority Care" in {r["name"] for r in _rows(archive, "inboxes")}


def test_enrichment_raises_when_the_directory_cannot_be_read(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    archive = Archive.open(tmp_path / "archive")
    sandbox.configure(faults={"/inboxes": FaultSpec(error_rate=1.0)})
    with (
        _client(sandbox, max_attempts=2, sleep=lambda _s: None) as client,
        pytest.raises(ServerError, match="GET /inboxes"),
    ):
        enrich_archive(client, archive, max_calls=100, now=NOW)
    assert not (tmp_path / "archive" / "conversations").exists()


def test_a_customer_export_refreshes_the_directory_after_its_commit(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    customer_id = next(
        cid
        for cid in sandbox.org.customer_ids()
        if (raw := sandbox.org.raw_customer(cid))
        and not raw.get("deleted")
        and not raw.get("merged_into")
        and raw["conversationIds"]
    )
    archive = Archive.open(tmp_path / "archive")
    with _client(sandbox) as client:
        report = run_customer_export(client, archive, customer_ids=[customer_id], now=NOW)
        sandbox.configure(faults={"/agents": FaultSpec(error_rate=1.0)})
    assert report.reference_error is None
    assert report.reference_rows == {"inboxes": 6, "topics": 24, "agents": 25}
    assert report.rows_by_dataset["inboxes"] == 6
    assert report.rows_by_dataset["items"] > 0
    assert {r["job_id"] for r in _rows(archive, "inboxes")} == {report.job_id}

    with _client(sandbox, max_attempts=2, sleep=lambda _s: None) as client:
        failed = run_customer_export(client, archive, customer_ids=[customer_id], now=NOW)
    assert failed.reference_error is not None
    assert "GET /agents" in failed.reference_error
    assert failed.reference_rows == {}
    items = archive.dataset("items").to_table(columns=["job_id"]).column("job_id").to_pylist()
    assert failed.job_id in items  # the customer's data is archived all the same
