"""Which recent transcript files hold a conversation: a key file, so that a commit reads the few
files holding the conversations it continues instead of scanning the whole recent tier.

``_index/recent_conversations-k1.npz`` lists, for each recent transcript file it covers, the
file's size and modification time and the 64-bit keys of its conversation ids
(``folded_keys.conversation_keys``). It is a cache that checks itself rather than one every
writer must keep true: a file is trusted only while a file of that path, size and modification
time is there (data files are written once under a name never used again, and replaced, never
changed). Every recent file the key file does not cover (written by a purge, a fold, a
redaction, or a commit killed before it saved the keys) is read for its ids, as every file was
before, and covered from then on. A missing, torn or foreign key file covers nothing. So the
file can be stale, never wrong: no writer needs to update it for a commit to find every old
row, and killing a writer anywhere costs one read of the files it left uncovered.

A commit saves it after its renames (``CommitPlanner.save_recent_keys``); a fold saves it after
its own; a purge, a redaction or a name refresh, which rewrite recent files in place of
themselves, refresh it after theirs (``refresh_recent_keys``), so that the keys of the rows they
erased leave it then, and the next commit need not read the files they rewrote. The keys are
unkeyed hashes of Gladly's opaque conversation ids, never a person's data; the key file is
rewritten whole, without the keys of the files a commit or purge replaced, every time it is
saved.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.folded_keys import conversation_keys
from gladly_archive.fs import (
    exists,
    join,
    list_dirs,
    list_files,
    read_bytes,
    replace_file,
)
from gladly_archive.layout import relative
from gladly_archive.transcripts import recent_partitions

__all__ = [
    "RECENT_KEYS_NAME",
    "RecentKeys",
    "Stamp",
    "file_keys",
    "keys_of_ids",
    "load_recent_keys",
    "recent_listing",
    "refresh_recent_keys",
    "save_recent_keys",
]

log = logging.getLogger(__name__)

# The name carries the key function's version: a file of another key function is never read.
RECENT_KEYS_NAME = "_index/recent_conversations-k1.npz"
_FORMAT = "gladly-pipeline recent conversation keys 1"

# (size in bytes, modification time in ns) of a file: what the key file trusts it by.
Stamp = tuple[int, int]


def recent_listing(fs: pafs.FileSystem, root: str) -> dict[str, Stamp]:
    """Every recent transcript file (full path) with its stamp."""
    base = join(root, "transcripts")
    paths = [
        path
        for partition in recent_partitions(list_dirs(fs, base))
        for path in list_files(fs, join(base, partition))
    ]
    infos = fs.get_file_info(paths) if paths else []
    return {
        info.path: (int(info.size or 0), int(info.mtime_ns or 0))
        for info in infos
        if info.type == pafs.FileType.File
    }


def file_keys(fs: pafs.FileSystem, path: str) -> np.ndarray:
    """The sorted distinct keys of one transcript file's conversation ids (read from it)."""
    column = pq.read_table(path, columns=["conversation_id"], filesystem=fs)[0]
    return keys_of_ids(pc.unique(column.drop_null()))


