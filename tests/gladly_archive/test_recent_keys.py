"""The recent tier's key file: a commit reads only the recent transcript files holding the
conversations it continues, and a missing, stale, torn or foreign key file never hides one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import gladly_archive.merge as merge
import gladly_archive.recent_keys as recent_keys
import gladly_archive.transcripts as transcripts
from gladly_archive.archive import Archive
from gladly_archive.enrichment import append_snapshot
from gladly_archive.item_purge import redact_items
from gladly_archive.name_refresh import refresh_conversation_names
from gladly_archive.purge import purge_customers
from gladly_archive.recent_keys import RECENT_KEYS_NAME, load_recent_keys, recent_listing
from gladly_archive.schemas import CONVERSATIONS as FACTS
from tests.gladly_archive.test_archive import T0, archive_job, fixed_clock, item
from tests.gladly_archive.test_commit_cost import _fold_forty_days, _one_item_a_conversation

CONVERSATIONS = 240


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recent transcript files of a few kilobytes, never merged: many files to choose from."""
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_FILE_BYTES", 1 << 10)
    monkeypatch.setattr(transcripts, "RECENT_TRANSCRIPT_ROW_GROUP_BYTES", 1 << 10)
    monkeypatch.setattr(merge, "SMALL_RECENT_TRANSCRIPTS", 0)


def _scanned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the recent transcript files a commit reads rows of (whole, by column or by
    batch) while taking old rows out."""
    calls: list[str] = []

    def recording(name: str) -> None:
        real = getattr(merge, name)

        def recorded(fs: object, path: str, *args: object) -> object:
            if "/transcripts/" in path and "/folded/" not in path:
                calls.append(path)
            return real(fs, path, *args)

        monkeypatch.setattr(merge, name, recorded)

    for name in ("_read_whole", "_column", "_batches"):
        recording(name)
    return calls


def _read_for_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the files read for their ids because no key file covered them."""
    read: list[str] = []
    real = recent_keys.file_keys

    def recorded(fs: object, path: str) -> np.ndarray:
        read.append(path)
        return real(fs, path)  # type: ignore[arg-type]

    monkeypatch.setattr(merge, "file_keys", recorded)
    return read


class _Crash(Exception):
    pass


def _killed_before_the_key_file(point: str) -> None:
    """A crash hook: the writer dies between the key file's temporary and its rename."""
    if point == "recent_keys:temp_written":
        raise _Crash(point)


def _one_row_each(archive: Archive) -> dict[str, int]:
    table = archive.dataset("transcripts").to_table()
    ids = table["conversation_id"].to_pylist()
    assert len(ids) == len(set(ids)), "one row a conversation"
    return dict(zip(ids, table["item_count"].to_pylist(), strict=True))


def _continue(archive: Archive, job: str, conversation: str, day: int = 1) -> None:
    when = T0 + timedelta(days=day)
    archive_job(archive, job, [item(f"{job}-i", conversation, "u7", when, job_id=job)])


