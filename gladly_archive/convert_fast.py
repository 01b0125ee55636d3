"""Vectorised conversion of a block of item lines into ITEMS with pyarrow's JSON parser.

Gladly's items do not share one JSON shape: `content.to` is a list for EMAIL but a string for
SMS and PHONE_CALL, a custom channel's `content.content` is an object where every other
type has a string, and `recordingDuration` is sometimes the string "100". Arrow's parser
fails a whole block on such a conflict, so before parsing the string (or object) variants
are renamed to private keys, in place: the key's last letter becomes DEL (0x7f), a byte no
Gladly key contains (a block holding one goes the per-line way). The columns are then merged
again with compute functions, and the block's bytes are restored.
Anything else it cannot hold makes `convert_fast` return None, and the caller falls back to
the per-line path, which defines every column (convert_fallback.item_row).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from gladly_archive.convert_fallback import (
    CUSTOM_CHANNEL_MARKER,
    CUSTOM_CHANNEL_MESSAGE,
    DURATION_PATTERN,
    TIMESTAMP_PATTERN,
)
from gladly_archive.jsonl import POOL
from gladly_archive.schemas import ATTACHMENT, CONVERTED_ITEMS, UTC_MICROS

__all__ = ["PARSE_SCHEMA", "convert_fast"]

_S, _L = pa.string(), pa.large_string()
_DEL = 0x7F
_TO_TEXT = "t\x7f"  # `"to":"…"`: SMS and call numbers, where an email has a list
_CONTENT_OBJECT = "conten\x7f"  # a custom channel's `content: {text|caption}`
_DURATION_TEXT = "recordingDuratio\x7f"  # `recordingDuration: "100"`


def _party() -> pa.StructType:
    return pa.struct([("id", _S), ("type", _S)])


PARSE_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("conversationId", _S),
        ("customerId", _S),
        ("timestamp", _S),
        ("sessionId", _S),
        ("initiator", _party()),
        ("responder", _party()),
        (
            "content",
            pa.struct(
                [
                    ("type", _S),
                    ("messageType", _S),
                    ("sessionId", _S),
                    ("customChannelId", _S),
                    ("content", _L),
                    (_CONTENT_OBJECT, pa.struct([("text", _L), ("caption", _L)])),
                    ("body", _L),
                    ("subject", _S),
                    ("title", _S),
                    ("from", _S),
                    ("to", pa.list_(_S)),
                    (_TO_TEXT, _S),
                    ("cc", pa.list_(_S)),
                    ("bcc", pa.list_(_S)),
                    ("startedAt", _S),
                    ("answeredAt", _S),
                    ("completedAt", _S),
                    ("recordingStatus", _S),
                    ("recordingDuration", pa.int64()),
                    (_DURATION_TEXT, _S),
                    ("recordingSummary", pa.struct([("summary", _L)])),
                    ("activityType", _S),
                    (
                        "attachments",
                        pa.list_(
                            pa.struct(
                                [
                                    ("id", _S),
                                    ("contentType", _S),
                                    ("filename", _S),
                                    ("fileSize", pa.int64()),
                                ]
                            )
                        ),
                    ),
                ]
            ),
        ),
    ]
)
"""Every field the ITEMS columns are made from; other fields are skipped (kept in raw_json)."""

_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=PARSE_SCHEMA, unexpected_field_behavior="ignore")
_OBJECT_CONTENT_KEY = re.compile(rb'"content"\s*:\s*\{')
_STRING_TO = {
    spaced: re.compile(re.escape(b'"to' + separator))
    for spaced, separator in ((False, b'":"'), (True, b'": "'))
}
_NS = pa.timestamp("ns", tz="UTC")


class _Unparseable(Exception):
    """The block holds something the fast path cannot convert exactly like the per-line path."""


def convert_fast(
    source: bytearray,
    raw_json: pa.LargeStringArray,
    longest: int,
    job_id: str,
    archived_at: pa.Scalar,
) -> pa.RecordBatch | None:
    """ITEMS rows of `source` (whole lines; blank lines allowed), or None if it can't.

    `raw_json` holds the source's non-blank lines as they go into raw_json, one per row, and
    `longest` is the length of the longest (so no line straddles two of Arrow's parse blocks).
    `source` is edited while parsing and restored before this returns.
    """
    try:
        edits = _rename(source)
    except _Unparseable:
        return None
    originals = _edit(source, edits, _DEL)
    try:
        table = pj.read_json(
            pa.BufferReader(pa.py_buffer(source)),
            read_options=pj.ReadOptions(block_size=_parse_block_size(len(source), longest)),
            parse_options=_PARSE_OPTIONS,
            memory_pool=POOL,
        )
        if table.num_rows != len(raw_json):
            return None
        return _columns(table, raw_json, job_id, archived_at)
    except (_Unparseable, pa.ArrowInvalid):
        return None
    finally:
        _edit(source, edits, originals)


def _parse_block_size(size: int, longest: int) -> int:
    """Arrow's parse block: one per CPU of the source (they parse in parallel), at least 1 MB,
    and no line straddles two. Fewer blocks are fewer chunks for every column expression to
    run over and to combine (on 2 CPUs: 2 chunks, not 8, and 0.2 s less a million items)."""
    per_cpu = -(-size // int(pa.cpu_count()))
    return max(1 << 20, per_cpu + longest + 2)


def _spaced(source: bytearray) -> bool:
    """Whether the first line separates keys with `": "` (json.dumps' default) not `":"`."""
    end = source.find(b"\n", 0, 1 << 16)
    colon = source.find(b'":', 0, end if end >= 0 else 1 << 16)
    return colon >= 0 and source[colon + 2 : colon + 3] == b" "


def _rename(source: bytearray) -> np.ndarray:
    """The offsets of the bytes that rename the conflicting variants' keys (not yet edited)."""
    if source.find(_DEL) >= 0:
        raise _Unparseable  # the renamed keys would be ambiguous
    spaced = _spaced(source)
    separator = b'": "' if spaced else b'":"'
    # Every string `to`: its `o` (a regex finds the literal faster than a bytes.find loop).
    edits = [match.start() + 2 for match in _STRING_TO[spaced].finditer(source)]
    # The rare shapes: only in the lines that have them.
    marker = b'"recordingDuration' + separator
    at = source.find(marker)
    while at >= 0:
        edits.append(at + len(marker) - len(separator) - 1)  # its last `n`
        at = source.find(marker, at + len(marker))
    at = source.find(CUSTOM_CHANNEL_MARKER)
    while at >= 0:
        start = source.rfind(b"\n", 0, at) + 1
        end = source.find(b"\n", at)
        end = len(source) if end < 0 else end
        # The line's first `"content":{` is the item's content; later ones the message's.
        for match in list(_OBJECT_CONTENT_KEY.finditer(source, start, end))[1:]:
            edits.append(match.start() + len(b'"conten'))  # its last `t`
        at = source.find(CUSTOM_CHANNEL_MARKER, end)
    return np.array(edits, np.int64)


def _edit(source: bytearray, at: np.ndarray, byte: int | np.ndarray) -> np.ndarray:
    """Set the bytes of `source` at offsets `at` to `byte` (one, or one each); returns the
    bytes they held."""
    if not len(at):
        return np.zeros(0, np.uint8)
    view = np.frombuffer(source, np.uint8)
    held: np.ndarray = view[at]
    view[at] = byte
    del view  # no export left on the bytearray: its owner may resize it
    return held


def _exclusive(first: pa.ChunkedArray, second: pa.ChunkedArray) -> bool:
    """Whether `second` (a renamed variant of `first`'s key) has values, never in one row with
    `first` (that would be a repeated key, which only the per-line path reads like json)."""
    if second.null_count == len(second):
        return False
    if pc.any(pc.and_(pc.is_valid(first), pc.is_valid(second), memory_pool=POOL)).as_py():
        raise _Unparseable
    return True


def _required_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if column.null_count or (
        len(column) and pc.min(pc.binary_length(column, memory_pool=POOL)).as_py() == 0
    ):
        raise _Unparseable  # the per-line path quarantines these lines
    return column


def _timestamps(column: pa.ChunkedArray, *, required: bool) -> pa.ChunkedArray:
    if column.null_count == len(column):
        return pa.chunked_array([pa.nulls(len(column), UTC_MICROS, memory_pool=POOL)])
    # The values checked in one piece: most optional times are NULL, and a regex is compiled
    # once a chunk. Only a column with a bad value is checked row by row.
    present = pc.drop_null(column, memory_pool=POOL).combine_chunks(memory_pool=POOL)
    if not pc.all(pc.match_substring_regex(present, TIMESTAMP_PATTERN, memory_pool=POOL)).as_py():
        if required:
            raise _Unparseable
        valid = pc.match_substring_regex(column, TIMESTAMP_PATTERN, memory_pool=POOL)
        column = pc.if_else(valid, column, pa.scalar(None, _S), memory_pool=POOL)
    # Arrow reads 0-9 fraction digits only into nanoseconds; dropping the extra digits then
    # truncates like the per-line path does.
    nanos = pc.cast(column, _NS, memory_pool=POOL)
    return pc.cast(nanos, UTC_MICROS, safe=False, memory_pool=POOL)


def _durations(number: pa.ChunkedArray, text: pa.ChunkedArray) -> pa.ChunkedArray:
    if not _exclusive(number, text):
        return number
    valid = pc.match_substring_regex(text, DURATION_PATTERN, memory_pool=POOL)
    digits = pc.if_else(valid, text, pa.scalar(None, _S), memory_pool=POOL)
    return pc.coalesce(number, pc.cast(digits, pa.int64(), memory_pool=POOL), memory_pool=POOL)


def _to_lists(lists: pa.ChunkedArray, text: pa.ChunkedArray) -> pa.ChunkedArray:
    if not _exclusive(lists, text):
        return lists
    values = text.combine_chunks(memory_pool=POOL)
    single = pa.ListArray.from_arrays(
        pa.array(np.arange(len(values) + 1, dtype=np.int32), memory_pool=POOL),
        values,
        pool=POOL,
        mask=values.is_null(),
    )
    return pc.coalesce(lists, pa.chunked_array([single]), memory_pool=POOL)


def _attachments(column: pa.ChunkedArray) -> pa.Array:
    target = pa.list_(ATTACHMENT)
    if column.null_count == len(column):
        return pa.nulls(len(column), target, memory_pool=POOL)
    lists = column.combine_chunks(memory_pool=POOL)
    if lists.offset:
        lists = pa.concat_arrays([lists], memory_pool=POOL)  # rebase offsets so .values lines up
    values = lists.values
    structs = pa.StructArray.from_arrays(
        [values.field(i) for i in range(values.type.num_fields)],
        fields=list(ATTACHMENT),
        mask=values.is_null(),
        memory_pool=POOL,
    )
    return pa.ListArray.from_arrays(
        lists.offsets, structs, type=target, pool=POOL, mask=lists.is_null()
    )


def _columns(
    table: pa.Table, lines: pa.LargeStringArray, job_id: str, archived_at: pa.Scalar
) -> pa.RecordBatch:
    rows = table.num_rows
    content = table.column("content")

    def field(*path: str) -> pa.ChunkedArray:
        return pc.struct_field(content, list(path), memory_pool=POOL)

    def party(name: str, key: str) -> pa.ChunkedArray:
        return pc.struct_field(table.column(name), [key], memory_pool=POOL)

    kind = _required_text(field("type"))
    custom = pc.is_valid(field("customChannelId"))
    if pc.any(custom).as_py():
        content_type = pc.if_else(custom, CUSTOM_CHANNEL_MESSAGE, kind, memory_pool=POOL)
        message_type = pc.coalesce(
            field("messageType"),
            pc.if_else(custom, kind, pa.scalar(None, _S), memory_pool=POOL),
            memory_pool=POOL,
        )
    else:
        content_type, message_type = kind, field("messageType")
    text = field("content")
    if _exclusive(text, field(_CONTENT_OBJECT)):
        text = pc.coalesce(
            text,
            field(_CONTENT_OBJECT, "text"),
            field(_CONTENT_OBJECT, "caption"),
            memory_pool=POOL,
        )
    text = pc.coalesce(text, field("body"), memory_pool=POOL)
    columns = {
        "item_id": _required_text(table.column("id")),
        "conversation_id": table.column("conversationId"),
        "customer_id": _required_text(table.column("customerId")),
        "session_id": pc.coalesce(table.column("sessionId"), field("sessionId"), memory_pool=POOL),
        "timestamp": (stamps := _timestamps(table.column("timestamp"), required=True)),
        "date": pc.cast(stamps, pa.date32(), memory_pool=POOL),
        "initiator_id": party("initiator", "id"),
        "initiator_type": party("initiator", "type"),
        "responder_id": party("responder", "id"),
        "responder_type": party("responder", "type"),
        "content_type": content_type,
        "message_type": message_type,
        "text": text,
        "subject": pc.coalesce(field("subject"), field("title"), memory_pool=POOL),
        "from_address": field("from"),
        "to_addresses": _to_lists(field("to"), field(_TO_TEXT)),
        "cc_addresses": field("cc"),
        "bcc_addresses": field("bcc"),
        "call_started_at": _timestamps(field("startedAt"), required=False),
        "call_answered_at": _timestamps(field("answeredAt"), required=False),
        "call_completed_at": _timestamps(field("completedAt"), required=False),
        "recording_status": field("recordingStatus"),
        "recording_duration_seconds": _durations(field("recordingDuration"), field(_DURATION_TEXT)),
        "recording_summary": field("recordingSummary", "summary"),
        "activity_type": field("activityType"),
        "attachments": _attachments(field("attachments")),
        "raw_json": lines,
        "job_id": pa.repeat(pa.scalar(job_id, _S), rows, memory_pool=POOL),
        "archived_at": pa.repeat(archived_at, rows, memory_pool=POOL),
    }
    arrays = [
        value.combine_chunks(memory_pool=POOL) if isinstance(value, pa.ChunkedArray) else value
        for value in columns.values()
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=CONVERTED_ITEMS)
