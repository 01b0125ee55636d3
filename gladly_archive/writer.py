"""Streaming Parquet writers: bounded row groups, size-rotated part files, date partitions."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import posixpath
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.fs import fsync_file, join, temp_name

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_ROW_GROUP_BYTES",
    "DEFAULT_MAX_ROW_GROUP_ROWS",
    "DatasetWriter",
    "SchemaMismatchError",
    "WrittenFile",
    "bounded_slices",
    "check_schema",
    "date_partitions",
    "parquet_options",
    "write_parquet_file",
]

DEFAULT_MAX_FILE_BYTES = 128 << 20
DEFAULT_MAX_ROW_GROUP_ROWS = 256 * 1024
DEFAULT_MAX_ROW_GROUP_BYTES = 64 << 20
# Slices smaller than this (a date partition's share of a batch) wait for more rows of the same
# partition before becoming a row group, so per-customer runs over years of dates don't write
# thousands of tiny row groups.
DEFAULT_MIN_ROW_GROUP_ROWS = 16 * 1024
DEFAULT_MAX_OPEN_FILES = 64
# Rows held back across all partitions before the biggest is flushed (a backfill writes a
# thousand day partitions at once): 256 MB raised a 300 k-item export's items phase to 610 MB
# RSS, 64 MB to 548 MB.
DEFAULT_MAX_BUFFERED_BYTES = 64 << 20


class SchemaMismatchError(ValueError):
    """A batch does not have exactly the dataset's schema (or has nulls in a required column)."""


@dataclass(frozen=True)
class WrittenFile:
    """One finished part file."""

    path: str  # full path on the filesystem
    partition: str  # partition directory relative to the dataset ("", "2025-03-01", "job-…")
    rows: int
    size_bytes: int
    # The file's values of the writer's ``keep_columns``, in row order, and the distinct
    # non-NULL values of its ``keep_distinct`` (its own copy of what it wrote, so that a commit
    # need not read the file back for its ids): empty unless asked.
    columns: Mapping[str, pa.ChunkedArray] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )
    distinct: Mapping[str, pa.Array] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )


def _describe(field: pa.Field) -> str:
    return f"{field.type}{'' if field.nullable else ' not null'}"


def check_schema(dataset: str, expected: pa.Schema, batch: pa.RecordBatch) -> None:
    """Raise SchemaMismatchError, naming the dataset and columns, if ``batch`` differs.

    Names, order, types and nullability must match exactly; schema metadata is not compared (the
    writer stamps the dataset's own). Required columns must hold no nulls.
    """
    actual = batch.schema
    if not actual.equals(expected, check_metadata=False):
        expected_names, actual_names = expected.names, actual.names
        actual_fields = dict(zip(actual_names, actual, strict=True))
        missing = [n for n in expected_names if n not in actual_fields]
        extra = [n for n in actual_names if n not in expected_names]
        changed = [
            f"{field.name} (expected {_describe(field)}, "
            f"got {_describe(actual_fields[field.name])})"
            for field in expected
            if field.name in actual_fields and not field.equals(actual_fields[field.name])
        ]
        repeated = sorted({n for n in actual_names if actual_names.count(n) > 1})
        parts = []
        if repeated:
            parts.append(f"repeated columns {repeated}")
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        if changed:
            parts.append(f"changed columns {changed}")
        if not parts:
            parts.append(f"column order differs: expected {expected_names}, got {actual_names}")
        raise SchemaMismatchError(f"{dataset}: batch schema differs: " + "; ".join(parts))
    for index, field in enumerate(expected):
        if not field.nullable and batch.column(index).null_count:
            raise SchemaMismatchError(
                f"{dataset}: required column {field.name} has "
                f"{batch.column(index).null_count} null value(s)"
            )


