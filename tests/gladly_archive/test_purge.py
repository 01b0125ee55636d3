"""purge_customers: exactly the customers' rows go, untouched files stay, crashes converge."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gladly_archive.archive import Archive
from gladly_archive.convert import QuarantinedLine
from gladly_archive.enrichment import append_snapshot
from gladly_archive.fs import ArchiveLockedError
from gladly_archive.purge import PURGED_DATASETS, purge_customers, purge_phase, still_listed
from gladly_archive.schemas import CONVERSATIONS, CUSTOMER_PROFILES
from gladly_archive.tombstones import read_tombstones, write_tombstones
from tests._progress import ProgressLog
from tests.gladly_archive.test_archive import T0, customers_table, fixed_clock, item, items_table

# A is purged; A10 holds A's id inside its own (a quarantined line naming A10 must stay).
A, B, C, A10 = "cA1", "cB2", "cC3", "cA10"
DAY = timedelta(days=1)
FETCHED = datetime(2025, 3, 20, tzinfo=UTC)
DATASETS = ("items", "customers", "transcripts", "conversations", "customer_profiles")
DATASETS_ALL = (*DATASETS, "_quarantine", "_index/customer_files")


class Crash(Exception):
    """Stands in for the process dying at a hook point."""


def said(customer: str, n: int) -> str:
    """An item text that names its customer, so a transcript line can be traced back."""
    return f"words of {customer} number {n}"


def build(root: Path) -> None:
    """Two jobs and two enrichment runs: A alone, A with others, A sharing conversations."""
    archive = Archive.open(root, clock=fixed_clock)
    rows = [
        item("i1", "v1", A, T0, text=said(A, 1)),
        item("i2", "v1", A, T0 + timedelta(hours=1), text=said(A, 2)),
        item("i3", "v1", A, T0 + DAY, text=said(A, 3)),  # v1 spans two days
        item("i4", "v2", B, T0, text=said(B, 4)),
        item("i5", "v3", C, T0 + 2 * DAY, text=said(C, 5)),
        item("i6", "v4", A, T0 + 3 * DAY, text=said(A, 6)),  # A alone on day 3
        item("i7", "m1", A, T0 + timedelta(hours=2), text=said(A, 7)),  # m1: A, then B
        item("i8", "m1", B, T0 + timedelta(hours=3), text=said(B, 8)),
        item("i9", "m2", B, T0 + DAY, text=said(B, 9)),  # m2: B, then A (A's row)
        item("i10", "m2", A, T0 + DAY + timedelta(hours=1), text=said(A, 10)),
        item("i11", None, A, T0 + 2 * DAY, content_type="CUSTOMER_ACTIVITY", text=said(A, 11)),
        item("i12", "v5", A10, T0 + 2 * DAY, text=said(A10, 12)),
        item("i13", "v8", C, T0 + 5 * DAY, text=said(C, 13)),  # day 5: no A
    ]
    job = archive.stage_job("J1")
    job.write_items(items_table(rows).to_batches())
    job.write_customers(customers_table([A, B, C, A10], "J1").to_batches())
    job.write_quarantine(
        "conversation_items.jsonl",
        [
            QuarantinedLine(3, "bad JSON", f'{{"customerId":"{A}","content":{{"body":"x'.encode()),
            QuarantinedLine(4, "bad JSON", f'{{"customerId":"{A10}","co'.encode()),
            QuarantinedLine(5, "bad JSON", b"\x00garbage"),
        ],
    )
    job.commit()
    job = archive.stage_job("J2")
    later = [
        item("i20", "v6", A, T0 + 4 * DAY, text=said(A, 20), job_id="J2"),
        item("i21", "v7", B, T0 + 4 * DAY, text=said(B, 21), job_id="J2"),
    ]
    job.write_items(items_table(later).to_batches())
    job.write_customers(customers_table([A, B], "J2").to_batches())
    job.commit()
    conversations = [
        {"conversation_id": c, "customer_id": u, "status": "CLOSED", "fetched_at": FETCHED}
        for c, u in (("v1", A), ("v2", B), ("m1", B), ("m2", A), ("v3", C))
    ]
    append_snapshot(
        archive,
        "conversations",
        pa.Table.from_pylist(conversations, schema=CONVERSATIONS),
        run_id="r1",
    )
    profiles = [
        {"customer_id": u, "custom_attributes_json": "{}", "fetched_at": FETCHED}
        for u in (A, B, C, A10)
    ]
    table = pa.Table.from_pylist(profiles, schema=CUSTOMER_PROFILES)
    append_snapshot(archive, "customer_profiles", table, run_id="r1")
    append_snapshot(archive, "customer_profiles", table.slice(2, 1), run_id="r2")  # C only


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario archive, built once; tests work on copies."""
    root = tmp_path_factory.mktemp("built")
    build(root)
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the scenario archive."""
    copy = tmp_path / "archive"
    shutil.copytree(built, copy)
    return copy


def tables(archive: Archive) -> dict[str, pa.Table]:
    """Every purged dataset read whole."""
    return {name: archive.dataset(name).to_table() for name in DATASETS_ALL}


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """A table's rows in a stable order, for exact comparison."""
    return sorted(table.to_pylist(), key=repr)


