"""Export JSONL → Arrow record batches in the archive's schemas: fast, bounded and lossless.

Items go block by block (about `block_bytes` of whole lines, one record batch each) through
pyarrow's JSON parser and compute functions (convert_fast). A block that parser cannot take
(a malformed line, an odd shape) is read line by line instead: bad lines are quarantined with
their line number, the others are converted — by the fast path where it can, else by the
per-line reference converter (convert_fallback) — and keep their order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.convert_fallback import (
    fast_compatible,
    item_error,
    item_row,
    load_line,
    rows_to_batch,
)
from gladly_archive.convert_fast import convert_fast
from gladly_archive.convert_records import agent_row, customer_row, record_error, topic_row
from gladly_archive.jsonl import POOL, read_ahead, read_blocks, split_lines
from gladly_archive.schemas import AGENTS, CUSTOMERS, TOPICS, UTC_MICROS

__all__ = [
    "ConvertStats",
    "QuarantineHandler",
    "QuarantinedLine",
    "convert_agents_file",
    "convert_customers_file",
    "convert_items_file",
    "convert_items_lines",
    "convert_topics_file",
]

# Bytes of whole lines per items batch. On the 1 M-item benchmark 8 MB converts as fast as 16
# MB and peaks some 50 MB lower (two blocks are in flight: one converting, one being written).
ITEMS_BLOCK_BYTES = 8 << 20
# Customers, agents and topics are converted row by row in Python; smaller blocks keep the
# Python objects of one batch small.
RECORDS_BLOCK_BYTES = 4 << 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PADDING = b" \t\r\n"


@dataclass(frozen=True)
class QuarantinedLine:
    """A line that could not become a row, and where it was."""

    line_number: int  # 1-based physical line number in the file (blank lines count)
    error: str  # what was wrong, never the line's content
    raw_line: bytes


@dataclass
class ConvertStats:
    """Counts of one conversion, updated as its batches are consumed."""

    lines_read: int = 0  # non-blank lines seen
    rows: int = 0  # rows emitted
    quarantined: int = 0
    bytes_read: int = 0


QuarantineHandler = Callable[[QuarantinedLine], None]


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("archived_at must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class _Converted:
    """One block's result, handed from the worker thread to the consumer."""

    batch: pa.RecordBatch | None
    stats: ConvertStats
    quarantined: list[QuarantinedLine]


