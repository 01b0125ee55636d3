"""Which folded buckets may hold a conversation's rows: a sorted key file, so that a commit finds
an old conversation's items, transcript and facts by reading its buckets, not the folded tier.

A folded row's bucket is its customer's (docs/erasure-layout.md), but a conversation's customer
can change when Gladly merges customers, so a commit cannot trust the bucket of the customer it
sees now. ``_index/folded_conversations-k1.npy`` lists, for every conversation id found in the
folded tier's items, transcripts and conversation facts, a 64-bit key of the id (FNV-1a, mixed) and
the bucket holding it, sorted by key: a lookup is a binary search, whatever the archive's size.

It must never miss a conversation (a miss would leave an old transcript row beside the rebuilt
one), so it is a superset of the folded tier, kept that way by one rule: only a fold adds
conversation ids to the folded tier. Everything else (commits, purges, redactions, the name
refresh) removes rows or rewrites them where they were, which leaves at most a key too many —
a bucket read for nothing. A fold deletes the file before its first write and writes it anew
after its last, so a fold killed on the way leaves no file; a missing file is rebuilt from the
folded tier by the next writer (under the writer lock) before anything relies on it.

The keys are unkeyed hashes of conversation ids, Gladly's opaque identifiers, never a person's
data; an erased customer's conversation keys leave with the next fold's rebuild.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.fs import (
    delete_if_exists,
    exists,
    fsync_dirs,
    join,
    list_dirs,
    list_files,
    local_path,
    read_bytes,
    replace_file,
)
from gladly_archive.layout import FOLDED, folded_partition, read_layout

__all__ = [
    "KEYED_DATASETS",
    "KEYS_NAME",
    "FoldedKeys",
    "build_folded_keys",
    "conversation_keys",
    "drop_folded_keys",
    "folded_keys",
    "folded_paths",
]

log = logging.getLogger(__name__)

# The name carries the key function's version: a file of another key function is never read.
KEYS_NAME = "_index/folded_conversations-k1.npy"
# The folded datasets whose rows carry a conversation id.
KEYED_DATASETS = ("items", "transcripts", "conversations")
_NO_BUCKETS = np.zeros(0, dtype=np.int64)


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def conversation_keys(ids: Iterable[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The 64-bit key of each conversation id: FNV-1a over its UTF-8 bytes and its length,
    then a SplitMix64 finaliser; vectorised over the ids (stable across processes)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        ids = pa.array(list(ids), pa.string())
    ids = pc.fill_null(ids.cast(pa.binary()), b"")
    count = len(ids)
    if not count:
        return np.zeros(0, dtype=np.uint64)
    lengths = np.asarray(pc.binary_length(ids), dtype=np.int64)
    width = int(lengths.max())
    padded = pc.binary_join_element_wise(ids, pa.scalar(b"\0" * width), b"")
    padded = pc.binary_slice(padded, 0, width) if width else padded
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32)[: count + 1]
    rows = data[offsets[0] : offsets[0] + count * width].reshape(count, width)
    key = np.full(count, _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(width):
            # Bytes past an id's end are padding: they must not change its key, which would
            # then depend on the other ids hashed with it.
            inside = lengths > column
            stepped = (key ^ rows[:, column].astype(np.uint64)) * _FNV_PRIME
            key = np.where(inside, stepped, key)
        key = (key ^ lengths.astype(np.uint64)) * _FNV_PRIME
        key ^= key >> np.uint64(30)
        key *= np.uint64(0xBF58476D1CE4E5B9)
        key ^= key >> np.uint64(27)
        key *= np.uint64(0x94D049BB133111EB)
        key ^= key >> np.uint64(31)
    return key


class FoldedKeys:
    """The sorted (key, bucket) pairs of the folded tier's conversations."""

    def __init__(self, keys: np.ndarray, buckets: np.ndarray) -> None:
        self.keys = keys
        self.buckets = buckets

    def __len__(self) -> int:
        return len(self.keys)

    def buckets_of(self, conversation_ids: Iterable[str] | pa.Array) -> np.ndarray:
        """The sorted distinct buckets that may hold rows of any of these conversations."""
        wanted = np.unique(conversation_keys(conversation_ids))
        if not len(wanted) or not len(self.keys):
            return _NO_BUCKETS
        lo = np.searchsorted(self.keys, wanted, side="left")
        hi = np.searchsorted(self.keys, wanted, side="right")
        hits = [np.asarray(self.buckets[a:b]) for a, b in zip(lo, hi, strict=True) if b > a]
        if not hits:
            return _NO_BUCKETS
        return np.unique(np.concatenate(hits)).astype(np.int64)


