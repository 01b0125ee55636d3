"""Directory snapshots (inboxes, topics, agents): job-<id> directories, newest wins, no Hive key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gladly_archive import writer as writer_module
from gladly_archive.archive import Archive
from gladly_archive.enrichment import REFERENCE_DATASETS, append_reference_snapshot
from gladly_archive.purge import purge_customers
from gladly_archive.schemas import AGENTS, INBOXES, TOPICS

FETCHED = datetime(2025, 4, 2, 8, 30, tzinfo=UTC)
# What the planner's fact cache keys on (retention_policies.facts.SOURCE_DATASETS' directory part).
LOOKUPS = ("inboxes", "topics")


def _inboxes(names: dict[str, str], *, run: str = "R1", at: datetime = FETCHED) -> pa.Table:
    rows = [
        {
            "inbox_id": inbox_id,
            "name": name,
            "disabled": False,
            "raw_json": json.dumps({"id": inbox_id, "name": name, "disabled": False}),
            "job_id": run,
            "archived_at": at,
        }
        for inbox_id, name in names.items()
    ]
    return pa.Table.from_pylist(rows, schema=INBOXES)


def _topics(names: dict[str, str], *, job: str, at: datetime) -> pa.Table:
    rows = [
        {
            "topic_id": topic_id,
            "name": name,
            "disabled": False,
            "parent_id": None,
            "raw_json": json.dumps({"id": topic_id, "name": name}),
            "job_id": job,
            "archived_at": at,
        }
        for topic_id, name in names.items()
    ]
    return pa.Table.from_pylist(rows, schema=TOPICS)


def _newest_names(archive: Archive, dataset: str) -> dict[str, str]:
    """Newest name per id, the way every reader of the lookups decides."""
    id_column = REFERENCE_DATASETS[dataset]
    rows = archive.dataset(dataset).to_table(columns=[id_column, "name", "archived_at"])
    newest: dict[str, tuple[datetime, str]] = {}
    for row in rows.to_pylist():
        seen = newest.get(row[id_column])
        assert seen is None or seen[0] != row["archived_at"], "a tie leaves the winner to chance"
        if seen is None or row["archived_at"] > seen[0]:
            newest[row[id_column]] = (row["archived_at"], row["name"])
    return {key: name for key, (_, name) in newest.items()}


def _visible(root: Path, dataset: str) -> list[str]:
    return sorted(str(p.relative_to(root / dataset)) for p in (root / dataset).rglob("*.parquet"))


def test_a_listing_lands_in_its_run_directory_and_reads_back(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    written = append_reference_snapshot(
        archive, "inboxes", _inboxes({"i1": "Support", "i2": "VIP"}), run_id="R1"
    )
    assert written == 2
    assert _visible(tmp_path, "inboxes") == ["job-R1/part-R1-0.parquet"]
    table = archive.dataset("inboxes").to_table()
    assert table.schema.equals(INBOXES, check_metadata=False)
    assert sorted(table.column("name").to_pylist()) == ["Support", "VIP"]
    footer = pq.read_schema(tmp_path / "inboxes" / "job-R1" / "part-R1-0.parquet")
    assert footer.metadata[b"gladly_pipeline.dataset"] == b"inboxes"
    assert not [p for p in (tmp_path / "inboxes").rglob("*") if p.name.startswith(".")]


def test_an_unchanged_listing_writes_nothing_and_keeps_the_state(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    listing = {"i1": "Support", "i2": "VIP"}
    empty = archive.state(LOOKUPS)
    assert append_reference_snapshot(archive, "inboxes", _inboxes(listing), run_id="R1") == 2
    first = archive.state(LOOKUPS)
    assert first != empty  # the planner's fact cache notices the new names

    later = FETCHED + timedelta(hours=1)
    again = _inboxes(listing, run="R2", at=later)
    assert append_reference_snapshot(archive, "inboxes", again, run_id="R2") == 0
    assert archive.state(LOOKUPS) == first
    assert _visible(tmp_path, "inboxes") == ["job-R1/part-R1-0.parquet"]

    renamed = _inboxes({"i1": "Support", "i2": "VIP Support"}, run="R3", at=later)
    assert append_reference_snapshot(archive, "inboxes", renamed, run_id="R3") == 2
    assert archive.state(LOOKUPS) != first
    assert _newest_names(archive, "inboxes") == {"i1": "Support", "i2": "VIP Support"}


def test_a_listing_fetched_with_the_same_clock_still_wins(tmp_path: Path) -> None:
    """An export job's topics.jsonl and the API's listing archived by one run share `now`."""
    archive = Archive.open(tmp_path)
    staged = archive.stage_job("J1")
    staged.write_topics(
        _topics({"t1": "Returns", "t2": "Holiday"}, job="J1", at=FETCHED).to_batches()
    )
    staged.commit()
    listing = _topics({"t1": "Order Returns", "t2": "Holiday"}, job="R1", at=FETCHED)
    assert append_reference_snapshot(archive, "topics", listing, run_id="R1") == 2
    assert _newest_names(archive, "topics") == {"t1": "Order Returns", "t2": "Holiday"}
    stamps = archive.dataset("topics").to_table(columns=["job_id", "archived_at"]).to_pylist()
    assert {r["archived_at"] for r in stamps if r["job_id"] == "R1"} == {
        FETCHED + timedelta(microseconds=1)
    }


def test_readers_of_topics_see_export_and_api_directories_alike(tmp_path: Path) -> None:
    """topics/ holds job-<id>/ directories from export files and API listings alike, no Hive
    key, so every reader sees exactly the schema's columns."""
    archive = Archive.open(tmp_path)
    staged = archive.stage_job("J1")
    old = _topics({"t1": "Returns", "t2": "Holiday"}, job="J1", at=FETCHED)
    staged.write_topics(old.to_batches())
    staged.commit()
    later = FETCHED + timedelta(days=1)
    new = _topics({"t1": "Order Returns", "t2": "Holiday"}, job="R1", at=later)
    assert append_reference_snapshot(archive, "topics", new, run_id="R1") == 2
    directories = {p.split("/")[0] for p in _visible(tmp_path, "topics")}
    assert directories == {"job-J1", "job-R1"}

    assert archive.dataset("topics").count_rows() == 4
    assert _newest_names(archive, "topics") == {"t1": "Order Returns", "t2": "Holiday"}
    # pandas.read_parquet goes through this (Hive discovery on, nothing to discover).
    assert pq.read_table(tmp_path / "topics").column_names == TOPICS.names
    glob = str(tmp_path / "topics" / "**" / "*.parquet")
    assert pl.scan_parquet(glob).select(pl.len()).collect().item() == 4
    hive = pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item()
    assert hive == 4
    counted = duckdb.execute(
        "SELECT count(*) FROM read_parquet(?, hive_partitioning=true)", [glob]
    ).fetchone()
    assert counted == (4,)
    # How the planner reads the lookups (retention_policies.facts): no Hive discovery.
    newest = duckdb.execute(
        "SELECT topic_id, name FROM read_parquet(?, hive_partitioning=false, union_by_name=true) "
        "QUALIFY row_number() OVER (PARTITION BY topic_id ORDER BY archived_at DESC) = 1 "
        "ORDER BY topic_id",
        [glob],
    ).fetchall()
    assert newest == [("t1", "Order Returns"), ("t2", "Holiday")]

    from retention_policies.facts import lookup_tables

    con = lookup_tables(tmp_path)
    try:
        assert con.execute("SELECT id, name FROM topics ORDER BY id").fetchall() == newest
    finally:
        con.close()