class _Items:
    """Converts blocks of item lines, collecting counts and quarantined lines per block."""

    def __init__(self, job_id: str, archived_at: datetime) -> None:
        self.job_id = job_id
        self.archived_at = _micros(archived_at)
        self.archived_scalar = pa.scalar(self.archived_at, UTC_MICROS)
        self.stats = ConvertStats()
        self.quarantined: list[QuarantinedLine] = []

    def take(self, batch: pa.RecordBatch | None) -> _Converted:
        """The block's batch with the counts and quarantined lines gathered since last time."""
        if batch is not None:
            self.stats.rows += batch.num_rows
        done = _Converted(batch, self.stats, self.quarantined)
        self.stats, self.quarantined = ConvertStats(), []
        return done

    def block(self, data: bytearray, first_line: int) -> tuple[pa.RecordBatch | None, int]:
        """Rows of a block of whole lines, and the number of the line after it."""
        lines = split_lines(data, first_line)
        self.stats.lines_read += len(lines)
        if not len(lines):
            return None, lines.next_line
        batch = None
        if lines.neat(data):
            try:
                raw_json = lines.array(data)
            except pa.ArrowInvalid:  # not UTF-8: the per-line path finds the lines
                raw_json = None
            if raw_json is not None:
                batch = convert_fast(
                    data, raw_json, lines.longest, self.job_id, self.archived_scalar
                )
            del raw_json
        if batch is None:
            batch = self.line_by_line(lines.numbered(data))
        return batch, lines.next_line

    def line_by_line(self, numbered: list[tuple[int, bytes]]) -> pa.RecordBatch | None:
        """Rows of non-blank (number, line) pairs, quarantining the lines that are not items."""
        fast: list[tuple[int, bytes, str, dict[str, Any]]] = []
        slow: list[tuple[int, dict[str, Any], str]] = []
        for number, raw in numbered:
            value, error = load_line(raw)
            if error is None:
                error = item_error(value)
            if error is not None:
                self.stats.quarantined += 1
                self.quarantined.append(QuarantinedLine(number, error, raw))
                continue
            kept = len(fast) + len(slow)
            text = raw.decode("utf-8")
            if fast_compatible(value, raw):
                fast.append((kept, raw.strip(_PADDING), text, value))
            else:
                slow.append((kept, value, text))
        batches: list[pa.RecordBatch] = []
        positions: list[int] = []
        if fast:
            batch = convert_fast(
                bytearray(b"\n".join(source for _, source, _, _ in fast)),
                pa.array([text for _, _, text, _ in fast], pa.large_string(), memory_pool=POOL),
                max(len(source) for _, source, _, _ in fast),
                self.job_id,
                self.archived_scalar,
            )
            if batch is None:  # the guess was wrong: convert them one by one as well
                slow.extend((pos, value, text) for pos, _, text, value in fast)
            else:
                batches.append(batch)
                positions.extend(pos for pos, _, _, _ in fast)
        if slow:
            rows = [item_row(value, text, self.job_id, self.archived_at) for _, value, text in slow]
            batches.append(rows_to_batch(rows))
            positions.extend(pos for pos, _, _ in slow)
        if len(batches) < 2:
            return batches[0] if batches else None
        order = np.empty(len(positions), np.int64)
        order[np.array(positions, np.int64)] = np.arange(len(positions))
        table = pa.Table.from_batches(batches)
        table = pc.take(table, order, memory_pool=POOL).combine_chunks(memory_pool=POOL)
        return table.to_batches()[0]


def _deliver(
    results: Iterable[_Converted],
    stats: ConvertStats | None,
    on_quarantine: QuarantineHandler | None,
) -> Iterator[pa.RecordBatch]:
    """Yield the batches, counting and reporting quarantined lines in the caller's thread."""
    for result in results:
        if stats is not None:
            stats.lines_read += result.stats.lines_read
            stats.rows += result.stats.rows
            stats.quarantined += result.stats.quarantined
            stats.bytes_read += result.stats.bytes_read
        if on_quarantine is not None:
            for line in result.quarantined:
                on_quarantine(line)
        if result.batch is not None and result.batch.num_rows:
            yield result.batch