class RecentKeys:
    """The keys of the recent transcript files a key file covers: ``paths`` (relative to the
    archive) with their ``stamps``, and the sorted ``keys`` with the file (``owners``, a number
    into ``paths``) each came from."""

    def __init__(
        self, paths: list[str], stamps: list[Stamp], keys: np.ndarray, owners: np.ndarray
    ) -> None:
        self.paths, self.stamps, self.keys, self.owners = paths, stamps, keys, owners

    @classmethod
    def empty(cls) -> RecentKeys:
        return cls([], [], np.zeros(0, np.uint64), np.zeros(0, np.int32))

    def covered(self, root: str, listing: Mapping[str, Stamp]) -> dict[str, int]:
        """The listed files this covers, full path -> number: those whose stamp still holds."""
        found = {}
        for number, (path, stamp) in enumerate(zip(self.paths, self.stamps, strict=True)):
            full = join(root, path)
            if listing.get(full) == stamp:
                found[full] = number
        return found

    def holding(self, covered: Mapping[str, int], wanted: np.ndarray) -> set[str]:
        """The covered files (full paths) holding any of the ``wanted`` keys."""
        if not len(wanted) or not len(self.keys):
            return set()
        lo = np.searchsorted(self.keys, wanted, side="left")
        hi = np.searchsorted(self.keys, wanted, side="right")
        hits = [self.owners[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        if not hits:
            return set()
        numbers = set(np.unique(np.concatenate(hits)).tolist())
        return {path for path, number in covered.items() if number in numbers}

    def updated(
        self, root: str, keep: Mapping[str, int], added: Mapping[str, tuple[Stamp, np.ndarray]]
    ) -> RecentKeys:
        """A key file covering the ``keep`` files of this one (full path -> number) and the
        ``added`` files (full path -> (stamp, sorted keys))."""
        paths: list[str] = []
        stamps: list[Stamp] = []
        keys: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        if keep:
            numbers = np.array(sorted(keep.values()), dtype=np.int32)
            renumber = np.full(len(self.paths), -1, dtype=np.int32)
            renumber[numbers] = np.arange(len(numbers), dtype=np.int32)
            paths += [self.paths[n] for n in numbers]
            stamps += [self.stamps[n] for n in numbers]
            kept = renumber[self.owners] >= 0
            keys.append(self.keys[kept])
            owners.append(renumber[self.owners[kept]])
        for full, (stamp, file_keys_) in sorted(added.items()):
            owners.append(np.full(len(file_keys_), len(paths), dtype=np.int32))
            keys.append(np.asarray(file_keys_, dtype=np.uint64))
            paths.append(relative(root, full))
            stamps.append(stamp)
        if not keys:
            return RecentKeys.empty()
        every, owner = np.concatenate(keys), np.concatenate(owners)
        order = np.argsort(every, kind="stable")  # kept keys are sorted: a merge of runs
        return RecentKeys(paths, stamps, every[order], owner[order])


def _path(root: str) -> str:
    return join(root, RECENT_KEYS_NAME)


def load_recent_keys(fs: pafs.FileSystem, root: str) -> RecentKeys:
    """The key file, or an empty one (covering nothing) if it is missing or unreadable."""
    path = _path(root)
    if not exists(fs, path):
        return RecentKeys.empty()
    try:
        with np.load(io.BytesIO(read_bytes(fs, path)), allow_pickle=False) as arrays:
            if str(arrays["format"]) != _FORMAT:
                raise ValueError("not a recent-conversation key file")
            paths = [str(p) for p in arrays["paths"]]
            stamps_array = arrays["stamps"]
            keys, owners = arrays["keys"], arrays["owners"]
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        log.warning(
            "recent-conversation keys unreadable (%s): reading the files", type(exc).__name__
        )
        return RecentKeys.empty()
    valid = (
        stamps_array.shape == (len(paths), 2)
        and keys.dtype == np.uint64
        and owners.dtype == np.int32
        and keys.shape == owners.shape
        and bool(np.all(keys[1:] >= keys[:-1]))
        and bool(np.all((owners >= 0) & (owners < len(paths))))
    )
    if not valid:
        log.warning("recent-conversation keys malformed: reading the files")
        return RecentKeys.empty()
    stamps = [(int(size), int(mtime)) for size, mtime in stamps_array]
    return RecentKeys(paths, stamps, keys, owners)


def save_recent_keys(
    fs: pafs.FileSystem,
    root: str,
    keys: RecentKeys,
    hook: Callable[[str], None] | None = None,
) -> None:
    """Write the key file whole (temporary file, fsync, rename). ``hook`` hears
    "recent_keys:temp_written" between the temporary file and its rename."""
    sink = io.BytesIO()
    np.savez(
        sink,
        format=np.array(_FORMAT),
        paths=np.array(keys.paths, dtype=np.str_),
        stamps=np.array(keys.stamps, dtype=np.int64).reshape(len(keys.paths), 2),
        keys=keys.keys,
        owners=keys.owners,
    )
    replace_file(fs, _path(root), sink.getvalue(), hook, "recent_keys:temp_written")


def refresh_recent_keys(
    fs: pafs.FileSystem, root: str, hook: Callable[[str], None] | None = None
) -> None:
    """Save the key file covering the recent transcript files there now: the files it still
    covers, and the others read for their keys (those a purge or redaction rewrote). Nothing is
    written when it covers every file and no other."""
    listing = recent_listing(fs, root)
    index = load_recent_keys(fs, root)
    keep = index.covered(root, listing)
    added = {
        path: (stamp, file_keys(fs, path)) for path, stamp in listing.items() if path not in keep
    }
    if not added and len(keep) == len(index.paths):
        return
    save_recent_keys(fs, root, index.updated(root, keep, added), hook)


def keys_of_ids(ids: Iterable[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The sorted distinct keys of these conversation ids."""
    return np.unique(conversation_keys(ids))