def bounded_slices(
    batch: pa.RecordBatch, max_rows: int, max_bytes: int
) -> Iterator[pa.RecordBatch]:
    """Zero-copy slices of ``batch`` with at most ``max_rows`` rows and roughly ``max_bytes``."""
    rows = batch.num_rows
    if rows == 0:
        return
    size = batch.nbytes
    per_slice = max_rows
    if size > max_bytes:
        per_slice = min(per_slice, max(1, rows * max_bytes // size))
    for start in range(0, rows, per_slice):
        yield batch.slice(start, per_slice)


def date_partitions(batch: pa.RecordBatch, column: str) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Split a batch by the UTC date of a timestamp column: ("YYYY-MM-DD", rows) pairs.

    Vectorised: one sort by date and contiguous slices, no Python loop over rows.
    """
    if batch.num_rows == 0:
        return
    dates = pc.cast(batch.column(column), pa.date32())
    order = pc.sort_indices(dates)  # stable: rows keep their order within a date
    ordered = batch.take(order)
    sorted_dates = pc.take(dates, order)
    days = np.asarray(sorted_dates.cast(pa.int32()))
    cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(days)]))
    labels = pc.strftime(pc.take(sorted_dates, pa.array(starts)), format="%Y-%m-%d").to_pylist()
    for label, start, end in zip(labels, starts, ends, strict=True):
        yield label, ordered.slice(int(start), int(end - start))


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The archive's ParquetWriter options for a schema: zstd, and its free-text columns
    (large_string: transcripts, item text, raw JSON) without dictionaries or min/max statistics.

    Neither helps a reader of free text (no two transcripts repeat; no query prunes on a
    transcript's min and max), and both cost every write: on the recent tier's transcript rows
    of a 10 M-item archive (8,243 rows, 5.8 MB) a write took 0.041 s with them and 0.032 s
    without (best of 7); a day's items 0.0082 and 0.0059 s. The other columns keep both (row
    groups are pruned on ids and times)."""
    coded = [f.name for f in schema if not pa.types.is_large_string(f.type)]
    return {"compression": "zstd", "use_dictionary": coded, "write_statistics": coded}


def _detached(piece: pa.RecordBatch) -> pa.RecordBatch:
    """A slice that is to wait in memory, copied if it would otherwise hold its whole batch.

    A slice shares its batch's buffers: a day's few rows, waiting for more (a backfill's
    thousand day partitions), would keep every batch they came from alive while counting only
    their own bytes against ``max_buffered_bytes``. Measured on a first export of 303 k items
    over 1,083 days (bench/export_end_to_end.py --phases): its items phase peaked at 484 MB RSS
    with the slices kept, 426 MB with them copied, in the same time.
    """
    if piece.get_total_buffer_size() <= 2 * piece.nbytes:
        return piece
    return piece.take(pa.array(np.arange(piece.num_rows, dtype=np.int64)))


class _RotatingFile:
    """Part files of one directory: one open file at a time, rotated past a size threshold."""

    def __init__(
        self,
        fs: pafs.FileSystem,
        directory: str,
        partition: str,
        schema: pa.Schema,
        next_name: Callable[[], str],
        max_file_bytes: int,
        on_file: Callable[[WrittenFile], None],
        keep_columns: tuple[str, ...] = (),
        keep_distinct: tuple[str, ...] = (),
    ) -> None:
        self._fs, self._dir, self._partition, self._schema = fs, directory, partition, schema
        self._next_name, self._max_file_bytes, self._on_file = next_name, max_file_bytes, on_file
        self._keep, self._keep_distinct = keep_columns, keep_distinct
        self._sink: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._tmp = self._final = ""
        self._rows = 0
        self._kept: dict[str, list[pa.Array]] = {}
        self._distinct: dict[str, list[pa.Array]] = {}
        self._reserved = ""
        # The last write or close handed to a background thread (DatasetWriter write_threads):
        # the next one waits for it, so one file's row groups are written in order.
        self.running: Future[None] | None = None

    def reserve_name(self) -> None:
        """Draw the name of the file the next row group opens, if it opens one (called in the
        writer's own thread, so that file names do not depend on which thread writes first)."""
        if self._writer is None and not self._reserved:
            self._reserved = self._next_name()

    def write_row_group(self, table: pa.Table) -> None:
        if self._writer is None:
            self._fs.create_dir(self._dir, recursive=True)
            name, self._reserved = self._reserved or self._next_name(), ""
            self._final = join(self._dir, name)
            self._tmp = temp_name(self._final)
            self._sink = self._fs.open_output_stream(self._tmp)
            self._writer = pq.ParquetWriter(
                self._sink, self._schema, **parquet_options(self._schema)
            )
            self._rows = 0
            self._kept = {name: [] for name in self._keep}
            self._distinct = {name: [] for name in self._keep_distinct}
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self._rows += table.num_rows
        for name, kept in self._kept.items():
            kept.extend(table.column(name).chunks)
        for name, seen in self._distinct.items():
            seen.append(pc.unique(table.column(name).drop_null()))
        if self._sink.tell() >= self._max_file_bytes:
            self.close()

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        size = int(self._sink.tell())
        self._sink.close()
        self._writer = None
        fsync_file(self._fs, self._tmp)
        self._fs.move(self._tmp, self._final)
        columns = {
            name: pa.chunked_array(chunks, self._schema.field(name).type)
            for name, chunks in self._kept.items()
        }
        distinct = {
            name: pc.unique(pa.chunked_array(seen, self._schema.field(name).type))
            for name, seen in self._distinct.items()
        }
        self._kept, self._distinct = {}, {}
        self._on_file(
            WrittenFile(self._final, self._partition, self._rows, size, columns, distinct)
        )

    def discard(self) -> None:
        """Drop a half-written file (after an error)."""
        if self._writer is None:
            return
        try:
            self._writer.close()
            self._sink.close()
        finally:
            self._writer = None
            self._kept, self._distinct = {}, {}
            with contextlib.suppress(FileNotFoundError):
                self._fs.delete_file(self._tmp)


class DatasetWriter:
    """Streams record batches of one dataset into Parquet part files under ``base_dir``.

    Files are named ``<file_prefix>-<n>.parquet``, written under a hidden temporary name and
    renamed when closed, zstd-compressed, one row group per (bounded) batch, rotated past
    ``max_file_bytes``. With ``partition_by_date`` the rows go to ``YYYY-MM-DD/``
    sub-directories by the UTC date of that timestamp column; ``partition`` puts every file in
    one fixed sub-directory instead (e.g. ``job-<id>``, see ``layout.id_partition``).
    ``keep_columns`` (those of the schema's that it names) are kept in memory with each
    ``WrittenFile`` (``columns``), and the distinct values of ``keep_distinct`` (``distinct``):
    a staged job's ids, which its commit would otherwise read back several times.

    ``write_threads`` > 0 encodes, compresses, syncs and renames the date partitions' files on
    that many background threads while the caller goes on (a backfill's thousand day files;
    Parquet's encoder and fsync release the GIL): a file's own row groups still go in order,
    file names are drawn in the caller's order, and an error on a thread is raised by the next
    call (at the latest by ``close``). ``on_file`` may then be called from those threads.
    """

    def __init__(
        self,
        fs: pafs.FileSystem,
        base_dir: str,
        dataset: str,
        schema: pa.Schema,
        *,
        file_prefix: str,
        partition_by_date: str | None = None,
        partition: str = "",
        counter: Iterator[int] | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_row_group_rows: int = DEFAULT_MAX_ROW_GROUP_ROWS,
        max_row_group_bytes: int = DEFAULT_MAX_ROW_GROUP_BYTES,
        min_row_group_rows: int = DEFAULT_MIN_ROW_GROUP_ROWS,
        max_open_files: int = DEFAULT_MAX_OPEN_FILES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        on_file: Callable[[WrittenFile], None] | None = None,
        keep_columns: Iterable[str] = (),
        keep_distinct: Iterable[str] = (),
        write_threads: int = 0,
    ) -> None:
        """Prepare a writer; nothing is created until the first row arrives."""
        self.fs, self.base_dir, self.dataset, self.schema = fs, base_dir, dataset, schema
        self._prefix = file_prefix
        self._by_date = partition_by_date
        self._fixed = partition
        self._counter = counter if counter is not None else itertools.count()
        self._max_file_bytes = max_file_bytes
        self._max_rows, self._max_bytes = max_row_group_rows, max_row_group_bytes
        self._min_rows = min_row_group_rows
        self._max_open = max_open_files
        self._max_buffered = max_buffered_bytes
        self._user_on_file = on_file
        self._keep = tuple(name for name in keep_columns if name in schema.names)
        self._keep_distinct = tuple(name for name in keep_distinct if name in schema.names)
        self._files: OrderedDict[str, _RotatingFile] = OrderedDict()  # LRU of open partitions
        self._pending: dict[str, list[pa.RecordBatch]] = {}
        self._pending_rows: dict[str, int] = {}
        self._buffered = 0
        self.written: list[WrittenFile] = []
        self.rows = 0
        self._pool = ThreadPoolExecutor(write_threads) if write_threads > 0 else None
        self._running: deque[tuple[Future[None], int]] = deque()
        self._running_bytes = 0
        self._max_running = 2 * max(1, write_threads)
        self._evicted: list[_RotatingFile] = []  # closed in the background (discard's to drop)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def write_batches(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Write every batch; returns the number of rows written by this call."""
        before = self.rows
        for batch in batches:
            self.write_batch(batch)
        return self.rows - before

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Check one batch's schema and write it (buffered only for small date slices)."""
        check_schema(self.dataset, self.schema, batch)
        if batch.num_rows == 0:
            return
        # Stamp the dataset's schema (with its version metadata) on what is written.
        batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        self.rows += batch.num_rows
        if self._by_date is None:
            for piece in bounded_slices(batch, self._max_rows, self._max_bytes):
                self._file(self._fixed).write_row_group(pa.Table.from_batches([piece]))
            return
        for partition, piece in date_partitions(batch, self._by_date):
            rows = self._pending_rows.get(partition, 0) + piece.num_rows
            waits = rows < self._min_rows
            kept = _detached(piece) if waits else piece
            self._pending.setdefault(partition, []).append(kept)
            self._pending_rows[partition] = rows
            self._buffered += kept.nbytes  # what _flush takes off again
            if self._pending_rows[partition] >= self._min_rows:
                self._flush(partition)
        while self._buffered > self._max_buffered and self._pending:
            largest = max(self._pending, key=lambda p: self._pending_rows[p])
            self._flush(largest)

    def close(self) -> list[WrittenFile]:
        """Flush buffers, finish every open file; returns all files this writer wrote."""
        try:
            for partition in list(self._pending):
                self._flush(partition)
            while self._files:
                _, handle = self._files.popitem(last=False)
                self._run(handle, handle.close, 0, writes=False)
            self._wait(0)
        except BaseException:
            self.discard()  # the files still open (and the threads) go with the error
            raise
        self._evicted.clear()
        if self._pool is not None:
            self._pool.shutdown()
        return list(self.written)

    def discard(self) -> None:
        """Abandon open files after an error (finished files are left to the caller)."""
        self._pending.clear()
        self._pending_rows.clear()
        if self._pool is not None:
            # Let what runs finish (its errors are this one's consequences), then drop it all.
            for future, _ in self._running:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._running.clear()
        for handle in self._evicted:
            handle.discard()  # nothing if its close ran
        self._evicted.clear()
        while self._files:
            _, handle = self._files.popitem(last=False)
            handle.discard()

    def _run(
        self, handle: _RotatingFile, work: Callable[[], None], size: int, *, writes: bool
    ) -> None:
        """Do ``work`` on ``handle`` now, or on a background thread after the handle's
        previous work (write_threads), waiting first if too much is on its way."""
        if self._pool is None:
            work()
            return
        if handle.running is not None:
            handle.running.result()
        if writes:
            handle.reserve_name()
        self._wait(self._max_running - 1)
        future = self._pool.submit(work)
        handle.running = future
        self._running.append((future, size))
        self._running_bytes += size

    def _wait(self, most: int) -> None:
        """Wait for the oldest background work until at most ``most`` are on their way and
        their rows under half the buffer; raise the first error."""
        while self._running and (
            len(self._running) > most or self._running_bytes > self._max_buffered // 2
        ):
            future, size = self._running.popleft()
            self._running_bytes -= size
            future.result()

    def _flush(self, partition: str) -> None:
        pieces = self._pending.pop(partition)
        self._pending_rows.pop(partition)
        self._buffered -= sum(p.nbytes for p in pieces)
        table = pa.Table.from_batches(pieces, schema=self.schema).combine_chunks()
        for batch in table.to_batches():
            for piece in bounded_slices(batch, self._max_rows, self._max_bytes):
                handle = self._file(partition)
                group = pa.Table.from_batches([piece])
                write = functools.partial(handle.write_row_group, group)
                self._run(handle, write, piece.nbytes, writes=True)

    def _file(self, partition: str) -> _RotatingFile:
        handle = self._files.get(partition)
        if handle is not None:
            self._files.move_to_end(partition)
            return handle
        if len(self._files) >= self._max_open:
            # Bound open files: finish the least recently used partition's file; a later row
            # for it starts a new part file.
            _, oldest = self._files.popitem(last=False)
            if self._pool is not None:
                self._evicted.append(oldest)
            self._run(oldest, oldest.close, 0, writes=False)
        handle = _RotatingFile(
            self.fs,
            posixpath.join(self.base_dir, partition) if partition else self.base_dir,
            partition,
            self.schema,
            lambda: f"{self._prefix}-{next(self._counter)}.parquet",
            self._max_file_bytes,
            self._finished,
            self._keep,
            self._keep_distinct,
        )
        self._files[partition] = handle
        return handle

    def _finished(self, written: WrittenFile) -> None:
        self.written.append(written)
        if self._user_on_file is not None:
            self._user_on_file(written)


def write_parquet_file(
    data: pa.Table | pa.RecordBatchReader,
    path: str | os.PathLike[str],
    *,
    compression: str = "snappy",
) -> int:
    """Write a table, or stream a reader's batches one row group each, into one local Parquet
    file; the rows written. The caller makes it atomic (a temporary directory renamed)."""
    if isinstance(data, pa.Table):
        pq.write_table(data, path, compression=compression)
        return int(data.num_rows)
    rows = 0
    with pq.ParquetWriter(path, data.schema, compression=compression) as writer:
        for batch in data:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows
