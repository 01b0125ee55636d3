"""Folding: older rows move into per-customer buckets, exactly once, crash or no crash; commits
and purges keep working across both tiers; every reader still reads the archive."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import gladly_archive.fold as fold_module
from gladly_archive.archive import Archive
from gladly_archive.fold import FOLD_PHASE, choose_buckets, fold_archive, fold_due
from gladly_archive.layout import (
    FOLDED_DATASETS,
    OldLayoutError,
    customer_bucket,
    folded_dir,
    read_layout,
    validate_job_id,
)
from gladly_archive.purge import purge_customers
from gladly_archive.schemas import SCHEMA_VERSION
from tests._progress import ProgressLog
from tests.gladly_archive.test_archive import T0, archive_job, fixed_clock, item, items_table
from tests.gladly_archive.test_purge import (
    A,
    B,
    C,
    build,
    files,
    holds,
    rows,
    tables,
    without,
)

PARTIAL = date(2025, 3, 4)  # items of days 1-4 and conversations ended by then fold
ALL = date(2025, 3, 31)  # everything folds, customers and enrichment too
BUCKETS = 4


class Crash(Exception):
    """Stands in for the process dying at a hook point."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    build(root)
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "archive"
    shutil.copytree(built, copy)
    return copy


def data_rows(archive: Archive) -> dict[str, list[dict[str, Any]]]:
    """Every dataset's rows in a stable order (the index, which names files, left out)."""
    return {
        name: rows(table)
        for name, table in tables(archive).items()
        if name != "_index/customer_files"
    }


def folded_files(root: Path, dataset: str) -> list[Path]:
    return sorted((root / dataset / folded_dir(dataset)).rglob("*.parquet"))


@pytest.mark.parametrize("through", [PARTIAL, ALL])
def test_a_fold_keeps_every_row_exactly_once(root: Path, through: date) -> None:
    archive = Archive(root, clock=fixed_clock)
    before = data_rows(archive)
    report = fold_archive(archive, through, buckets=BUCKETS)
    assert data_rows(archive) == before
    assert report.buckets == BUCKETS
    assert sum(report.rows_folded.values()) > 0
    assert read_layout(archive.fs, archive.root).folded_through == through
    # Nothing left in staging, no temporary files.
    assert not [p for p in (root / "_staging").rglob("*") if p.is_file() and p.name != ".lock"]
    assert not [p for p in root.rglob(".*.parquet*")]


def test_progress_counts_each_dataset_then_the_commit(root: Path) -> None:
    progress = ProgressLog()
    fold_archive(Archive(root, clock=fixed_clock), ALL, buckets=BUCKETS, progress=progress)
    (run,) = progress.runs(FOLD_PHASE)
    steps = len(FOLDED_DATASETS) + 1
    assert run == [(done, steps) for done in range(steps + 1)]
    assert progress.phases() == [FOLD_PHASE]


def test_folded_rows_sit_in_one_file_per_customer_in_time_order(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, ALL, buckets=BUCKETS)
    for dataset in FOLDED_DATASETS:
        paths = folded_files(root, dataset)
        assert paths, dataset
        where: dict[str, set[Path]] = {}
        for path in paths:
            table = pq.read_table(path)
            bucket = int(path.parent.name)
            assert set(customer_bucket(table["customer_id"], BUCKETS).tolist()) == {bucket}
            for customer in table["customer_id"].to_pylist():
                where.setdefault(customer, set()).add(path)
            order = {"items": "timestamp", "transcripts": "first_timestamp"}.get(dataset)
            if order:
                stamps = table[order].to_pylist()
                assert stamps == sorted(stamps), path
        assert all(len(p) == 1 for p in where.values()), dataset
    # Everything was old enough: the recent tier is empty.
    assert not [p for p in (root / "items").rglob("*.parquet") if "folded" not in p.parts]
    assert not (root / "customers" / "job-J1").exists() or not list(
        (root / "customers" / "job-J1").glob("*.parquet")
    )


