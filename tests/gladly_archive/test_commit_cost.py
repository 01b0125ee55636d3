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
from gladly_archive.purge import purge_customers
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
    """Recent transcript files of a few kilobytes, so that a test's recent tier holds many."""
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_FILE_BYTES", 1 << 10)
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_ROW_GROUP_BYTES", 1 << 10)
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 256)


def test_continuing_a_conversation_rewrites_only_the_file_holding_it(
    tmp_path: Path, small_files: None
) -> None:
    archive = _one_item_a_conversation(tmp_path)
    before = files(tmp_path, "transcripts/recent")
    assert len(before) >= 3, "the recent tier is kept in several small files"
    holding = {
        p for p in before if "c7" in pq.read_table(tmp_path / p)["conversation_id"].to_pylist()
    }
    later = T0 + timedelta(days=1)
    archive_job(archive, "J2", [item("i-new", "c7", "u7", later, job_id="J2")])
    after = files(tmp_path, "transcripts/recent")
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
    real = merge.CommitPlanner._job_items

    def recorded(
        self: merge.CommitPlanner, group: pa.Array, job_files: set[str] | None
    ) -> pa.Table:
        given.append(job_files)
        return real(self, group, job_files)

    monkeypatch.setattr(merge, "TRANSCRIPT_GROUP_ITEMS", 40)
    monkeypatch.setattr(merge.CommitPlanner, "_job_items", recorded)
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


def _holding(root: Path, conversation: str) -> set[str]:
    return {
        p
        for p in files(root, "transcripts")
        if conversation in pq.read_table(root / p)["conversation_id"].to_pylist()
    }


def test_rebuilt_rows_go_to_a_file_of_their_own_so_the_next_commit_rewrites_only_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files big enough to hold the recent tier whole: c7's rebuilt row could join the rows kept.
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 256)
    archive = _one_item_a_conversation(tmp_path)
    later = T0 + timedelta(days=1)
    archive_job(archive, "J2", [item("j1", "c7", "u7", later, job_id="J2")])
    (own,) = _holding(tmp_path, "c7")
    assert pq.read_table(tmp_path / own)["conversation_id"].to_pylist() == ["c7"]
    kept = files(tmp_path, "transcripts/recent") - {own}
    assert kept, "the other rows stayed in a file apart"
    # The next day continues c7 again: only its own small file is replaced.
    archive_job(archive, "J3", [item("k1", "c7", "u7", later + timedelta(days=1), job_id="J3")])
    after = files(tmp_path, "transcripts/recent")
    assert kept <= after
    assert own not in after
    c7 = [
        r for r in archive.dataset("transcripts").to_table().to_pylist()
        if r["conversation_id"] == "c7"
    ]  # fmt: skip
    assert [r["item_count"] for r in c7] == [3]


def test_fresh_rows_are_those_of_the_recent_tiers_last_days() -> None:
    newest = T0 + timedelta(days=9, hours=1)
    assert transcripts.fresh_since(newest) == newest - timedelta(
        days=transcripts.FRESH_TRANSCRIPT_DAYS
    )


def _fold_forty_days(root: Path, *, legacy: bool = False) -> Archive:
    """Conversations over 40 days (customers u0..u6), folded so that the last month stays
    recent; ``legacy``: from an earlier release's shard directory."""
    archive = Archive.open(root, clock=fixed_clock)
    rows = [
        item(f"i{n}", f"c{n}", f"u{n % 7}", T0 + timedelta(days=n, minutes=1), text=_words(n))
        for n in range(40)
    ]
    archive_job(archive, "J1", rows)
    if legacy:
        _as_an_earlier_release_left_it(root)
    fold_archive(archive, (T0 + timedelta(days=5)).date(), buckets=4)
    return archive


def test_a_fold_writes_the_recent_tiers_fresh_rows_in_files_of_their_own_a_day_each(
    tmp_path: Path,
) -> None:
    _fold_forty_days(tmp_path)
    # the files the fold wrote (it rewrites the recent files that held rows leaving them)
    written = [pq.read_table(p) for p in (tmp_path / "transcripts" / "recent").glob("part-fold-*")]
    stamps = [t["last_timestamp"].to_pylist() for t in written]
    cut = transcripts.fresh_since(max(max(s) for s in stamps))
    for s in stamps:  # a file holds only fresh rows, or only older ones
        assert all(x >= cut for x in s) or all(x < cut for x in s)
    fresh = [s for s in stamps if all(x >= cut for x in s)]
    days = [{x.date() for x in s} for s in fresh]
    assert all(len(d) == 1 for d in days), "a fresh file holds one day's rows"
    assert len(days) == len({d for day in days for d in day}) > 1, "a file a day"
    assert len(stamps) > len(fresh), "beside the older rows' files"
    assert sorted(c for t in written for c in t["conversation_id"].to_pylist()) == sorted(
        f"c{n}" for n in range(6, 40)
    )


def test_a_folds_fresh_rows_of_a_day_gathered_from_many_files_make_one_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 0)  # the jobs' files stay apart
    archive = Archive.open(tmp_path, clock=fixed_clock)
    for job in range(6):  # each job's file holds conversations of every day
        rows = [
            item(f"i{job}-{d}", f"c{job}-{d}", f"u{d}", T0 + timedelta(days=d, minutes=job),
                 job_id=f"J{job}")
            for d in range(12)
        ]  # fmt: skip
        archive_job(archive, f"J{job}", rows)
    recent = tmp_path / "transcripts" / "recent"
    assert len(list(recent.glob("*.parquet"))) >= 6
    fold_archive(archive, (T0 + timedelta(days=2)).date(), buckets=4)
    newest = T0 + timedelta(days=11, minutes=5)
    cut = transcripts.fresh_since(newest)
    fresh = [
        pq.ParquetFile(p)
        for p in recent.glob("part-fold-*")
        if min(pq.read_table(p)["last_timestamp"].to_pylist()) >= cut
    ]
    # Days 8 (from the cut: the last job's row), 9, 10 and 11 (a row from each job's file).
    assert sorted(f.metadata.num_rows for f in fresh) == [1, 6, 6, 6]
    assert [f.metadata.num_row_groups for f in fresh] == [1] * 4, "gathered, not one a piece"


def _as_an_earlier_release_left_it(root: Path) -> None:
    """Move the recent transcripts into an earlier release's shard directory, with the
    customer file index following them."""
    shard = root / "transcripts" / "shard-03"
    shard.mkdir()
    for path in (root / "transcripts" / "recent").glob("*.parquet"):
        path.rename(shard / path.name)
    (root / "transcripts" / "recent").rmdir()
    for path in (root / "_index" / "customer_files").glob("*.parquet"):
        index = pq.read_table(path)
        moved = [p.replace("transcripts/recent/", "transcripts/shard-03/") for p in
                 index["path"].to_pylist()]  # fmt: skip
        at = index.schema.get_field_index("path")
        index = index.set_column(at, index.schema.field(at), pa.array(moved, pa.string()))
        pq.write_table(index, path)


def test_a_commit_moves_the_rows_it_rebuilds_out_of_an_earlier_releases_shards(
    tmp_path: Path,
) -> None:
    archive = _one_item_a_conversation(tmp_path)
    _as_an_earlier_release_left_it(tmp_path)
    later = T0 + timedelta(days=1)
    archive_job(archive, "J2", [item("i-new", "c7", "u7", later, job_id="J2")])
    table = archive.dataset("transcripts").to_table()
    assert sorted(table["conversation_id"].to_pylist()) == sorted(
        f"c{n}" for n in range(CONVERSATIONS)
    ), "c7's old row left the shard: one row a conversation"
    (c7,) = [r for r in table.to_pylist() if r["conversation_id"] == "c7"]
    assert c7["item_count"] == 2
    holding = _holding(tmp_path, "c7")
    assert holding
    assert all(p.startswith("transcripts/recent/") for p in holding)


