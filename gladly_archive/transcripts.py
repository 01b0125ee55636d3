"""Vectorised transcript building: one readable row per conversation from its items."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.schemas import TRANSCRIPT_BUCKETS, TRANSCRIPTS, UTC_MICROS

__all__ = [
    "SOURCE_COLUMNS",
    "bucket_of",
    "bucket_partition",
    "build_transcripts",
    "transcript_lines",
]

# The item columns a transcript is built from (item_id only orders simultaneous items).
SOURCE_COLUMNS = [
    "item_id",
    "conversation_id",
    "customer_id",
    "timestamp",
    "initiator_type",
    "content_type",
    "text",
]

_LINE_BREAKS = r"\r\n?|\n"


def bucket_of(conversation_id: str) -> int:
    """The transcript bucket of a conversation: a stable CRC-32 (not Python's salted hash)."""
    return zlib.crc32(conversation_id.encode("utf-8")) % TRANSCRIPT_BUCKETS


def bucket_partition(bucket: int) -> str:
    """The directory of a recent transcripts shard, e.g. ``shard-07``."""
    return f"shard-{bucket:02d}"


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def transcript_lines(items: pa.Table) -> pa.Array:
    """One line per item: ``2025-03-01T10:02:11Z CUSTOMER: <text>``.

    The timestamp is cut to whole seconds (UTC, ``Z``); an item without text shows
    ``[<content_type>]``; line breaks inside a text become spaces so each item stays one line.
    """
    # Casting a naive (UTC) timestamp to string is several times faster than strftime.
    seconds = pc.floor_temporal(items.column("timestamp"), unit="second")
    naive = seconds.cast(pa.timestamp("us")).cast(pa.timestamp("s"))
    stamp = pc.replace_substring(naive.cast(pa.large_string()), " ", "T", max_replacements=1)
    who = pc.fill_null(items.column("initiator_type").cast(pa.large_string()), _text("UNKNOWN"))
    text = items.column("text").cast(pa.large_string())
    text = pc.replace_substring_regex(text, pattern=_LINE_BREAKS, replacement=" ")
    placeholder = pc.binary_join_element_wise(
        _text("["), items.column("content_type").cast(pa.large_string()), _text("]"), _text("")
    )
    has_text = pc.and_kleene(pc.is_valid(text), pc.not_equal(text, ""))
    body = pc.if_else(pc.fill_null(has_text, False), text, placeholder)
    return pc.binary_join_element_wise(stamp, _text("Z "), who, _text(": "), body, _text(""))


def _group_offsets(sorted_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Start offsets of each run of equal ids in a sorted array, plus the end."""
    cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    return np.concatenate(([0], cuts, [len(sorted_ids)])).astype(np.int64)


def _channels(
    content_types: pa.ChunkedArray, group_of_row: npt.NDArray[np.int64], groups: int
) -> pa.Array:
    """Distinct content types per group in order of first appearance, as list<string>."""
    rows = pa.table(
        {
            "group": pa.array(group_of_row, pa.int64()),
            "content_type": content_types,
            "row": pa.array(np.arange(len(group_of_row), dtype=np.int64)),
        }
    )
    firsts = rows.group_by(["group", "content_type"]).aggregate([("row", "min")])
    firsts = firsts.sort_by([("row_min", "ascending")])
    # Rows are sorted by group, so ordering first appearances by row keeps groups contiguous.
    per_group = np.bincount(np.asarray(firsts.column("group")), minlength=groups)
    offsets = np.concatenate(([0], np.cumsum(per_group))).astype(np.int32)
    values = firsts.column("content_type").combine_chunks().cast(pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def build_transcripts(items: pa.Table, built_at: datetime) -> pa.Table:
    """Build TRANSCRIPTS rows from items (at least SOURCE_COLUMNS), one per conversation.

    Items are ordered by conversation, timestamp and item id; items without a conversation
    (customer activities) are left out. ``customer_id`` is that of the conversation's latest item.
    """
    items = items.select(SOURCE_COLUMNS)
    items = items.filter(pc.is_valid(items.column("conversation_id")))
    if items.num_rows == 0:
        return TRANSCRIPTS.empty_table()
    items = items.sort_by(
        [("conversation_id", "ascending"), ("timestamp", "ascending"), ("item_id", "ascending")]
    ).combine_chunks()
    conversation = items.column("conversation_id").to_numpy(zero_copy_only=False)
    offsets = _group_offsets(conversation)
    starts, ends = offsets[:-1], offsets[1:]
    groups = len(starts)
    group_of_row = np.repeat(np.arange(groups, dtype=np.int64), np.diff(offsets))

    lines = transcript_lines(items)
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    per_item = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), lines)
    transcript = pc.binary_join(per_item, pa.scalar("\n", pa.large_string()))

    timestamps = items.column("timestamp")
    first_rows, last_rows = pa.array(starts), pa.array(ends - 1)
    columns = {
        "conversation_id": pc.take(items.column("conversation_id"), first_rows),
        "customer_id": pc.take(items.column("customer_id"), last_rows),
        "first_timestamp": pc.take(timestamps, first_rows),
        "last_timestamp": pc.take(timestamps, last_rows),
        "channels": _channels(items.column("content_type"), group_of_row, groups),
        "item_count": pa.array(np.diff(offsets), pa.int64()),
        "transcript": transcript,
        "built_at": pa.array([built_at] * groups, UTC_MICROS),
    }
    return pa.Table.from_pydict(
        {name: columns[name] for name in TRANSCRIPTS.names}, schema=TRANSCRIPTS
    )


def conversation_ids(tables: Iterable[pa.Table]) -> set[str]:
    """The distinct non-null conversation ids across tables."""
    found: set[str] = set()
    for table in tables:
        column = table.column("conversation_id")
        found.update(v for v in pc.unique(column.drop_null()).to_pylist() if v is not None)
    return found
