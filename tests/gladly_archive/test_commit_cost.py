"""A commit touches what its job touches: the recent transcript files holding the conversations
it continues, one new index file; not the rest of the recent tier, not the other index files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gladly_archive.merge as merge
import gladly_archive.transcripts as transcripts
from gladly_archive.archive import Archive
from gladly_archive.fold import fold_archive
from gladly_archive.schemas import TRANSCRIPTS
from gladly_archive.transcripts import bucket_of, bucket_partition
from tests.gladly_archive.test_archive import T0, archive_job, fixed_clock, item

CONVERSATIONS = 240


def _words(seed: int) -> str:
    """Text that does not compress away."""
    return " ".join(f"{(seed * 7919 + k * 104729) % 99991:05d}" for k in range(60))


def files(root: Path, dataset: str) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / dataset).rglob("*.parquet")}


def _one_item_a_conversation(root: Path) -> Archive:
    """An archive of CONVERSATIONS conversations c0, c1, ... of one item each (job J1)."""
    archive = Archive.open(root, clock=fixed_clock)
    rows = [
        item(f"i{n}", f"c{n}", f"u{n % 40}", T0 + timedelta(minutes=n), text=_words(n))
        for n in range(CONVERSATIONS)
    ]
    archive_job(archive, "J1", rows)
    return archive


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recent transcript files of a few kilobytes, so that a test's shard holds many."""
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_FILE_BYTES", 1 << 10)
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_ROW_GROUP_BYTES", 1 << 10)
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 256)


def test_continuing_a_conversation_rewrites_only_the_file_holding_it(
    tmp_path: Path, small_files: None
) -> None:
    archive = _one_item_a_conversation(tmp_path)
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


def test_a_big_job_rebuilt_a_group_at_a_time_builds_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _two_jobs(tmp_path / "whole")
    calls: list[int] = []
    real = merge.CommitPlanner._rebuild_group

    def counted(self: merge.CommitPlanner, group: pa.Array, *args: object) -> None:
        calls.append(len(group))
        real(self, group, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(merge, "TRANSCRIPT_GROUP_ITEMS", 40)
    monkeypatch.setattr(merge.CommitPlanner, "_rebuild_group", counted)
    grouped = _two_jobs(tmp_path / "grouped")
    assert len(calls) > 2, "the jobs were rebuilt in several groups"
    assert grouped == whole
    assert len({r["conversation_id"] for r in whole}) == len(whole) == 90


def _backfill(root: Path) -> list[dict[str, object]]:
    """A first job of twelve days (conversations of a day or two, as a backfill holds them),
    then a second that re-exports some of its items, continues some conversations and moves
    one item to another conversation."""
    archive = Archive.open(root, clock=fixed_clock)
    first = [
        item(f"i{n}", f"c{n // 4}", f"u{n % 30}", T0 + timedelta(hours=5 * n), text=_words(n))
        for n in range(CONVERSATIONS)
    ]
    archive_job(archive, "J1", first)
    later = T0 + timedelta(hours=5 * CONVERSATIONS)
    second = [
        item(f"i{n}", f"c{n // 4}", f"u{n % 30}", T0 + timedelta(hours=5 * n), job_id="J2")
        for n in range(0, CONVERSATIONS, 3)
    ]
    second += [
        item(f"j{n}", f"c{n * 5}", f"u{n % 30}", later + timedelta(hours=n), job_id="J2")
        for n in range(12)
    ]
    second.append(item("i9", "c-moved", "u9", T0 + timedelta(hours=45), job_id="J2"))
    archive_job(archive, "J2", second)
    table = archive.dataset("transcripts").to_table().drop_columns(["built_at"])
    return sorted(table.to_pylist(), key=lambda r: str(r["conversation_id"]))


def test_a_backfills_groups_read_its_day_files_about_once_not_once_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _backfill(tmp_path / "whole")
    given: list[set[str] | None] = []
    real = merge.CommitPlanner._items_of

    def recorded(
        self: merge.CommitPlanner, touched: pa.Array, old: pa.Table, job_files: set[str] | None
    ) -> pa.Table:
        given.append(job_files)
        return real(self, touched, old, job_files)

    monkeypatch.setattr(merge, "TRANSCRIPT_GROUP_ITEMS", 40)
    monkeypatch.setattr(merge.CommitPlanner, "_items_of", recorded)
    grouped = _backfill(tmp_path / "grouped")
    assert grouped == whole, "the same rows as one group builds"
    assert {r["conversation_id"] for r in whole} == {f"c{n}" for n in range(60)} | {"c-moved"}
    assert all(g is not None for g in given)
    read = [path for files in given if files is not None for path in files]
    day_files = set(read)
    assert len(given) >= 2 * 5, "both jobs were rebuilt in several groups"
    assert len(day_files) >= 12
    # A group reads the day files its conversations lie in; grouped by shard, every group
    # would read every one of them.
    assert len(read) <= 2 * len(day_files)


def test_a_commit_reads_no_staged_file_back_for_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    real = merge._column

    def recorded(fs: object, path: str, name: str) -> pa.ChunkedArray:
        read.append(name)
        return real(fs, path, name)  # type: ignore[arg-type]

    monkeypatch.setattr(merge, "_column", recorded)
    archive = _one_item_a_conversation(tmp_path)
    assert archive.dataset("transcripts").count_rows() == CONVERSATIONS
    assert read == [], "item, conversation and customer ids came from the writers"


def _holding(root: Path, shard: str, conversation: str) -> set[str]:
    return {
        p
        for p in files(root, f"transcripts/{shard}")
        if conversation in pq.read_table(root / p)["conversation_id"].to_pylist()
    }


def test_rebuilt_rows_go_to_a_file_of_their_own_so_the_next_commit_rewrites_only_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files big enough to hold a shard whole: c7's rebuilt row could join the rows kept.
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 256)
    archive = _one_item_a_conversation(tmp_path)
    shard = bucket_partition(bucket_of("c7"))
    later = T0 + timedelta(days=1)
    archive_job(archive, "J2", [item("j1", "c7", "u7", later, job_id="J2")])
    (own,) = _holding(tmp_path, shard, "c7")
    assert pq.read_table(tmp_path / own)["conversation_id"].to_pylist() == ["c7"]
    kept = files(tmp_path, f"transcripts/{shard}") - {own}
    assert kept, "the shard's other rows stayed in a file apart"
    # The next day continues c7 again: only its own small file is replaced.
    archive_job(archive, "J3", [item("k1", "c7", "u7", later + timedelta(days=1), job_id="J3")])
    after = files(tmp_path, f"transcripts/{shard}")
    assert kept <= after
    assert own not in after
    c7 = [
        r for r in archive.dataset("transcripts").to_table().to_pylist()
        if r["conversation_id"] == "c7"
    ]  # fmt: skip
    assert [r["item_count"] for r in c7] == [3]


def test_split_fresh_puts_a_shards_last_days_apart_oldest_first() -> None:
    stamps = [T0 + timedelta(days=d, hours=1) for d in range(10)]
    rows = pa.table(
        {"conversation_id": [f"c{d}" for d in range(10)], "last_timestamp": stamps},
        schema=pa.schema(
            [pa.field("conversation_id", pa.string()), TRANSCRIPTS.field("last_timestamp")]
        ),
    )
    older, fresh = transcripts.split_fresh(rows)
    days = transcripts.FRESH_TRANSCRIPT_DAYS
    assert fresh["conversation_id"].to_pylist() == [f"c{d}" for d in range(9 - days, 10)]
    assert older["conversation_id"].to_pylist() == [f"c{d}" for d in range(9 - days)]
    assert transcripts.split_fresh(rows.slice(7)) == [rows.slice(7)]  # all fresh: one part
    assert transcripts.split_fresh(rows.slice(0, 0)) == []


def test_a_fold_writes_each_shards_fresh_rows_in_a_file_of_their_own(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    # Conversations over 40 days; the fold keeps the last month recent.
    rows = [
        item(f"i{n}", f"c{n}", f"u{n % 7}", T0 + timedelta(days=n, minutes=1), text=_words(n))
        for n in range(40)
    ]
    archive_job(archive, "J1", rows)
    fold_archive(archive, (T0 + timedelta(days=5)).date(), buckets=4)
    split = 0
    for shard in (tmp_path / "transcripts").glob("shard-*"):
        # the files the fold wrote (it rewrites a shard that held rows leaving it)
        written = [pq.read_table(p) for p in shard.glob("part-fold-*.parquet")]
        stamps = [t["last_timestamp"].to_pylist() for t in written]
        if not stamps:
            continue
        shard_cut = max(max(s) for s in stamps) - timedelta(days=transcripts.FRESH_TRANSCRIPT_DAYS)
        for s in stamps:  # a file holds only fresh rows, or only older ones
            assert all(x >= shard_cut for x in s) or all(x < shard_cut for x in s)
        fresh = sum(1 for s in stamps if all(x >= shard_cut for x in s))
        split += fresh == 1 and len(stamps) > fresh
    assert split, "a shard's fresh rows went to a file of their own beside the older rows'"