def test_a_partial_fold_leaves_recent_days_and_open_conversations_in_place(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    recent = sorted(p.name for p in (root / "items").iterdir() if p.name != "folded")
    assert recent == ["2025-03-05", "2025-03-06"]  # the days after the cut-off
    folded = pa.concat_tables(pq.read_table(p) for p in folded_files(root, "items"))
    assert max(folded["date"].to_pylist()) <= PARTIAL
    shards = [p for p in (root / "transcripts").rglob("*.parquet") if "folded" not in p.parts]
    left = pa.concat_tables(pq.read_table(p) for p in shards)
    assert sorted(left["conversation_id"].to_pylist()) == ["v6", "v7", "v8"]  # active after
    # Customers (archived on 2025-03-05) and enrichment (fetched 2025-03-20) are recent.
    assert not folded_files(root, "customers")
    assert not folded_files(root, "conversations")


def test_the_index_lists_exactly_the_customers_of_every_file(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    index = archive.dataset("_index/customer_files").to_table()
    listed: dict[str, set[str]] = {}
    for customer, path in zip(
        index["customer_id"].to_pylist(), index["path"].to_pylist(), strict=True
    ):
        listed.setdefault(path, set()).add(customer)
    actual = {
        str(p.relative_to(root)): set(pq.read_table(p)["customer_id"].to_pylist())
        for dataset in ("items", "customers", "transcripts")
        for p in (root / dataset).rglob("*.parquet")
    }
    assert listed == actual


def test_a_second_fold_keeps_the_bucket_count(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    with pytest.raises(ValueError, match="folded into 4 buckets"):
        fold_archive(archive, ALL, buckets=8)
    before = data_rows(archive)
    report = fold_archive(archive, ALL)
    assert report.buckets == BUCKETS
    assert data_rows(archive) == before
    assert read_layout(archive.fs, archive.root).folded_through == ALL
    # Folding what is already folded changes nothing.
    snapshot = files(root)
    fold_archive(archive, ALL)
    assert files(root) == snapshot


def test_bucket_count_follows_the_number_of_customers() -> None:
    assert choose_buckets(0) == 4
    assert choose_buckets(2_000) == 4
    assert choose_buckets(100_000) == 256
    assert choose_buckets(1_000_000) == 2048
    assert choose_buckets(100_000_000) == 4096
    with pytest.raises(ValueError, match="power of two"):
        fold_archive(Archive("/nonexistent-never-created"), ALL, buckets=3)


def test_a_fold_is_due_once_the_recent_tier_outgrows_two_months(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    oldest = date(2025, 3, 1)
    assert fold_due(archive, oldest + timedelta(days=61)) is None
    assert fold_due(archive, oldest + timedelta(days=62)) == oldest + timedelta(days=31)
    fold_archive(archive, ALL, buckets=BUCKETS)
    assert fold_due(archive, date(2026, 1, 1)) is None  # nothing recent left


def test_an_old_item_exported_again_replaces_its_folded_copy(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    job = archive.stage_job("J3")
    job.write_items(items_table([item("i1", "v1", A, T0, text="edited", job_id="J3")]).to_batches())
    result = job.commit()
    assert result.duplicates_replaced == 1
    texts = archive.dataset("items").to_table(columns=["item_id", "text"]).to_pylist()
    assert [r["text"] for r in texts if r["item_id"] == "i1"] == ["edited"]
    transcripts = archive.dataset("transcripts").to_table()
    v1 = [r for r in transcripts.to_pylist() if r["conversation_id"] == "v1"]
    assert len(v1) == 1
    assert v1[0]["item_count"] == 3
    assert "Customer · edited" in v1[0]["transcript"]
    ids = transcripts["conversation_id"].to_pylist()
    assert len(ids) == len(set(ids))


def test_a_new_item_in_a_folded_conversation_rebuilds_it_once(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    later = T0 + timedelta(days=9)
    job = archive.stage_job("J4")
    job.write_items(items_table([item("i40", "v2", B, later, text="back again")]).to_batches())
    job.commit()
    transcripts = archive.dataset("transcripts").to_table().to_pylist()
    v2 = [r for r in transcripts if r["conversation_id"] == "v2"]
    assert len(v2) == 1
    assert v2[0]["item_count"] == 2
    assert v2[0]["first_timestamp"] == T0
    assert v2[0]["last_timestamp"] == later
    ids = [r["conversation_id"] for r in transcripts]
    assert len(ids) == len(set(ids))


def test_an_item_exported_again_under_a_merged_customer_replaces_its_folded_copy(
    root: Path,
) -> None:
    # Gladly merged B into C: the re-exported item names C, while the folded copy sits in
    # B's bucket. The copy is found by item id, wherever it is.
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    job = archive.stage_job("J5")
    job.write_items(items_table([item("i4", "v2", C, T0, text="merged", job_id="J5")]).to_batches())
    assert job.commit().duplicates_replaced == 1
    items = archive.dataset("items").to_table().to_pylist()
    assert [(r["customer_id"], r["text"]) for r in items if r["item_id"] == "i4"] == [(C, "merged")]
    transcripts = archive.dataset("transcripts").to_table().to_pylist()
    v2 = [r for r in transcripts if r["conversation_id"] == "v2"]
    assert [(r["customer_id"], r["item_count"]) for r in v2] == [(C, 1)]


@pytest.mark.parametrize("through", [PARTIAL, ALL])
def test_a_purge_after_a_fold_removes_exactly_the_customer(root: Path, through: date) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, through, buckets=BUCKETS)
    before = tables(archive)
    snapshot = files(root)
    holding = {p for p in snapshot if holds(root / p, A)}
    purge_customers(archive, [A])
    after = tables(archive)
    for name in ("items", "customers", "conversations", "customer_profiles"):
        assert rows(after[name]) == rows(without(before[name], A)), name
    assert not [p for p in root.rglob("*.parquet") if holds(p, A)]
    transcripts = {r["conversation_id"]: r for r in after["transcripts"].to_pylist()}
    assert set(transcripts) == {"v2", "v3", "v5", "v7", "v8", "m1", "m2"}
    assert transcripts["m2"]["customer_id"] == B
    assert transcripts["m2"]["item_count"] == 1
    # Folded files that never held A were not touched.
    after_files = files(root)
    for path, stamp in snapshot.items():
        if "folded" in path and path not in holding and not path.startswith("transcripts/"):
            assert after_files.get(path) == stamp, path


def test_a_fold_killed_anywhere_leaves_each_row_once_and_a_rerun_finishes(
    built: Path, tmp_path: Path
) -> None:
    points: list[str] = []
    probe = tmp_path / "probe"
    shutil.copytree(built, probe)
    fold_archive(Archive(probe, clock=fixed_clock, crash_hook=points.append), PARTIAL)
    assert any(p.startswith("fold:staged") for p in points)
    assert "fold:intent_written" in points
    assert any(p.startswith("deleted:") for p in points)
    reference = data_rows(Archive(probe))
    for number, point in enumerate(points):
        root = tmp_path / f"crash-{number}"
        shutil.copytree(built, root)

        def crash(at: str, point: str = point) -> None:
            if at == point:
                raise Crash(point)

        with pytest.raises(Crash):
            fold_archive(Archive(root, clock=fixed_clock, crash_hook=crash), PARTIAL)
        recovered = Archive.open(root, clock=fixed_clock)
        assert data_rows(recovered) == reference, point
        fold_archive(recovered, PARTIAL)
        assert data_rows(recovered) == reference, point
        assert not folded_files(root, "items") or (root / "items" / "2025-03-06").exists()


def test_every_reader_reads_both_tiers_with_a_date_column(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    fold_archive(archive, PARTIAL, buckets=BUCKETS)
    expected = archive.dataset("items").to_table().num_rows
    glob = str(root / "items" / "**" / "*.parquet")
    for hive in (True, False):
        got = duckdb.execute(
            "SELECT count(*), min(date), max(date) FROM read_parquet(?, hive_partitioning = ?)",
            [glob, hive],
        ).fetchone()
        assert got == (expected, date(2025, 3, 1), date(2025, 3, 6))
    customers = str(root / "customers" / "**" / "*.parquet")
    count = duckdb.execute(
        "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)", [customers]
    ).fetchone()
    assert count == (archive.dataset("customers").to_table().num_rows,)
    frame = pd.read_parquet(root / "items", columns=["item_id", "date"])
    assert len(frame) == expected
    assert pl.scan_parquet(glob).select(pl.len()).collect().item() == expected
    days = archive.dataset("items").to_table(filter=pc.field("date") == date(2025, 3, 2))
    assert sorted(days["item_id"].to_pylist()) == ["i10", "i3", "i9"]


def test_folded_is_not_a_job_id() -> None:
    with pytest.raises(ValueError, match="reserved"):
        validate_job_id("folded")


def test_layout_file_is_plain_json(root: Path) -> None:
    fold_archive(Archive(root, clock=fixed_clock), PARTIAL, buckets=BUCKETS)
    body = json.loads((root / "_layout.json").read_text())
    assert body == {
        "version": 1,
        "buckets": BUCKETS,
        "folded_through": "2025-03-04",
        "schema_version": SCHEMA_VERSION,
    }


def test_an_archive_of_the_earlier_layout_is_refused_clearly(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "items" / "date=2025-03-01").mkdir(parents=True)
    pq.write_table(
        items_table([item("i1", "v1", A, T0)]).drop_columns(["date"]),
        old / "items" / "date=2025-03-01" / "part-0.parquet",
    )
    for attempt in (
        lambda: Archive.open(old),
        lambda: Archive(old).dataset("items"),
        lambda: fold_archive(Archive(old), ALL),
        lambda: purge_customers(Archive(old), [A]),
    ):
        with pytest.raises(OldLayoutError, match=r"earlier release.*items/date=2025-03-01"):
            attempt()
    assert sorted(p.name for p in (old / "items").iterdir()) == ["date=2025-03-01"]


def test_a_fold_works_on_a_non_local_filesystem() -> None:
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    archive = Archive.open("archive", filesystem=fs, clock=fixed_clock)
    rows = [item("i1", "v1", A, T0), item("i2", "v2", B, T0 + timedelta(days=40))]
    job = archive.stage_job("J1")
    job.write_items(items_table(rows).to_batches())
    job.commit()
    report = fold_archive(archive, date(2025, 3, 10), buckets=BUCKETS)
    assert report.rows_folded["items"] == 1
    items = archive.dataset("items").to_table(columns=["item_id", "date"]).to_pylist()
    assert sorted(r["item_id"] for r in items) == ["i1", "i2"]
    listed = fs.get_file_info(pafs.FileSelector("archive/items", recursive=True))
    assert any("/folded/" in i.path for i in listed)
    assert not any(i.path.endswith("2025-03-01") for i in listed)


def test_small_batches_are_gathered_up_to_the_limits_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fold_module, "_GATHER_ROWS", 10)
    files = [[pa.record_batch({"n": list(range(start, start + 3))}) for start in (f, f + 3)]
             for f in range(0, 60, 6)]  # fmt: skip
    gathered = list(fold_module._gathered(iter(iter(batches) for batches in files)))
    assert [b.num_rows for b in gathered] == [9, 9, 9, 9, 9, 9, 6]
    assert [n for b in gathered for n in b.column("n").to_pylist()] == list(range(60))
    monkeypatch.setattr(fold_module, "_GATHER_BYTES", 1)
    assert [b.num_rows for b in fold_module._gathered(iter(files[:1]))] == [3, 3]


def test_the_first_fold_counts_customers_from_the_customer_file_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    rows = [item(f"i{n}", f"c{n}", f"u{n % 7}", T0 + timedelta(days=n % 5)) for n in range(40)]
    archive_job(archive, "J1", rows)
    read: list[str] = []
    real = fold_module.pq.read_table

    def recorded(path: str, *args: Any, **kw: Any) -> pa.Table:
        read.append(path)
        return real(path, *args, **kw)

    monkeypatch.setattr(fold_module.pq, "read_table", recorded)
    assert fold_module._count_customers(archive) == 7
    assert read
    assert all("/_index/" in p for p in read), "only the index was read"
    shutil.rmtree(tmp_path / "_index")
    read.clear()
    assert fold_module._count_customers(archive) == 7, "without an index: every file"
    assert any("/items/" in p for p in read)


def _folded_contents(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Each folded file's rows in file order, by dataset and bucket."""
    return {
        f"{dataset}/{path.parent.name}": pq.read_table(path).drop_columns(["job_id"]).to_pylist()
        if "job_id" in pq.read_schema(path).names
        else pq.read_table(path).to_pylist()
        for dataset in FOLDED_DATASETS
        for path in folded_files(root, dataset)
    }


def test_files_read_ahead_and_buckets_written_two_at_a_time_fold_as_one_at_a_time(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default: small files read ahead on threads, buckets written two at a time.
    ahead = tmp_path / "ahead"
    shutil.copytree(built, ahead)
    fold_archive(Archive(ahead, clock=fixed_clock), ALL, buckets=BUCKETS)
    # One file after the other, each a batch at a time (as a file too big to read whole is),
    # and one bucket at a time.
    monkeypatch.setattr(fold_module, "_READ_WHOLE_BYTES", 0)
    monkeypatch.setattr(fold_module, "_BUCKET_WRITERS", 1)
    serial = tmp_path / "serial"
    shutil.copytree(built, serial)
    fold_archive(Archive(serial, clock=fixed_clock), ALL, buckets=BUCKETS)
    got, expected = _folded_contents(ahead), _folded_contents(serial)
    assert len(expected) >= BUCKETS
    assert got == expected  # the same rows, in the same order, in the same buckets
    assert data_rows(Archive(ahead)) == data_rows(Archive(built))  # and every row once


def test_a_bucket_write_that_fails_fails_the_fold_and_leaves_the_archive_as_it_was(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(root, clock=fixed_clock)
    before = data_rows(archive)
    real = fold_module._Fold._write_bucket
    calls = []

    def failing(self: Any, dataset: str, partition: str, *rest: Any) -> None:
        calls.append(partition)
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, dataset, partition, *rest)

    monkeypatch.setattr(fold_module._Fold, "_write_bucket", failing)
    with pytest.raises(OSError, match="disk full"):
        fold_archive(archive, ALL, buckets=BUCKETS)
    monkeypatch.undo()
    recovered = Archive.open(root, clock=fixed_clock)
    assert data_rows(recovered) == before
    assert not folded_files(root, "items")
    fold_archive(recovered, ALL, buckets=BUCKETS)
    assert data_rows(recovered) == before