def without(table: pa.Table, customer: str) -> pa.Table:
    """The table minus a customer's rows."""
    return table.filter(pc.not_equal(table["customer_id"], customer))


def files(root: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every Parquet file, by relative path."""
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*.parquet")
    }


def holds(path: Path, customer: str) -> bool:
    """True if a Parquet file has a row of the customer (by id column or raw line)."""
    table = pq.read_table(path)
    if "customer_id" in table.column_names:
        return bool(pc.any(pc.equal(table["customer_id"], customer)).as_py())
    if "raw_line" in table.column_names:
        return any(f'"{customer}"'.encode() in line for line in table["raw_line"].to_pylist())
    return False


def snapshot(archive: Archive) -> dict[str, list[dict[str, Any]]]:
    """Every purged dataset's rows, in a stable order."""
    return {name: rows(table) for name, table in tables(archive).items()}


def test_exactly_the_customers_rows_disappear_from_every_dataset(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    before = tables(archive)
    report = purge_customers(archive, [A])
    after = tables(archive)

    for name in ("items", "customers", "conversations", "customer_profiles"):
        assert rows(after[name]) == rows(without(before[name], A)), name
    # Transcripts: A's own conversations go; the shared ones are rebuilt from B's items only.
    shared = ["m1", "m2"]
    keep = pc.invert(pc.is_in(before["transcripts"]["conversation_id"], pa.array(shared)))
    kept = without(before["transcripts"].filter(keep), A)
    after_kept = after["transcripts"].filter(
        pc.invert(pc.is_in(after["transcripts"]["conversation_id"], pa.array(shared)))
    )
    assert rows(after_kept) == rows(kept)
    rebuilt = {r["conversation_id"]: r for r in after["transcripts"].to_pylist()}
    assert rebuilt["m1"]["customer_id"] == B
    assert rebuilt["m1"]["item_count"] == 1
    assert rebuilt["m1"]["transcript"] == f"2025-03-01T13:00:00Z · Chat · Customer · {said(B, 8)}"
    assert rebuilt["m2"]["customer_id"] == B
    assert rebuilt["m2"]["item_count"] == 1
    assert rebuilt["m2"]["transcript"] == f"2025-03-02T10:00:00Z · Chat · Customer · {said(B, 9)}"
    assert not [t for t in after["transcripts"]["transcript"].to_pylist() if f"of {A} " in t]
    # Quarantine: the line naming A goes; the one naming A10 (which contains A's id) stays.
    assert sorted(after["_quarantine"]["line_number"].to_pylist()) == [4, 5]
    # Index: A is gone; every row points at a file that exists; B is listed where m2 moved.
    index = after["_index/customer_files"]
    assert A not in index["customer_id"].to_pylist()
    assert all((root / p).is_file() for p in index["path"].to_pylist())
    listed = set(zip(index["customer_id"].to_pylist(), index["path"].to_pylist(), strict=True))
    assert any(c == B and p.startswith("transcripts/recent/") for c, p in listed)
    # Nowhere in the archive is a row of A left.
    assert not [p for p in root.rglob("*.parquet") if holds(p, A)]

    removed = {name: before[name].num_rows - after[name].num_rows for name in DATASETS_ALL}
    assert report.customers == 1
    assert report.rows_removed["items"] == removed["items"] == 8
    assert report.rows_removed["customers"] == removed["customers"] == 2
    assert report.rows_removed["transcripts"] == removed["transcripts"] == 3  # v1, v4, v6
    assert report.rows_removed["conversations"] == removed["conversations"] == 2
    assert report.rows_removed["customer_profiles"] == removed["customer_profiles"] == 1
    assert report.rows_removed["_quarantine"] == 1
    assert set(report.rows_removed) == set(PURGED_DATASETS)
    assert report.files_deleted["items"] == 1  # day 3 held only A
    assert report.seconds > 0


def test_progress_counts_each_datasets_files_up_to_those_it_visits(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    progress = ProgressLog()
    report = purge_customers(archive, [A], progress=progress)
    order = ("transcripts", "items", "customers", "conversations", "customer_profiles")
    assert progress.phases() == [purge_phase(d) for d in (*order, *DATASETS_ALL[-2:])]
    # A file found holding the customer is rewritten or deleted; every quarantine file is read.
    for dataset in (*order, "_index/customer_files"):
        changed = report.files_rewritten[dataset] + report.files_deleted[dataset]
        assert changed > 0
        assert progress.final(purge_phase(dataset)) == changed, dataset
    quarantined = list((root / "_quarantine").rglob("*.parquet"))
    assert progress.final(purge_phase("_quarantine")) == len(quarantined) > 0
    assert not [p for p in progress.phases() if A in p]
    # Ids the archive does not hold: only the quarantine is searched (raw lines have no index).
    again = ProgressLog()
    purge_customers(archive, ["nobody"], progress=again)
    assert again.phases() == [purge_phase("_quarantine")]
    none = ProgressLog()
    purge_customers(archive, [], progress=none)
    assert none.calls == []


def test_untouched_files_are_not_rewritten(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    # C alone: a transcript file of the recent tier without A's rows.
    job = archive.stage_job("JC")
    job.write_items(
        items_table(
            [item("i40", "v10", C, T0 + 6 * DAY, text=said(C, 40), job_id="JC")]
        ).to_batches()
    )
    job.commit()
    before = files(root)
    # What must change: files holding A, and the transcript file of m1 (B's row, A's lines).
    changing = {p for p in before if holds(root / p, A)}
    changing |= {
        p
        for p in before
        if p.startswith("transcripts/")
        and "m1" in pq.read_table(root / p)["conversation_id"].to_pylist()
    }
    untouched = set(before) - changing
    assert any(p.startswith("items/2025-03-06/") for p in untouched)  # day 5: no A
    assert any(p.startswith("transcripts/") for p in untouched)
    assert any(p.startswith("customer_profiles/run-r2/") for p in untouched)
    purge_customers(archive, [A])
    after = files(root)
    for path in untouched:
        assert after[path] == before[path], path
    for path in changing:
        assert path not in after or after[path] != before[path], path


def test_unknown_and_already_purged_customers_are_a_no_op(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    before = files(root)
    report = purge_customers(archive, ["nobody", "", "nobody"])
    assert files(root) == before
    assert report.customers == 1
    assert not any(report.rows_removed.values())
    assert not any(report.files_rewritten.values())
    assert not any(report.files_deleted.values())

    purge_customers(archive, [A])
    once = files(root)
    again = purge_customers(archive, [A])
    assert files(root) == once
    assert not any(again.rows_removed.values())


def test_rewritten_files_keep_schema_metadata_compression_and_row_groups(root: Path) -> None:
    path = root / "items/2025-03-01/part-J1-0.parquet"
    old = pq.ParquetFile(path)
    old_schema, old_groups = old.schema_arrow, old.metadata.num_row_groups
    old_codec = old.metadata.row_group(0).column(0).compression
    purge_customers(Archive(root), [A])
    new = pq.ParquetFile(path)
    assert new.schema_arrow.equals(old_schema, check_metadata=True)
    assert new.metadata.num_row_groups == old_groups
    assert {
        new.metadata.row_group(0).column(n).compression for n in range(new.metadata.num_columns)
    } == {old_codec}


def test_readers_still_work_after_a_purge(root: Path) -> None:
    purge_customers(Archive(root), [A, C])
    dataset = ds.dataset(root / "items", format="parquet", partitioning="hive")
    table = dataset.to_table(filter=ds.field("date") == date(2025, 3, 1))
    assert sorted(table["item_id"].to_pylist()) == ["i4", "i8"]
    assert set(Archive(root).dataset("items").to_table()["customer_id"].to_pylist()) == {B, A10}
    assert not [p for p in root.rglob("*") if p.name.startswith(".") and p.name != ".lock"]


@pytest.fixture(scope="module")
def reference(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[str]]:
    """The uninterrupted purge's result and the hook points it passes."""
    root = tmp_path_factory.mktemp("reference") / "archive"
    shutil.copytree(built, root)
    points: list[str] = []
    purge_customers(Archive(root, crash_hook=points.append, clock=fixed_clock), [A])
    return snapshot(Archive(root)), points


def _hidden(root: Path) -> list[Path]:
    """Hidden files (temporaries) under root, but the lock file."""
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.name != ".lock"]


def test_a_crash_after_any_file_then_a_rerun_converges(
    built: Path, tmp_path: Path, reference: tuple[Any, list[str]]
) -> None:
    expected, points = reference
    assert len(points) >= 10  # every dataset's files, one point after each
    for number, point in enumerate(points):
        root = tmp_path / f"crash-{number}"
        shutil.copytree(built, root)

        def crash(at: str, point: str = point) -> None:
            if at == point:
                raise Crash(at)

        with pytest.raises(Crash):
            purge_customers(Archive(root, crash_hook=crash, clock=fixed_clock), [A])
        # Interrupted: readers see whole files only. A key file's temporary (killed between
        # it and its rename) is hidden from readers, and the next writer removes it.
        Archive(root).dataset("items").to_table()
        assert not [p for p in _hidden(root) if p.parent.name != "_index"], point
        purge_customers(Archive(root, clock=fixed_clock), [A])
        assert not _hidden(root), point
        assert snapshot(Archive(root)) == expected, point
        assert not [p for p in root.rglob("*.parquet") if holds(p, A)], point


_CHILD = """
import os, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from gladly_archive.archive import Archive
from gladly_archive.purge import purge_customers
from tests.gladly_archive.test_archive import fixed_clock
def hook(reached):
    if reached.endswith(":" + sys.argv[2]):
        os._exit(137)
purge_customers(Archive(Path(sys.argv[1]), crash_hook=hook, clock=fixed_clock), [sys.argv[3]])
"""


def test_a_killed_purge_converges_on_rerun(root: Path, reference: tuple[Any, list[str]]) -> None:
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(repo=str(repo)), str(root), "6", A],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert child.returncode == 137, child.stderr
    # What a real kill leaves: the lock of a dead process, some files purged, others not.
    lock = root / "_staging" / ".lock"
    assert int(lock.read_text()) not in (0, os.getpid())
    assert [p for p in root.rglob("*.parquet") if holds(p, A)]
    report = purge_customers(Archive(root, clock=fixed_clock), [A])
    assert report.rows_removed["items"] > 0
    assert not lock.exists()
    assert snapshot(Archive(root)) == reference[0]


def test_a_purge_waits_for_no_one_while_another_writer_holds_the_lock(root: Path) -> None:
    archive = Archive(root)
    held = archive.lock()
    held.acquire()
    try:
        with pytest.raises(ArchiveLockedError):
            purge_customers(archive, [A])
    finally:
        held.release()
    assert holds(root / "items/2025-03-01/part-J1-0.parquet", A)


def test_an_interrupted_commit_is_finished_before_the_purge(root: Path) -> None:
    def crash(at: str) -> None:
        if at == "moved:1":
            raise Crash(at)

    archive = Archive(root, crash_hook=crash, clock=fixed_clock)
    job = archive.stage_job("J3")
    job.write_items(items_table([item("i30", "v9", A, T0 + 6 * DAY, job_id="J3")]).to_batches())
    with pytest.raises(Crash):
        job.commit()
    purge_customers(Archive(root, clock=fixed_clock), [A])
    recovered = Archive(root)
    assert recovered.archived_job_ids() == {"J1", "J2", "J3"}
    assert A not in recovered.dataset("items").to_table()["customer_id"].to_pylist()
    assert not [p for p in root.rglob("*.parquet") if holds(p, A)]


def test_not_purged_names_quarantine_matching_and_unknown_directories(root: Path) -> None:
    (root / "_facts" / "v2-abc").mkdir(parents=True)
    for by_design in ("_audit", "_evidence", "_plans"):
        (root / by_design).mkdir()
    tombstone = {"customer_id": A, "deleted_at": FETCHED, "plan_hash": "p" * 64}
    write_tombstones(Archive(root), [tombstone], run_id="R1")
    report = purge_customers(Archive(root), [A])
    # Tombstones are what must stay: the purge neither touches nor reports them.
    assert read_tombstones(Archive(root))["customer_id"].to_pylist() == [A]
    assert not any(n.startswith("tombstones") for n in report.not_purged)
    assert any(
        n.startswith("_quarantine: ") and "by customer id only" in n for n in report.not_purged
    )
    assert any(n.startswith("_facts: not an archive dataset") for n in report.not_purged)
    assert not any(n.startswith(("items", "agents", "_manifest")) for n in report.not_purged)
    # The audit log, evidence packs and plans hold ids and keyed hashes by design: no warning.
    assert not any(n.startswith(("_audit", "_evidence", "_plans")) for n in report.not_purged)


def test_logs_carry_ids_and_counts_never_personal_data(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="gladly_archive"):
        purge_customers(Archive(root, clock=fixed_clock), [A])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "purge: 1 customer(s)" in text
    for secret in ("@example.com", "Customer ", "words of", "customerId"):
        assert secret not in text


def test_several_customers_at_once_and_files_left_empty_are_unindexed(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    report = purge_customers(archive, [C, A])
    assert report.customers == 2
    assert not (root / "items/2025-03-06").exists() or not list(
        (root / "items/2025-03-06").glob("*.parquet")
    )
    index = archive.dataset("_index/customer_files").to_table()
    assert not {A, C} & set(index["customer_id"].to_pylist())
    assert all((root / p).is_file() for p in index["path"].to_pylist())
    assert os.listdir(root / "customers/job-J1")  # B and A10 remain


def test_still_listed_names_the_customers_the_index_holds_until_purged(root: Path) -> None:
    archive = Archive(root, clock=fixed_clock)
    assert still_listed(archive, [A, B, "nobody", ""]) == {A, B}
    purge_customers(archive, [A])
    assert still_listed(archive, [A, B]) == {B}
    assert still_listed(Archive(root / "missing"), [A]) == set()


def test_still_listed_reads_through_the_archive_filesystem() -> None:
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    archive = Archive.open("archive", filesystem=fs, clock=fixed_clock)
    job = archive.stage_job("J1")
    job.write_items(items_table([item("i1", "v1", A, T0)]).to_batches())
    job.commit()
    assert still_listed(archive, [A, B]) == {A}
