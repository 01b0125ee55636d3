"""Vectorised transcript building: one readable row per conversation from its items."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.schemas import TRANSCRIPTS, UTC_MICROS
from gladly_archive.writer import DEFAULT_MAX_ROW_GROUP_BYTES

__all__ = [
    "RECENT_PARTITION",
    "SOURCE_COLUMNS",
    "build_transcripts",
    "continue_transcripts",
    "extend_transcripts",
    "fresh_since",
    "is_recent_partition",
    "line_parts",
    "recent_partitions",
    "transcript_lines",
]

# The item columns a transcript is built from (item_id only orders simultaneous items).
SOURCE_COLUMNS = [
    "item_id",
    "conversation_id",
    "customer_id",
    "timestamp",
    "initiator_id",
    "initiator_type",
    "content_type",
    "channel",
    "internal",
    "agent_id",
    "agent_name",
    "inbox_name",
    "topic_names",
    "text",
    "call_answered_at",
    "call_completed_at",
    "recording_status",
    "recording_duration_seconds",
    "attachments",
]
SEPARATOR = " · "
_LINE_BREAKS = r"\r\n?|\n"
_CALLS = ("PHONE_CALL", "VOICEMAIL")
# Who started an item, for the initiator types that are not a person of ours.
_INITIATORS = {
    "CUSTOMER": "Customer",
    "SYSTEM": "System",
    "API": "Integration",
    "AUTOMATION": "Automation",
}


# The recent tier's transcripts, one directory for every conversation: a day's job continues
# conversations from everywhere, so conversation shards only multiplied the files a commit reads
# and writes (16 shards: 16 small files rewritten and 16 written for a day's 5,000 items, where
# one directory needs one or two). Archives written before keep their ``shard-NN``
# directories, read as part of the recent tier until their rows move (``recent_partitions``).
RECENT_PARTITION = "recent"
_LEGACY_SHARD = "shard-"

# Recent transcripts are kept in small files, the freshest apart: a commit rewrites only the
# files holding rows of the conversations it continues (mostly the newest), not the whole
# tier, so its cost follows the job rather than the size of the recent tier. Files under a
# quarter of this are merged once enough gather (merge.CommitPlanner).
RECENT_TRANSCRIPT_FILE_BYTES = 512 << 10
# Row groups small enough for files of that size (bytes in memory; zstd makes them ~4x less).
RECENT_TRANSCRIPT_ROW_GROUP_BYTES = 1 << 20
# The rows of conversations active in the recent tier's last days are written in files of their
# own (by a fold; a commit writes its rebuilt rows so too): the conversations commits continue,
# so what a commit rewrites to drop their old rows is those small files, not the big files of
# older rows.
FRESH_TRANSCRIPT_DAYS = 3


def is_recent_partition(partition: str) -> bool:
    """True for a directory of the recent tier's transcripts (``recent``, or an earlier
    release's ``shard-NN``), False for the folded tier's."""
    return partition == RECENT_PARTITION or partition.startswith(_LEGACY_SHARD)


def recent_partitions(names: Iterable[str]) -> list[str]:
    """The recent tier's directories among a transcripts directory's sub-directories."""
    return [name for name in names if is_recent_partition(name)]


def fresh_since(newest: datetime) -> datetime:
    """The first instant of the recent tier's fresh rows, given its newest ``last_timestamp``:
    rows at or after it are written to files of their own."""
    return newest - timedelta(days=FRESH_TRANSCRIPT_DAYS)


def writer_limits(dataset: str, partition: str, max_file_bytes: int) -> tuple[int, int]:
    """(max_file_bytes, max_row_group_bytes) for a DatasetWriter of one partition: small files
    for the recent transcripts, ``max_file_bytes`` and the default row groups elsewhere
    (folded buckets stay one file each)."""
    if dataset == "transcripts" and is_recent_partition(partition):
        return min(max_file_bytes, RECENT_TRANSCRIPT_FILE_BYTES), RECENT_TRANSCRIPT_ROW_GROUP_BYTES
    return max_file_bytes, DEFAULT_MAX_ROW_GROUP_BYTES


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _duration(seconds: int) -> str:
    minutes, rest = divmod(max(seconds, 0), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def _call_words(row: dict[str, Any]) -> str:
    """ "Phone call, 6m 25s, recording available" from a call's or voicemail's columns."""
    words = ["Voicemail" if row["content_type"] == "VOICEMAIL" else "Phone call"]
    seconds = row["recording_duration_seconds"]
    answered, completed = row["call_answered_at"], row["call_completed_at"]
    if seconds is None and answered is not None and completed is not None:
        seconds = int((completed - answered).total_seconds())
    if seconds is not None:
        words.append(_duration(seconds))
    elif row["content_type"] == "PHONE_CALL" and answered is None:
        words.append("not answered")
    status = row["recording_status"]
    if status:
        words.append(f"recording {status.lower().replace('_', ' ')}")
    return ", ".join(words)


# The columns _call_words and the attachment list read.
_SPECIAL_COLUMNS = [
    "content_type",
    "recording_duration_seconds",
    "call_answered_at",
    "call_completed_at",
    "recording_status",
    "attachments",
]


def _bodies(items: pa.Table) -> pa.Array:
    """What each line says: the text on one line; calls with duration and recording status;
    attachments by file name; ``[<channel>]`` for an item with nothing to read."""
    text = items.column("text").cast(pa.large_string())
    text = pc.replace_substring_regex(text, pattern=_LINE_BREAKS, replacement=" ")
    placeholder = pc.binary_join_element_wise(
        _text("["), items.column("channel").cast(pa.large_string()), _text("]"), _text("")
    )
    has_text = pc.fill_null(pc.not_equal(text, ""), False)
    body = pc.if_else(has_text, text, placeholder)
    calls = pc.is_in(items.column("content_type"), value_set=pa.array(_CALLS))
    attached = pc.fill_null(pc.greater(pc.list_value_length(items.column("attachments")), 0), False)
    is_special = pc.or_(pc.fill_null(calls, False), attached)
    special = pc.indices_nonzero(is_special)
    if not len(special):
        return body
    # Only the special rows go through Python (a backfill's transcripts: a tenth of them),
    # and only the columns their words need; the rest of the lines stay in Arrow.
    rows = items.select(_SPECIAL_COLUMNS).take(special).to_pylist()
    texts = body.take(special).to_pylist()
    texted = has_text.take(special).to_pylist()
    values = []
    for row, text, has in zip(rows, texts, texted, strict=True):
        said = text if has else None
        if row["content_type"] in _CALLS:
            said = _call_words(row) + (f": {said}" if said else "")
        files = [a["filename"] or a["content_type"] or "file" for a in row["attachments"] or ()]
        if files:
            listed = f"[attachments: {', '.join(files)}]"
            said = f"{said} {listed}" if said else listed
        values.append(said)
    said = pa.array(values, pa.large_string())
    return pc.replace_with_mask(_whole(body), _whole(is_special), said)


def _whole(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array (replace_with_mask takes no chunked ones)."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _who(items: pa.Table) -> pa.Array:
    """ "Customer", the agent's name, "Internal note (<agent>)", or the initiator's kind."""
    kind = items.column("initiator_type").cast(pa.string())
    agent = pc.coalesce(
        items.column("agent_name"),
        pc.binary_join_element_wise(
            _text("Agent "), items.column("agent_id").cast(pa.large_string()), _text("")
        ).cast(pa.string()),
    )
    initiator = pc.coalesce(
        pc.take(
            pa.array(list(_INITIATORS.values()), pa.string()),
            pc.index_in(kind, value_set=pa.array(list(_INITIATORS), pa.string())),
        ),
        kind,
        pa.scalar("Unknown", pa.string()),
    )
    is_agent = pc.fill_null(pc.equal(kind, "AGENT"), False)
    who = pc.if_else(pc.and_(is_agent, pc.is_valid(agent)), agent, initiator)
    note = pc.binary_join_element_wise(
        pa.scalar("Internal note (", pa.string()),
        pc.coalesce(agent, pa.scalar("unknown agent", pa.string())),
        pa.scalar(")", pa.string()),
        pa.scalar("", pa.string()),
    )
    return pc.if_else(pc.fill_null(items.column("internal"), False), note, who)


def line_parts(items: pa.Table) -> pa.Table:
    """Per item: ``stamp`` (UTC, whole seconds, ``Z``), ``channel``, ``who``, ``body`` and
    ``internal``: the pieces every rendering of a transcript line is made of."""
    # Casting a naive (UTC) timestamp to string is several times faster than strftime.
    seconds = pc.floor_temporal(items.column("timestamp"), unit="second")
    naive = seconds.cast(pa.timestamp("us")).cast(pa.timestamp("s"))
    stamp = pc.replace_substring(naive.cast(pa.large_string()), " ", "T", max_replacements=1)
    return pa.table(
        {
            "stamp": pc.binary_join_element_wise(stamp, _text("Z"), _text("")),
            "channel": items.column("channel").cast(pa.large_string()),
            "who": _who(items).cast(pa.large_string()),
            "body": _bodies(items),
            "internal": pc.fill_null(items.column("internal"), False),
        }
    )


def transcript_lines(items: pa.Table) -> pa.Array:
    """One line per item: ``2025-03-01T10:02:11Z · Chat · Customer · <text>``.

    Internal notes say so where a reader looks first: ``· Note · Internal note (Amy Agent) ·``.
    Line breaks inside a text become spaces so each item stays one line.
    """
    parts = line_parts(items)
    sep = _text(SEPARATOR)
    return pc.binary_join_element_wise(
        parts.column("stamp"),
        parts.column("channel"),
        parts.column("who"),
        parts.column("body"),
        sep,
    )


def _group_offsets(sorted_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Start offsets of each run of equal ids in a sorted array, plus the end."""
    cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    return np.concatenate(([0], cuts, [len(sorted_ids)])).astype(np.int64)


