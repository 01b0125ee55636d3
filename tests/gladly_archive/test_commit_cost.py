"""A commit touches what its job touches: the recent transcript files holding the conversations
it continues, one new index file; not the rest of the recent tier, not the other index files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import gladly_archive.merge as merge
import gladly_archive.transcripts as transcripts
from gladly_archive.archive import Archive
from gladly_archive.transcripts import bucket_of, bucket_partition
from tests.gladly_archive.test_archive import T0, archive_job, fixed_clock, item

CONVERSATIONS = 240


def _words(seed: int) -> str:
    """Text that does not compress away."""
    return " ".join(f"{(seed * 7919 + k * 104729) % 99991:05d}" for k in range(60))


def files(root: Path, dataset: str) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / dataset).rglob("*.parquet")}


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recent transcript files of a few kilobytes, so that a test's shard holds many."""
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_FILE_BYTES", 1 << 10)
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_ROW_GROUP_BYTES", 1 << 10)
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 256)


def test_continuing_a_conversation_rewrites_only_the_file_holding_it(
    tmp_path: Path, small_files: None
) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    rows = [
        item(f"i{n}", f"c{n}", f"u{n % 40}", T0 + timedelta(minutes=n), text=_words(n))
        for n in range(CONVERSATIONS)
    ]
    archive_job(archive, "J1", rows)
    shard = bucket_partition(bucket_of("c7"))
    before = files(tmp_path, f"transcripts/{shard}")
    assert len(before) >= 3, "the shard is kept in several small files"
    holding = {
        p for p in before if "c7" in pq.read_table(tmp_path / p)["conversation_id"].to_pylist()
    }
    later = T0 + timedelta(days=1)
    archive_job(archive, "J2", [item("i-new", "c7", "u7", later, job_id="J2")])
    after = files(tmp_path, f"transcripts/{shard}")
    assert before - after == holding, "only the file holding c7 was replaced"
    table = archive.dataset("transcripts").to_table()
    ids = table["conversation_id"].to_pylist()
    assert sorted(ids) == sorted(f"c{n}" for n in range(CONVERSATIONS))
    c7 = [r for r in table.to_pylist() if r["conversation_id"] == "c7"]
    assert [r["item_count"] for r in c7] == [2]


def test_a_commit_writes_one_index_file_and_leaves_the_others(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0), item("i2", "c2", "u2", T0)])
    before = files(tmp_path, "_index")
    stamps = {p: (tmp_path / p).stat().st_mtime_ns for p in before}
    # J2 replaces J1's items file and rebuilds c1: files whose index rows go stale.
    later = T0 + timedelta(hours=1)
    archive_job(archive, "J2", [item("i1", "c1", "u1", T0, text="again", job_id="J2"),
                                item("i3", "c1", "u1", later, job_id="J2")])  # fmt: skip
    after = files(tmp_path, "_index")
    assert before < after
    assert len(after - before) == 1
    assert all((tmp_path / p).stat().st_mtime_ns == stamps[p] for p in before)


def _two_jobs(root: Path) -> list[dict[str, object]]:
    archive = Archive.open(root, clock=fixed_clock)
    first = [
        item(f"i{n}", f"c{n % 60}", f"u{n % 20}", T0 + timedelta(minutes=n), text=_words(n))
        for n in range(CONVERSATIONS)
    ]
    archive_job(archive, "J1", first)
    later = T0 + timedelta(days=1)
    second = [
        item(f"j{n}", f"c{n % 90}", f"u{n % 20}", later + timedelta(minutes=n), job_id="J2")
        for n in range(CONVERSATIONS)
    ]
    archive_job(archive, "J2", second)
    table = archive.dataset("transcripts").to_table().drop_columns(["built_at"])
    return sorted(table.to_pylist(), key=lambda r: str(r["conversation_id"]))


def test_a_big_job_rebuilt_a_group_of_shards_at_a_time_builds_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _two_jobs(tmp_path / "whole")
    calls: list[int] = []
    real = merge.CommitPlanner._rebuild_shards

    def counted(self: merge.CommitPlanner, shards: list[int], *args: object) -> None:
        calls.append(len(shards))
        real(self, shards, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(merge, "TRANSCRIPT_GROUP_ITEMS", 40)
    monkeypatch.setattr(merge.CommitPlanner, "_rebuild_shards", counted)
    grouped = _two_jobs(tmp_path / "grouped")
    assert len(calls) > 2, "the jobs were rebuilt in several groups"
    assert grouped == whole
    assert len({r["conversation_id"] for r in whole}) == len(whole) == 90