def test_a_commit_reads_only_the_files_holding_its_conversations(
    tmp_path: Path, small_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _one_item_a_conversation(tmp_path)
    listing = recent_listing(archive.fs, archive.root)
    assert len(listing) >= 10, "many small recent files"
    index = load_recent_keys(archive.fs, archive.root)
    assert len(index.covered(archive.root, listing)) == len(listing), "the commit saved them"
    scans, read = _scanned(monkeypatch), _read_for_ids(monkeypatch)
    _continue(archive, "J2", "c7")
    assert read == [], "every recent file was covered"
    assert scans
    assert len(set(scans)) == 1, "only the file holding c7"
    assert len(scans) == 1, "read once"
    assert _one_row_each(archive)["c7"] == 2


def test_files_the_key_file_does_not_cover_are_read_for_their_ids(
    tmp_path: Path, small_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_item_a_conversation(tmp_path)

    # A purge rewrites the files holding u7's rows, and is killed before its key file is in.
    crashing = Archive.open(tmp_path, crash_hook=_killed_before_the_key_file, clock=fixed_clock)
    with pytest.raises(_Crash):
        purge_customers(crashing, ["u7"])
    archive = Archive.open(tmp_path, clock=fixed_clock)
    assert "c7" not in _one_row_each(archive), "the purge itself was done"
    listing = recent_listing(archive.fs, archive.root)
    index = load_recent_keys(archive.fs, archive.root)
    uncovered = set(listing) - set(index.covered(archive.root, listing))
    assert uncovered, "the purge's files are not covered"
    read = _read_for_ids(monkeypatch)
    _continue(archive, "J2", "c8")  # u8's conversation: maybe in a file the purge rewrote
    assert set(read) == uncovered
    assert _one_row_each(archive)["c8"] == 2
    # Covered from then on.
    read.clear()
    _continue(archive, "J3", "c9", day=2)
    assert read == []
    assert _one_row_each(archive)["c9"] == 2


def test_a_purge_leaves_the_key_file_covering_every_recent_file_without_its_keys(
    tmp_path: Path, small_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _one_item_a_conversation(tmp_path)
    erased = [f"c{n}" for n in range(CONVERSATIONS) if n % 40 == 7]  # u7's conversations
    before = load_recent_keys(archive.fs, archive.root)
    assert set(recent_keys.keys_of_ids(erased).tolist()) <= set(before.keys.tolist())
    purge_customers(archive, ["u7"])
    listing = recent_listing(archive.fs, archive.root)
    index = load_recent_keys(archive.fs, archive.root)
    assert set(index.covered(archive.root, listing)) == set(listing), "every file covered"
    left = [c for c in _one_row_each(archive) if c not in erased]
    assert len(left) == CONVERSATIONS - len(erased)
    assert set(index.keys.tolist()) == set(recent_keys.keys_of_ids(left).tolist())
    read = _read_for_ids(monkeypatch)
    _continue(archive, "J2", "c8")
    assert read == [], "the next commit reads no file for its ids"
    assert _one_row_each(archive)["c8"] == 2


def _named_c7(archive: Archive) -> None:
    """Facts for c7 (an inbox) that its archived rows do not name yet."""
    facts = {"conversation_id": "c7", "customer_id": "u7", "inbox_id": "ib-1", "topic_ids": []}
    table = pa.Table.from_pylist([{**facts, "fetched_at": T0}], schema=FACTS)
    append_snapshot(archive, "conversations", table, run_id="enr-1")


def _topics_of_c7(archive: Archive) -> list[str] | None:
    rows = archive.dataset("transcripts").to_table(columns=["conversation_id", "topic_names"])
    return dict(zip(*rows.to_pydict().values(), strict=True))["c7"]  # type: ignore[no-any-return]


def _redact_i7(archive: Archive) -> None:
    redact_items(archive, {"i7": "u7"})


def _rename_c7(archive: Archive) -> None:
    _named_c7(archive)
    assert refresh_conversation_names(archive, {"c7": "u7"}).files_rewritten["transcripts"] == 1


@pytest.mark.parametrize("rewrite", [_redact_i7, _rename_c7], ids=["redaction", "name refresh"])
def test_a_rewrite_in_place_leaves_the_key_file_covering_every_recent_file(
    tmp_path: Path,
    small_files: None,
    monkeypatch: pytest.MonkeyPatch,
    rewrite: Callable[[Archive], None],
) -> None:
    archive = _one_item_a_conversation(tmp_path)
    before = recent_listing(archive.fs, archive.root)
    rewrite(archive)
    listing = recent_listing(archive.fs, archive.root)
    assert listing != before, "it rewrote a file"
    index = load_recent_keys(archive.fs, archive.root)
    assert set(index.covered(archive.root, listing)) == set(listing)
    read = _read_for_ids(monkeypatch)
    _continue(archive, "J2", "c7")
    assert read == [], "the next commit reads no file for its ids"
    assert _one_row_each(archive)["c7"] == 2


def test_a_name_refresh_killed_before_the_key_file_has_it_saved_by_the_rerun(
    tmp_path: Path, small_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _topics_of_c7(_one_item_a_conversation(tmp_path)) is None
    crashing = Archive.open(tmp_path, crash_hook=_killed_before_the_key_file, clock=fixed_clock)
    _named_c7(crashing)
    with pytest.raises(_Crash):
        refresh_conversation_names(crashing, {"c7": "u7"})
    archive = Archive.open(tmp_path, clock=fixed_clock)
    assert _topics_of_c7(archive) == [], "the renames were done (no topics: none, not null)"
    listing = recent_listing(archive.fs, archive.root)
    index = load_recent_keys(archive.fs, archive.root)
    assert len(set(listing) - set(index.covered(archive.root, listing))) == 1, "not covered"
    again = refresh_conversation_names(archive, {"c7": "u7"})
    assert sum(again.files_rewritten.values()) == 0
    index = load_recent_keys(archive.fs, archive.root)
    assert set(index.covered(archive.root, listing)) == set(listing), "the rerun covers it"
    assert not [p for p in (tmp_path / "_index").iterdir() if p.name.startswith(".")]
    read = _read_for_ids(monkeypatch)
    _continue(archive, "J2", "c7")
    assert read == []
    assert _one_row_each(archive)["c7"] == 2


@pytest.mark.parametrize(
    "damage",
    ["missing", "truncated", "garbage", "foreign npz", "stale stamp", "unsorted keys"],
)
def test_a_damaged_key_file_covers_nothing_and_no_old_row_is_missed(
    tmp_path: Path, small_files: None, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    archive = _one_item_a_conversation(tmp_path)
    path = tmp_path / RECENT_KEYS_NAME
    good = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a key file" * 10)
    elif damage == "foreign npz":
        with path.open("wb") as out:
            np.savez(out, keys=np.zeros(3, np.uint64))
    else:
        index = load_recent_keys(archive.fs, archive.root)
        if damage == "stale stamp":
            # Every file listed a byte longer than it is: as if each had been replaced.
            index.stamps = [(size + 1, mtime) for size, mtime in index.stamps]
        else:
            index.keys = index.keys[::-1].copy()
        recent_keys.save_recent_keys(archive.fs, archive.root, index)
    read = _read_for_ids(monkeypatch)
    _continue(archive, "J2", "c7")
    assert len(read) >= 10, "every recent file was read for its ids"
    counts = _one_row_each(archive)
    assert counts["c7"] == 2
    assert len(counts) == CONVERSATIONS


def test_a_commit_killed_before_it_saved_the_key_file_costs_one_read(
    tmp_path: Path, small_files: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_item_a_conversation(tmp_path)

    crashing = Archive.open(tmp_path, crash_hook=_killed_before_the_key_file, clock=fixed_clock)
    with pytest.raises(_Crash):
        _continue(crashing, "J2", "c7")
    reopened = Archive.open(tmp_path, clock=fixed_clock)
    assert not [p for p in (tmp_path / "_index").iterdir() if p.name.startswith(".")]
    assert reopened.archived_job_ids() == {"J1", "J2"}, "the commit itself was done"
    read = _read_for_ids(monkeypatch)
    _continue(reopened, "J3", "c7", day=2)
    assert read, "the files J2 wrote were read, not trusted"
    assert _one_row_each(reopened)["c7"] == 3


def test_the_key_file_holds_keys_not_ids(tmp_path: Path) -> None:
    archive = Archive.open(tmp_path, clock=fixed_clock)
    ids = [f"Conversation-Id-{n:06d}" for n in range(50)]
    archive_job(archive, "J1", [item(f"i{n}", c, "u1", T0) for n, c in enumerate(ids)])
    data = (tmp_path / RECENT_KEYS_NAME).read_bytes()
    assert not [c for c in ids if c.encode() in data or c.encode("utf-32-le") in data]
    index = load_recent_keys(archive.fs, archive.root)
    assert set(recent_keys.keys_of_ids(ids).tolist()) == set(index.keys.tolist())


def test_a_fold_covers_the_recent_files_it_writes(tmp_path: Path) -> None:
    archive = _fold_forty_days(tmp_path)
    listing = recent_listing(archive.fs, archive.root)
    assert listing
    index = load_recent_keys(archive.fs, archive.root)
    assert set(index.covered(archive.root, listing)) == set(listing)
    ids = archive.dataset("transcripts").to_table()["conversation_id"].to_pylist()
    recent = [c for c in ids if int(c[1:]) > 5]  # the rows the fold kept recent
    assert set(recent_keys.keys_of_ids(recent).tolist()) == set(index.keys.tolist())