def _distinct_in_order(
    values: pa.ChunkedArray | pa.Array,
    group_of_row: npt.NDArray[np.int64],
    groups: int,
    keep: npt.NDArray[np.bool_] | None = None,
) -> pa.Array:
    """Distinct values per group in order of first appearance, as list<string>; rows outside
    ``keep`` and NULL values are left out."""
    rows = pa.table(
        {
            "group": pa.array(group_of_row, pa.int64()),
            "value": values,
            "row": pa.array(np.arange(len(group_of_row), dtype=np.int64)),
        }
    )
    mask = pc.is_valid(rows.column("value"))
    if keep is not None:
        mask = pc.and_(mask, pa.array(keep))
    rows = rows.filter(mask)
    firsts = rows.group_by(["group", "value"]).aggregate([("row", "min")])
    firsts = firsts.sort_by([("row_min", "ascending")])
    # Rows are sorted by group, so ordering first appearances by row keeps groups contiguous.
    per_group = np.bincount(np.asarray(firsts.column("group")), minlength=groups)
    offsets = np.concatenate(([0], np.cumsum(per_group))).astype(np.int32)
    distinct = firsts.column("value").combine_chunks().cast(pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), distinct)


def _last_valid(
    column: pa.ChunkedArray | pa.Array,
    group_of_row: npt.NDArray[np.int64],
    groups: int,
    keep: npt.NDArray[np.bool_] | None = None,
) -> pa.Array:
    """Per group, the value of its last row (in row order) where ``column`` is not NULL."""
    valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
    if keep is not None:
        valid &= keep
    rows = np.flatnonzero(valid)
    last = np.full(groups, -1, dtype=np.int64)
    np.maximum.at(last, group_of_row[rows], rows)
    indices = pa.array(last, pa.int64(), mask=last < 0)
    return pc.take(column, indices)


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

    kinds = items.column("initiator_type")
    by_agent = np.asarray(
        pc.fill_null(pc.equal(kinds, "AGENT"), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    internal = np.asarray(
        pc.fill_null(items.column("internal"), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    timestamps = items.column("timestamp")
    first_rows, last_rows = pa.array(starts), pa.array(ends - 1)
    columns = {
        "conversation_id": pc.take(items.column("conversation_id"), first_rows),
        "customer_id": pc.take(items.column("customer_id"), last_rows),
        "first_timestamp": pc.take(timestamps, first_rows),
        "last_timestamp": pc.take(timestamps, last_rows),
        "channels": _distinct_in_order(items.column("content_type"), group_of_row, groups),
        "item_count": pa.array(np.diff(offsets), pa.int64()),
        "agent_name": _last_valid(items.column("agent_name"), group_of_row, groups, by_agent),
        "agent_names": _distinct_in_order(
            items.column("agent_name"), group_of_row, groups, by_agent
        ),
        "inbox_name": _last_valid(items.column("inbox_name"), group_of_row, groups),
        "topic_names": _last_valid(items.column("topic_names"), group_of_row, groups),
        "internal_notes": pa.array(
            np.bincount(group_of_row[internal], minlength=groups), pa.int64()
        ),
        "transcript": transcript,
        "built_at": pa.array([built_at] * groups, UTC_MICROS),
    }
    return pa.Table.from_pydict(
        {name: columns[name] for name in TRANSCRIPTS.names}, schema=TRANSCRIPTS
    )


def _merged_distinct(first: pa.Array, second: pa.Array) -> pa.Array:
    """Per row, the distinct values of ``first``'s list then ``second``'s, in order of first
    appearance (the lists of two runs of items, one after the other)."""
    values = pa.concat_arrays([pc.list_flatten(first), pc.list_flatten(second)])
    parents = np.concatenate(
        [
            np.asarray(pc.list_parent_indices(first), dtype=np.int64),
            np.asarray(pc.list_parent_indices(second), dtype=np.int64),
        ]
    )
    order = np.argsort(parents, kind="stable")  # a row's first values before its second's
    return _distinct_in_order(values.take(pa.array(order)), parents[order], len(first))


def extend_transcripts(old: pa.Table, items: pa.Table, built_at: datetime) -> pa.Table:
    """Continue ``old`` TRANSCRIPTS rows with new ``items`` (at least SOURCE_COLUMNS), one row
    per conversation of the items: what ``build_transcripts`` makes of all the items, old and
    new, when every new item is later than its conversation's ``last_timestamp`` (the caller's
    to check; it reads no old item). Every conversation of ``items`` needs its row in ``old``.
    """
    return continue_transcripts(old, build_transcripts(items, built_at))


def continue_transcripts(old: pa.Table, new: pa.Table) -> pa.Table:
    """Continue ``old`` TRANSCRIPTS rows with ``new`` ones: each new row, built from later
    items of a conversation of ``old`` (``build_transcripts``), joined to that conversation's
    old row (``extend_transcripts``, for rows built already, among others, in one call)."""
    if not new.num_rows:
        return new
    at = pc.index_in(new.column("conversation_id"), value_set=old.column("conversation_id"))
    if at.null_count:
        raise ValueError("a conversation to continue has no transcript row")
    old = old.take(at).combine_chunks()
    new = new.combine_chunks()

    def newer(name: str) -> pa.Array:
        """The new rows' value where it has one, else the old's (latest valid item wins)."""
        return pc.if_else(pc.is_valid(new[name]), new[name], old[name])

    columns = {
        "conversation_id": new["conversation_id"],
        "customer_id": new["customer_id"],
        "first_timestamp": old["first_timestamp"],
        "last_timestamp": new["last_timestamp"],
        "channels": _merged_distinct(old["channels"].chunk(0), new["channels"].chunk(0)),
        "item_count": pc.add(old["item_count"], new["item_count"]),
        "agent_name": newer("agent_name"),
        "agent_names": _merged_distinct(old["agent_names"].chunk(0), new["agent_names"].chunk(0)),
        "inbox_name": newer("inbox_name"),
        "topic_names": newer("topic_names"),
        "internal_notes": pc.add(old["internal_notes"], new["internal_notes"]),
        "transcript": pc.binary_join_element_wise(
            old["transcript"], new["transcript"], pa.scalar("\n", pa.large_string())
        ),
        "built_at": new["built_at"],
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