def convert_items_file(
    path: str | os.PathLike[str],
    *,
    job_id: str,
    archived_at: datetime,
    on_quarantine: QuarantineHandler | None = None,
    stats: ConvertStats | None = None,
    block_bytes: int = ITEMS_BLOCK_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Stream a conversation_items.jsonl file as ITEMS record batches, one per block.

    The next block is converted in a worker thread while the caller handles this one;
    `on_quarantine` and `stats` are still called and updated in the caller's thread.
    """
    items = _Items(job_id, archived_at)

    def convert_blocks() -> Generator[_Converted, None, None]:
        line = 1
        for block in read_blocks(path, block_bytes):
            items.stats.bytes_read += block.size
            batch, line = items.block(block.data, line)
            del block  # not held while the consumer writes
            yield items.take(batch)
            del batch

    return _deliver(read_ahead(convert_blocks()), stats, on_quarantine)


def convert_items_lines(
    lines: Iterable[bytes],
    *,
    job_id: str,
    archived_at: datetime,
    on_quarantine: QuarantineHandler | None = None,
    stats: ConvertStats | None = None,
    block_bytes: int = ITEMS_BLOCK_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Like convert_items_file for items already in memory, one JSON object per element
    (e.g. API items serialised back to lines); an element's number is its line number."""
    items = _Items(job_id, archived_at)

    def convert_chunks() -> Iterator[_Converted]:
        pending: list[bytes] = []
        size = 0
        first = 1
        for element in lines:
            items.stats.bytes_read += len(element)
            line = element[:-1] if element.endswith(b"\n") else element
            pending.append(line[:-1] if line.endswith(b"\r") else line)
            size += len(line) + 1
            if size >= block_bytes:
                yield items.take(_lines_block(items, pending, first))
                first += len(pending)
                pending, size = [], 0
        yield items.take(_lines_block(items, pending, first))

    return _deliver(convert_chunks(), stats, on_quarantine)


def _lines_block(items: _Items, pending: list[bytes], first: int) -> pa.RecordBatch | None:
    if not any(b"\n" in line for line in pending):
        return items.block(bytearray(b"\n".join(pending)), first)[0]
    # An element spread over several lines (pretty-printed JSON) is still one item.
    numbered = [(first + i, line) for i, line in enumerate(pending) if line.strip(_PADDING)]
    items.stats.lines_read += len(numbered)
    return items.line_by_line(numbered)


# --- customers, agents, topics: small files, converted row by row -----------------------------

RowMaker = Callable[[dict[str, Any]], dict[str, Any]]


def _convert_records(
    path: str | os.PathLike[str],
    schema: pa.Schema,
    make_row: RowMaker,
    job_id: str,
    archived_at: datetime,
    on_quarantine: QuarantineHandler | None,
    stats: ConvertStats | None,
    block_bytes: int,
) -> Iterator[pa.RecordBatch]:
    stats = stats if stats is not None else ConvertStats()
    archived = _micros(archived_at)
    line = 1
    for block in read_blocks(path, block_bytes):
        stats.bytes_read += block.size
        lines = split_lines(block.data, line)
        line = lines.next_line
        stats.lines_read += len(lines)
        rows: list[dict[str, Any]] = []
        for number, raw in lines.numbered(block.data):
            value, error = load_line(raw)
            error = error or record_error(value)
            if error is not None:
                stats.quarantined += 1
                if on_quarantine is not None:
                    on_quarantine(QuarantinedLine(number, error, raw))
                continue
            row = make_row(value)
            row.update(raw_json=raw.decode("utf-8"), job_id=job_id, archived_at=archived)
            rows.append(row)
        if rows:
            stats.rows += len(rows)
            yield pa.RecordBatch.from_pylist(rows, schema=schema)


def convert_customers_file(
    path: str | os.PathLike[str],
    *,
    job_id: str,
    archived_at: datetime,
    on_quarantine: QuarantineHandler | None = None,
    stats: ConvertStats | None = None,
    block_bytes: int = RECORDS_BLOCK_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Stream customers.jsonl (the export's flattened customers) as CUSTOMERS batches."""
    return _convert_records(
        path, CUSTOMERS, customer_row, job_id, archived_at, on_quarantine, stats, block_bytes
    )


def convert_agents_file(
    path: str | os.PathLike[str],
    *,
    job_id: str,
    archived_at: datetime,
    on_quarantine: QuarantineHandler | None = None,
    stats: ConvertStats | None = None,
    block_bytes: int = RECORDS_BLOCK_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Stream agents.jsonl as AGENTS batches."""
    return _convert_records(
        path, AGENTS, agent_row, job_id, archived_at, on_quarantine, stats, block_bytes
    )


def convert_topics_file(
    path: str | os.PathLike[str],
    *,
    job_id: str,
    archived_at: datetime,
    on_quarantine: QuarantineHandler | None = None,
    stats: ConvertStats | None = None,
    block_bytes: int = RECORDS_BLOCK_BYTES,
) -> Iterator[pa.RecordBatch]:
    """Stream topics.jsonl as TOPICS batches."""
    return _convert_records(
        path, TOPICS, topic_row, job_id, archived_at, on_quarantine, stats, block_bytes
    )