def _path(root: str) -> str:
    return join(root, KEYS_NAME)


def _encode(keys: np.ndarray, buckets: np.ndarray) -> bytes:
    sink = io.BytesIO()
    np.save(sink, np.stack([keys, buckets.astype(np.uint64)]), allow_pickle=False)
    return sink.getvalue()


def _load(fs: pafs.FileSystem, root: str) -> FoldedKeys:
    path = _path(root)
    local = local_path(fs, path)
    if local is not None:
        pairs = np.load(local, mmap_mode="r", allow_pickle=False)
    else:
        pairs = np.load(io.BytesIO(read_bytes(fs, path)), allow_pickle=False)
    if pairs.ndim != 2 or pairs.shape[0] != 2 or pairs.dtype != np.uint64:
        raise ValueError("not a folded-conversation key file")
    return FoldedKeys(pairs[0], pairs[1])


def _bucket_of_dir(name: str) -> int | None:
    return int(name) if name.isdigit() else None


def build_folded_keys(
    fs: pafs.FileSystem, root: str, hook: Callable[[str], None] | None = None
) -> FoldedKeys:
    """Read the folded tier's conversation ids and write the key file (under the writer lock).
    ``hook`` hears "keys:temp_written" between the written temporary file and its rename."""
    keys: list[np.ndarray] = []
    buckets: list[np.ndarray] = []
    for dataset in KEYED_DATASETS:
        base = join(root, dataset, FOLDED)
        for name in list_dirs(fs, base):
            bucket = _bucket_of_dir(name)
            if bucket is None:
                continue
            for path in list_files(fs, join(base, name)):
                column = pq.read_table(path, columns=["conversation_id"], filesystem=fs)[0]
                ids = pc.unique(column.drop_null())
                keys.append(conversation_keys(ids))
                buckets.append(np.full(len(ids), bucket, dtype=np.uint64))
    if keys:
        pairs = np.unique(np.stack([np.concatenate(keys), np.concatenate(buckets)]), axis=1)
    else:
        pairs = np.zeros((2, 0), dtype=np.uint64)
    # np.unique(axis=1) sorts the pairs lexicographically: by key, then bucket.
    replace_file(fs, _path(root), _encode(pairs[0], pairs[1]), hook, "keys:temp_written")
    log.info("folded-conversation keys rebuilt: %d pairs", pairs.shape[1])
    return FoldedKeys(pairs[0], pairs[1])


def drop_folded_keys(fs: pafs.FileSystem, root: str) -> None:
    """Remove the key file durably (a fold, before it adds ids to the folded tier)."""
    path = _path(root)
    delete_if_exists(fs, path)
    fsync_dirs(fs, {path.rsplit("/", 1)[0]})


def folded_keys(
    fs: pafs.FileSystem, root: str, hook: Callable[[str], None] | None = None
) -> FoldedKeys:
    """The key file, rebuilt first if it is missing or unreadable; empty while nothing is
    folded. Call under the writer lock (a rebuild writes)."""
    if read_layout(fs, root).folded_through is None:
        return FoldedKeys(np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    if exists(fs, _path(root)):
        try:
            return _load(fs, root)
        except (ValueError, OSError, EOFError) as exc:
            log.warning("folded-conversation keys unreadable (%s): rebuilding", type(exc).__name__)
    return build_folded_keys(fs, root, hook)


def folded_paths(fs: pafs.FileSystem, root: str, dataset: str, buckets: np.ndarray) -> list[str]:
    """The files of these buckets in a dataset's folded tier."""
    base = join(root, dataset)
    return [
        p for b in buckets for p in list_files(fs, join(base, folded_partition(dataset, int(b))))
    ]