def test_a_fold_moves_what_stays_of_an_earlier_releases_shards_to_the_recent_directory(
    tmp_path: Path,
) -> None:
    archive = _fold_forty_days(tmp_path, legacy=True)
    assert not list((tmp_path / "transcripts").glob("shard-*/*.parquet"))
    recent = pq.read_table(tmp_path / "transcripts" / "recent")["conversation_id"].to_pylist()
    assert sorted(recent) == sorted(f"c{n}" for n in range(6, 40))
    assert archive.dataset("transcripts").count_rows() == 40
    # The index followed: erasing a customer leaves none of their transcript rows.
    purge_customers(archive, ["u3"])
    left = archive.dataset("transcripts").to_table()["customer_id"].to_pylist()
    assert "u3" not in left
    assert len(left) == 40 - len([n for n in range(40) if n % 7 == 3])


def _rebuilt_from_items(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the conversations rebuilt from their items (not continued)."""
    built: list[str] = []
    real = merge.CommitPlanner._items_of

    def recorded(
        self: merge.CommitPlanner,
        touched: pa.Array,
        old: pa.Table,
        job_files: set[str] | None,
        own: pa.Table,
    ) -> pa.Table:
        built.extend(touched.to_pylist())
        return real(self, touched, old, job_files, own)

    monkeypatch.setattr(merge.CommitPlanner, "_items_of", recorded)
    return built


@pytest.mark.parametrize("cap", ["whole rows kept", "narrow rows kept, read again"])
def test_a_continued_conversation_reads_none_of_its_old_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: str
) -> None:
    archive = _fold_forty_days(tmp_path)  # c0..c5 folded, c6..c39 recent
    if cap != "whole rows kept":  # a re-export whose old rows are too big to keep whole
        monkeypatch.setattr(merge, "TAKEN_ROWS_BYTES", 0)
    built = _rebuilt_from_items(monkeypatch)
    later = T0 + timedelta(days=41)
    archive_job(archive, "J2", [
        item("j1", "c2", "u2", later, job_id="J2"),  # reopens a folded conversation
        item("j2", "c30", "u2", later, job_id="J2"),  # continues a recent one
        item("j3", "c-new", "u2", later, job_id="J2"),
    ])  # fmt: skip
    assert built == ["c-new"], "only the new conversation was built from items"
    rows = {r["conversation_id"]: r for r in archive.dataset("transcripts").to_table().to_pylist()}
    assert len(rows) == 41
    for conversation in ("c2", "c30"):
        assert rows[conversation]["item_count"] == 2
        lines = rows[conversation]["transcript"].split("\n")
        assert lines[0].startswith(
            (T0 + timedelta(days=int(conversation[1:]))).strftime("%Y-%m-%d")
        )
        assert lines[1].startswith(later.strftime("%Y-%m-%dT%H:%M"))


def test_a_replaced_item_or_a_tie_rebuilds_from_every_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    archive_job(archive, "J1", [item("i1", "c1", "u1", T0), item("i2", "c2", "u1", T0)])
    built = _rebuilt_from_items(monkeypatch)
    archive_job(archive, "J2", [
        item("i1", "c1", "u1", T0, text="edited", job_id="J2"),  # replaces an old item
        item("j2", "c2", "u1", T0, job_id="J2"),  # as old as the row's last item
    ])  # fmt: skip
    assert sorted(built) == ["c1", "c2"]
    rows = {r["conversation_id"]: r for r in archive.dataset("transcripts").to_table().to_pylist()}
    assert rows["c1"]["item_count"] == 1
    assert rows["c1"]["transcript"].endswith("edited")
    assert rows["c2"]["item_count"] == 2