def test_a_purge_knows_the_directory_datasets_hold_no_customers(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    append_reference_snapshot(archive, "inboxes", _inboxes({"i1": "Support"}), run_id="R1")
    report = purge_customers(archive, ["c-nobody"])
    assert not [n for n in report.not_purged if n.startswith(("inboxes", "topics", "agents"))]
    assert _visible(tmp_path, "inboxes") == ["job-R1/part-R1-0.parquet"]


def test_a_crash_before_the_rename_leaves_nothing_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive.open(tmp_path)
    before = archive.state(LOOKUPS)

    def die(*_args: Any) -> None:
        raise KeyboardInterrupt  # what a kill between writing and renaming leaves behind

    monkeypatch.setattr(writer_module, "fsync_file", die)
    with pytest.raises(KeyboardInterrupt):
        append_reference_snapshot(archive, "inboxes", _inboxes({"i1": "Support"}), run_id="R1")
    monkeypatch.undo()
    leftovers = [p.name for p in (tmp_path / "inboxes").rglob("*") if p.is_file()]
    assert leftovers  # the half-done file is there, under its hidden temporary name
    assert all(name.startswith(".") for name in leftovers)
    assert archive.state(LOOKUPS) == before
    assert archive.dataset("inboxes").count_rows() == 0
    # The next run writes the listing whole.
    assert append_reference_snapshot(archive, "inboxes", _inboxes({"i1": "Support"}), run_id="R2")
    assert _newest_names(archive, "inboxes") == {"i1": "Support"}


def test_agents_and_empty_listings(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    agents = pa.Table.from_pylist(
        [
            {
                "agent_id": "a1",
                "name": "Avery Agent",
                "email_address": "avery@acme.example.com",
                "raw_json": "{}",
                "job_id": "R1",
                "archived_at": FETCHED,
            }
        ],
        schema=AGENTS,
    )
    assert append_reference_snapshot(archive, "agents", agents, run_id="R1") == 1
    assert append_reference_snapshot(archive, "agents", agents.slice(0, 0), run_id="R2") == 0
    assert _visible(tmp_path, "agents") == ["job-R1/part-R1-0.parquet"]


@pytest.mark.parametrize(
    ("dataset", "run_id", "error"),
    [
        ("conversations", "R1", "unknown reference dataset"),
        ("inboxes", "../escape", "job id must be"),
        ("inboxes", "folded", "reserved"),
    ],
)
def test_bad_names_are_refused_before_anything_is_written(
    tmp_path: Path, dataset: str, run_id: str, error: str
) -> None:
    archive = Archive.open(tmp_path)
    with pytest.raises(ValueError, match=error):
        append_reference_snapshot(archive, dataset, _inboxes({"i1": "x"}), run_id=run_id)
    assert not (tmp_path / "inboxes").exists()
    assert not (tmp_path / "escape").exists()
