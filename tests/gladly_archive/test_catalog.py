"""The analyst's catalog: DuckDB views of every dataset and one row per customer, agent, …,
registered on a connection or shipped as gladly.duckdb (views only, replaced atomically)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from gladly_archive.archive import Archive
from gladly_archive.catalog import (
    CATALOG_NAME,
    DATASET_VIEWS,
    LATEST_VIEWS,
    CatalogError,
    refresh_catalog,
    register_views,
    write_catalog,
)
from gladly_archive.enrichment import append_snapshot
from gladly_archive.schemas import CONVERSATIONS, CUSTOMER_PROFILES, DATASETS
from tests._full_archive import FullArchive, build_full_archive
from tests.gladly_archive.test_archive import T0, fixed_clock, item, items_table

AT = datetime(2025, 3, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> FullArchive:
    return build_full_archive(tmp_path_factory.mktemp("catalog") / "archive")


def _views(root: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    register_views(con, str(root))
    return con


def _count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {view}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {view}").fetchall()]


def _arrow_types(dataset: str) -> list[tuple[str, str]]:
    """DuckDB's reading of the dataset's Arrow schema: the types the views must have."""
    with duckdb.connect() as con:
        con.register("t", DATASETS[dataset].empty_table())
        return _columns(con, "t")


@pytest.mark.integration
def test_one_row_per_live_customer_and_per_agent(full: FullArchive) -> None:
    con = _views(full.root)
    assert _count(con, "customers_latest") == len(full.live_customers)
    ids = {r[0] for r in con.execute("SELECT customer_id FROM customers_latest").fetchall()}
    assert ids == full.live_customers
    assert full.erased not in ids
    assert _count(con, "agents_latest") == full.agents
    # The per-job history is kept: every export job's agents, one row each per job.
    jobs = con.execute("SELECT count(DISTINCT job_id) FROM agents").fetchone()
    assert jobs is not None
    assert jobs[0] > 1
    assert _count(con, "agents") == full.agents * jobs[0]


@pytest.mark.integration
def test_every_view_has_the_schema_columns_and_types(full: FullArchive) -> None:
    con = _views(full.root)
    for dataset in DATASET_VIEWS:
        assert _columns(con, dataset) == _arrow_types(dataset), dataset
        assert _count(con, dataset) > 0, dataset
    for view, (dataset, key, _, _) in LATEST_VIEWS.items():
        assert _columns(con, view) == _arrow_types(dataset), view
        distinct = con.execute(f"SELECT count(DISTINCT {key}) FROM {dataset}").fetchone()  # noqa: S608
        if dataset != "customer_profiles":  # gone profiles are left out (see its own test)
            assert (_count(con, view),) == distinct, view


@pytest.mark.integration
def test_the_shipped_catalog_answers_read_only_and_holds_no_data(full: FullArchive) -> None:
    path = full.root / CATALOG_NAME
    with duckdb.connect(str(path), read_only=True) as con:
        assert _count(con, "customers_latest") == len(full.live_customers)
        assert _count(con, "agents_latest") == full.agents
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
        views = {
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        assert views == {*DATASET_VIEWS, *LATEST_VIEWS}
    raw = path.read_bytes()
    assert full.emails
    for email in full.emails:
        assert email.encode() not in raw
        assert email.lower().encode() not in raw
    assert not [p for p in full.root.iterdir() if p.name.startswith(f".{CATALOG_NAME}")]


def test_datasets_without_files_are_empty_typed_views(tmp_path: Path) -> None:
    con = _views(tmp_path / "nothing-yet")
    for dataset in DATASET_VIEWS:
        assert _columns(con, dataset) == _arrow_types(dataset)
        assert _count(con, dataset) == 0
    for view in LATEST_VIEWS:
        assert _count(con, view) == 0


def test_a_refresh_replaces_the_file_under_an_open_reader(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    job = archive.stage_job("J1")
    job.write_items(items_table([item("i1", "c1", "u1", T0)]).to_batches())
    job.commit()
    assert not (tmp_path / CATALOG_NAME).exists()  # a commit keeps a catalog, never makes one
    refresh_catalog(archive.fs, archive.root, create=True)
    reader = duckdb.connect(str(tmp_path / CATALOG_NAME), read_only=True)
    assert _count(reader, "items") == 1
    assert _count(reader, "conversations") == 0
    before = (tmp_path / CATALOG_NAME).stat().st_ino
    fact = {
        "conversation_id": "c1",
        "customer_id": "u1",
        "topic_ids": [],
        "fetched_at": AT,
    }
    append_snapshot(
        archive, "conversations", pa.Table.from_pylist([fact], schema=CONVERSATIONS), run_id="R1"
    )
    assert (tmp_path / CATALOG_NAME).stat().st_ino != before  # the first conversations file
    assert _count(reader, "items") == 1  # the old file, still readable
    reader.close()
    with duckdb.connect(str(tmp_path / CATALOG_NAME), read_only=True) as fresh:
        assert _count(fresh, "conversations") == 1
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == []
    # Unchanged views: the file is left alone.
    written = (tmp_path / CATALOG_NAME).stat().st_ino
    refresh_catalog(archive.fs, archive.root)
    assert (tmp_path / CATALOG_NAME).stat().st_ino == written


def test_newest_row_wins_and_gone_profiles_are_left_out(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path)
    later = AT + timedelta(days=1)

    def row(
        customer: str, at: datetime, event: str | None = None, into: str | None = None
    ) -> dict[str, object]:
        attributes = None if event else f'{{"tier": "{customer}-{at.day}"}}'
        return {
            "customer_id": customer,
            "custom_attributes_json": attributes,
            "updated_at": at,
            "fetched_at": at,
            "event": event,
            "merged_into": into,
        }

    rows = [
        row("deleted", AT),
        row("deleted", later, "CUSTOMER_PROFILE/DELETED"),
        row("merged", AT),
        row("merged", later, "CUSTOMER/MERGED", "survivor"),
        row("survivor", AT),
        row("survivor", later, "CUSTOMER/MERGED"),
        row("changed", AT),
        row("changed", later, "CUSTOMER_PROFILE/UPDATED"),
        row("back", AT, "CUSTOMER_PROFILE/DELETED"),
        row("back", later),
        row("same-instant", later),
        row("same-instant", later, "CUSTOMER_PROFILE/DELETED"),
    ]
    table = pa.Table.from_pylist(rows, schema=CUSTOMER_PROFILES)
    append_snapshot(archive, "customer_profiles", table, run_id="R1")
    con = _views(tmp_path)
    latest = {
        r[0]: (r[1], r[2])
        for r in con.execute(
            "SELECT customer_id, custom_attributes_json, event FROM customer_profiles_latest"
        ).fetchall()
    }
    assert latest == {
        "survivor": (None, "CUSTOMER/MERGED"),  # it absorbed another: attributes unknown
        "changed": (None, "CUSTOMER_PROFILE/UPDATED"),
        "back": ('{"tier": "back-6"}', None),  # read again after the deletion
    }


def test_a_root_duckdb_would_read_as_a_pattern_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "archive[1]"
    with pytest.raises(CatalogError, match=r"\[.*pattern"):
        register_views(duckdb.connect(), str(root))
    archive = Archive.open(root)
    with caplog.at_level(logging.WARNING):
        refresh_catalog(archive.fs, archive.root, create=True)  # logged, never raised
    assert "pattern" in caplog.text
    assert not (root / CATALOG_NAME).exists()


def test_a_remote_archive_has_no_catalog_file() -> None:
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    archive = Archive.open("archive", filesystem=fs)
    assert write_catalog(archive.fs, archive.root) is None
