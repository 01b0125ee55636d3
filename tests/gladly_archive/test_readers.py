"""The archive reads the same in pyarrow, DuckDB, pandas and polars, and staging never leaks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.compute as pc
import pytest

from gladly_archive.archive import Archive
from gladly_archive.convert import QuarantinedLine, convert_customers_file, convert_items_lines
from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.store import Organisation

NOW = datetime(2025, 3, 10, tzinfo=UTC)


def _export_job(archive: Archive, org: Organisation, job_id: str, start: datetime) -> None:
    """Archive one export window the way the flow does: lines → converter → staged job."""
    lines = list(org.export_items(start, start + timedelta(days=14)))
    job = archive.stage_job(job_id, window_start=start, window_end=start + timedelta(days=14))
    customers_file = job.download_dir / "customers.jsonl"
    customers = org.export_customers({line["customerId"] for line in lines})
    customers_file.write_text("".join(json.dumps(c) + "\n" for c in customers))
    quarantined: list[QuarantinedLine] = []
    raw = [json.dumps(line).encode() for line in lines] + [b"{not json"]
    job.write_items(
        convert_items_lines(raw, job_id=job_id, archived_at=NOW, on_quarantine=quarantined.append)
    )
    job.write_customers(convert_customers_file(customers_file, job_id=job_id, archived_at=NOW))
    job.write_quarantine("conversation_items.jsonl", quarantined)
    job.commit()


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two overlapping export windows of a small synthetic org, plus an uncommitted job."""
    root = tmp_path_factory.mktemp("archive")
    org = Organisation(OrgSpec(customers=40, now=NOW, years=0.1), SandboxClock(NOW, frozen=True))
    archive = Archive.open(root)
    _export_job(archive, org, "J1", NOW - timedelta(days=21))
    _export_job(archive, org, "J2", NOW - timedelta(days=14))  # overlaps J1 by a week
    # Work in progress: staged Parquet files that no reader may see.
    staged = archive.stage_job("J3")
    lines = [json.dumps(line).encode() for line in org.export_items(NOW - timedelta(days=7), NOW)]
    staged.write_items(convert_items_lines(lines, job_id="J3", archived_at=NOW))
    assert list((root / "_staging" / "J3").rglob("*.parquet"))
    return root


def test_every_engine_counts_the_same_items(archive_root: Path) -> None:
    archive = Archive(archive_root)
    items = archive.dataset("items").to_table()
    expected = items.num_rows
    assert expected > 100
    assert len(pc.unique(items["item_id"])) == expected  # the overlap was deduplicated
    glob = str(archive_root / "items" / "**" / "*.parquet")
    duck = duckdb.execute(
        "select count(*), count(distinct item_id) from read_parquet(?, hive_partitioning=true)",
        [glob],
    )
    assert duck.fetchone() == (expected, expected)
    assert len(pd.read_parquet(archive_root / "items")) == expected
    assert (
        pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item() == expected
    )


def test_engines_see_the_date_partition_column(archive_root: Path) -> None:
    glob = str(archive_root / "items" / "**" / "*.parquet")
    mismatched = duckdb.execute(
        "select count(*) from read_parquet(?, hive_partitioning=true) "
        "where cast(timezone('UTC', timestamp) as date) <> date",
        [glob],
    ).fetchone()
    assert mismatched == (0,)
    frame = pd.read_parquet(archive_root / "items", columns=["item_id", "date"])
    assert frame["date"].notna().all()
    dates = pl.scan_parquet(glob, hive_partitioning=True).select("date").collect()
    assert dates["date"].null_count() == 0


@pytest.mark.parametrize(
    "dataset", ["transcripts", "customers", "_quarantine", "_manifest", "_index/customer_files"]
)
def test_every_engine_counts_the_same_rows_of_other_datasets(
    archive_root: Path, dataset: str
) -> None:
    expected = Archive(archive_root).dataset(dataset).count_rows()
    assert expected > 0
    glob = str(archive_root / dataset / "**" / "*.parquet")
    duck = duckdb.execute("select count(*) from read_parquet(?, hive_partitioning=true)", [glob])
    assert duck.fetchone() == (expected,)
    assert len(pd.read_parquet(archive_root / dataset)) == expected
    assert (
        pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item() == expected
    )


def test_transcripts_have_one_row_per_conversation(archive_root: Path) -> None:
    archive = Archive(archive_root)
    conversations = archive.dataset("items").to_table(columns=["conversation_id"])
    distinct = pc.count_distinct(conversations["conversation_id"]).as_py()
    transcripts = archive.dataset("transcripts").to_table(columns=["conversation_id"])
    assert transcripts.num_rows == distinct
    assert pc.count_distinct(transcripts["conversation_id"]).as_py() == distinct


def test_staging_and_bookkeeping_never_reach_the_data_globs(archive_root: Path) -> None:
    archive = Archive(archive_root)
    jobs = archive.dataset("items").to_table(columns=["job_id"])
    assert set(pc.unique(jobs["job_id"]).to_pylist()) == {"J1", "J2"}
    everything = str(archive_root / "items" / "**" / "*.parquet")
    files = duckdb.execute(
        "select distinct filename from read_parquet(?, filename=true)", [everything]
    )
    assert all("/_" not in name and "/." not in name for (name,) in files.fetchall())
    assert archive.read_manifest()["job_id"].to_pylist() == ["J1", "J2"]
