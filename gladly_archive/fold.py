"""Fold older rows into per-customer buckets, so erasing a customer rewrites one file per dataset.

Recent data is written where writing is cheap (items by day, transcripts in one directory,
customers by job, enrichment by run); a customer's rows are then spread over every day and job
they appear in, and erasing a hundred customers rewrites half the archive. ``fold_archive``
moves everything older than a cut-off day into ``<dataset>/folded/<bucket>/`` (see
``layout.folded_dir``): one bucket of customers per file, rows in time order. A fold is a
commit like an export's: files staged, a durable intent, renames, deletions, crash-safe through
``recover_staging``; the customer file index follows it.

The number of buckets is chosen at the first fold from the number of customers (about
``TARGET_CUSTOMERS_PER_BUCKET`` a bucket) and kept in ``_layout.json`` with the day folded
through. Rows are shuffled to their buckets through spill files of bounded size, so a first
fold of years of data needs memory for a slice of it, not all of it.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.catalog import refresh_catalog
from gladly_archive.commit import CommitIntent, execute_intent, recover_staging, write_intent
from gladly_archive.folded_keys import build_folded_keys, drop_folded_keys
from gladly_archive.fs import exists, join, list_dirs, list_files
from gladly_archive.layout import (
    FOLDED_DATASETS,
    INDEX_DIR,
    STAGING_DIR,
    Layout,
    customer_bucket,
    day_of_partition,
    folded_dir,
    folded_partition,
    read_layout,
    relative,
    write_layout,
)
from gladly_archive.merge import CommitPlanner
from gladly_archive.schemas import DATASETS, SCHEMA_VERSION
from gladly_archive.transcripts import (
    RECENT_PARTITION,
    RECENT_TRANSCRIPT_ROW_GROUP_BYTES,
    fresh_since,
    is_recent_partition,
    recent_partitions,
    writer_limits,
)
from gladly_archive.writer import DatasetWriter, WrittenFile

__all__ = [
    "FOLD_EVERY_DAYS",
    "KEEP_DAYS",
    "FoldReport",
    "choose_buckets",
    "fold_archive",
    "fold_due",
    "recent_days",
]

log = logging.getLogger(__name__)

TARGET_CUSTOMERS_PER_BUCKET = 500
MIN_BUCKETS, MAX_BUCKETS = 4, 4096
KEEP_DAYS = 31  # the recent tier: what exports touch and analysts query most
FOLD_EVERY_DAYS = 31  # fold once the oldest recent day is this much older than KEEP_DAYS
# In-memory size of the rows one shuffle slice holds (Parquet expands about this much). A slice
# is read, sorted and written at once, so this bounds the fold's memory: 256 MB peaked at 1.09 GB
# RSS in a first export of 300 k items, 64 MB at 866 MB (bench/export_end_to_end.py --phases);
# since then (jemalloc, staged writes that pin no batch), 64 MB at 517 MB, 32 MB at 456 MB, in
# the same time.
_SLICE_BYTES = 32 << 20
# Files that leave whole are read this many ahead, on as many threads: a first fold of three
# years reads a thousand day files (bench/export_end_to_end.py --phases; the whole fold took
# 10.1 s reading one at a time, 8.7 s two ahead, 8.1 s four ahead, peak RSS 266, 281 and
# 288 MB; Arrow's dataset scanner, 8.6 s and 493 MB). Files up to _READ_WHOLE_BYTES only: a
# bigger one is read a batch at a time when its turn comes.
_READ_AHEAD_FILES = 4
_READ_WHOLE_BYTES = 8 << 20
# Buckets merged, sorted and written at once: the machines we measure on have two cores.
_BUCKET_WRITERS = 2
_EXPANSION = 5
_BUCKET = "__bucket"

# The column that says how old a row is, and the order rows keep inside a bucket.
_AGE = {
    "items": "timestamp",
    "transcripts": "last_timestamp",
    "customers": "archived_at",
    "conversations": "fetched_at",
    "customer_profiles": "fetched_at",
}
_ORDER = {
    "items": ["timestamp", "item_id"],
    "transcripts": ["first_timestamp", "conversation_id"],
    "customers": ["archived_at", "customer_id"],
    "conversations": ["fetched_at", "conversation_id"],
    "customer_profiles": ["fetched_at", "customer_id"],
}


def choose_buckets(customers: int) -> int:
    """A power of two giving about TARGET_CUSTOMERS_PER_BUCKET customers a bucket."""
    wanted = max(1, math.ceil(customers / TARGET_CUSTOMERS_PER_BUCKET))
    return int(min(MAX_BUCKETS, max(MIN_BUCKETS, 1 << (wanted - 1).bit_length())))


@dataclass
class FoldReport:
    """What one fold did, per dataset of FOLDED_DATASETS."""

    through: date
    buckets: int
    rows_folded: dict[str, int] = field(default_factory=dict)
    files_written: dict[str, int] = field(default_factory=dict)
    files_replaced: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def recent_days(archive: Archive) -> list[date]:
    """The days that have items in the recent tier, oldest first."""
    base = archive.path("items")
    days = []
    for name in list_dirs(archive.fs, base):
        day = day_of_partition(name)
        if day is not None and list_files(archive.fs, join(base, name)):
            days.append(day)
    return sorted(days)


def _remove_empty_dirs(fs: pafs.FileSystem, directories: set[str]) -> None:
    """Drop directories a fold emptied (readers skip them anyway; this keeps listings short)."""
    for directory in sorted(directories):
        # On object stores an emptied "directory" may already be gone.
        selector = pafs.FileSelector(directory, allow_not_found=True)
        if exists(fs, directory) and not fs.get_file_info(selector):
            fs.delete_dir(directory)


def fold_due(
    archive: Archive,
    today: date,
    *,
    keep_days: int = KEEP_DAYS,
    every_days: int = FOLD_EVERY_DAYS,
) -> date | None:
    """The day to fold through if the recent tier has grown past ``keep_days + every_days``
    (so folds happen about every ``every_days``), else None."""
    days = recent_days(archive)
    if not days or days[0] > today - timedelta(days=keep_days + every_days):
        return None
    return today - timedelta(days=keep_days)


# progress(FOLD_PHASE, steps done, steps): one step per folded dataset, then the commit.
FOLD_PHASE = "fold (datasets)"


def fold_archive(
    archive: Archive,
    through: date,
    *,
    buckets: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FoldReport:
    """Move every row dated on or before ``through`` into the folded tier (see module doc).

    ``buckets`` fixes the bucket count at the first fold (default: from the number of
    customers); a later fold must keep it (ValueError otherwise). Takes the writer lock and
    finishes any interrupted commit or fold first. Killed at any point, the archive holds each
    row exactly once (the next writer rolls the fold forward or discards it). `progress`
    hears its steps (FOLD_PHASE).
    """
    started = time.perf_counter()
    lock = archive.lock()
    lock.acquire()
    try:
        recover_staging(archive.fs, archive.root, archive.crash_hook)
        layout = read_layout(archive.fs, archive.root)
        if buckets is not None and layout.buckets is not None and buckets != layout.buckets:
            raise ValueError(
                f"this archive is folded into {layout.buckets} buckets; a fold cannot change "
                f"that (asked for {buckets}). Leave --buckets out."
            )
        if buckets is not None and (buckets < 1 or buckets & (buckets - 1)):
            raise ValueError(f"buckets must be a power of two, got {buckets}")
        count = layout.buckets or buckets or choose_buckets(_count_customers(archive))
        report = FoldReport(through=through, buckets=count)
        # The record goes first: "folded through" is an upper bound that commits use to decide
        # where to look, so it may run ahead of a fold that is discarded, never behind one.
        newest = max(d for d in (through, layout.folded_through) if d is not None)
        # recover_staging checked the archive is at this release's schema version.
        write_layout(
            archive.fs,
            archive.root,
            Layout(buckets=count, folded_through=newest, schema_version=SCHEMA_VERSION),
        )
        # Only a fold adds conversations to the folded tier: their keys go before its first
        # write and come back after its last (a fold killed between leaves no key file).
        drop_folded_keys(archive.fs, archive.root)
        if archive.crash_hook is not None:
            archive.crash_hook("fold:keys_dropped")
        _Fold(archive, through, count, report, progress).run()
        build_folded_keys(archive.fs, archive.root, archive.crash_hook)
    finally:
        lock.release()
    if any(report.rows_folded.values()):
        refresh_catalog(archive.fs, archive.root)
    report.seconds = time.perf_counter() - started
    log.info(
        "fold through %s into %d buckets: rows %s; files written %s, replaced %s",
        through,
        report.buckets,
        {k: v for k, v in report.rows_folded.items() if v},
        {k: v for k, v in report.files_written.items() if v},
        {k: v for k, v in report.files_replaced.items() if v},
    )
    return report


def _count_customers(archive: Archive) -> int:
    """About how many customers the archive holds, to size its buckets (choose_buckets): the
    distinct customers of the customer-file index, which lists every data file's customers in a
    few files (rows of files replaced since may count a customer erased: a count a little high
    only makes buckets a little smaller); without an index, of every items and customers file."""
    paths = list_files(archive.fs, archive.path(INDEX_DIR))
    if not paths:
        paths = list_files(archive.fs, archive.path("customers"), recursive=True)
        paths += list_files(archive.fs, archive.path("items"), recursive=True)
    if not paths:
        return 0
    ids = [pq.read_table(p, columns=["customer_id"], filesystem=archive.fs)[0] for p in paths]
    chunks = [chunk for column in ids for chunk in column.chunks]
    return int(pc.count_distinct(pa.chunked_array(chunks, pa.string())).as_py())


class _Fold:
    """One fold: selects the rows leaving the recent tier, shuffles them into buckets, commits."""

    def __init__(
        self,
        archive: Archive,
        through: date,
        buckets: int,
        report: FoldReport,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.archive, self.fs, self.root = archive, archive.fs, archive.root
        self.progress = progress
        self.through, self.buckets, self.report = through, buckets, report
        stamp = archive.clock().strftime("%Y%m%dT%H%M%S")
        self.fold_id = f"fold-{stamp}-{uuid.uuid4().hex[:8]}"
        self.staging = join(self.root, STAGING_DIR, self.fold_id)
        self.staged: dict[str, list[WrittenFile]] = {}
        self.deletes: list[str] = []
        self._counters: dict[str, Iterator[int]] = {}
        # The first instant of the recent transcripts' fresh rows (set by _leaving).
        self._fresh_since: datetime | None = None

    def _hook(self, point: str) -> None:
        if self.archive.crash_hook is not None:
            self.archive.crash_hook(point)

    def _writer(self, dataset: str, partition: str) -> DatasetWriter:
        def on_file(written: WrittenFile) -> None:
            self.staged.setdefault(dataset, []).append(written)
            self._hook(f"fold:staged:{dataset}")

        file_bytes, group_bytes = writer_limits(dataset, partition, self.archive.max_file_bytes)
        recent = dataset == "transcripts" and is_recent_partition(partition)
        return DatasetWriter(
            self.fs,
            join(self.staging, dataset),
            dataset,
            DATASETS[dataset],
            file_prefix=f"part-{self.fold_id}",
            partition=partition,
            # one count a dataset: a partition written by two writers names no file twice
            counter=self._counters.setdefault(dataset, itertools.count()),
            on_file=on_file,
            max_file_bytes=file_bytes,
            max_row_group_bytes=group_bytes,
            # The recent tier's key file covers what a fold writes there (recent_keys).
            keep_distinct=("conversation_id",) if recent else (),
        )

    def _step(self, done: int) -> None:
        if self.progress is not None:
            self.progress(FOLD_PHASE, done, len(FOLDED_DATASETS) + 1)

    def run(self) -> None:
        self.fs.create_dir(self.staging, recursive=True)
        for done, dataset in enumerate(FOLDED_DATASETS):
            self._step(done)
            self.report.rows_folded[dataset] = 0
            self.report.files_written[dataset] = 0
            self.report.files_replaced[dataset] = 0
            self._fold(dataset)
        self._step(len(FOLDED_DATASETS))
        self._commit()
        self._step(len(FOLDED_DATASETS) + 1)

    def _commit(self) -> None:
        if not self.deletes and not self.staged:
            self.fs.delete_dir(self.staging)
            return
        planner = CommitPlanner(
            fs=self.fs,
            root=self.root,
            staging_root=self.staging,
            job_id=self.fold_id,
            staged=self.staged,
            make_writer=self._writer,
            compact_below_bytes=self.archive.compact_below_bytes,
            deletes=self.deletes,
        )
        planner.update_index(clean=True)
        moves = [
            (relative(self.root, f.path), relative(self.staging, f.path))
            for files in self.staged.values()
            for f in files
        ]
        intent = CommitIntent(
            job_id=self.fold_id,
            moves=moves,
            deletes=[relative(self.root, p) for p in planner.deletes],
            manifest={},
            summary={"fold_through": self.through.isoformat(), "buckets": self.buckets},
        )
        write_intent(self.fs, self.root, intent)
        self._hook("fold:intent_written")
        execute_intent(self.fs, self.root, intent, self.archive.crash_hook)
        _remove_empty_dirs(self.fs, {join(self.root, p).rsplit("/", 1)[0] for p in intent.deletes})
        planner.save_recent_keys()

    # -- choosing what leaves ---------------------------------------------------------------

    def _is_old(self, column: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Rows dated on or before the cut-off day (UTC)."""
        days = pc.cast(column, pa.date32())
        return pc.fill_null(pc.less_equal(days, pa.scalar(self.through, pa.date32())), False)

    def _leaving(self, dataset: str) -> tuple[list[str], list[str]]:
        """(files that leave whole, recent transcript files that lose some rows)."""
        base = self.archive.path(dataset)
        if dataset == "items":
            whole = []
            for name in list_dirs(self.fs, base):
                day = day_of_partition(name)
                if day is not None and day <= self.through:
                    whole += list_files(self.fs, join(base, name))
            return whole, []
        if dataset == "transcripts":
            split = []
            newest = None
            for name in recent_partitions(list_dirs(self.fs, base)):
                for path in list_files(self.fs, join(base, name)):
                    ages = pq.read_table(path, columns=[_AGE[dataset]], filesystem=self.fs)[0]
                    latest = pc.max(ages).as_py()
                    if latest is not None and (newest is None or latest > newest):
                        newest = latest
                    if pc.any(self._is_old(ages)).as_py():
                        split.append(path)
            self._fresh_since = None if newest is None else fresh_since(newest)
            return [], split
        # Per-job and per-run directories leave whole once their newest row is old enough.
        whole = []
        for name in list_dirs(self.fs, base):
            if name == folded_dir(dataset):
                continue
            paths = list_files(self.fs, join(base, name))
            if not paths:
                continue
            ages = [pq.read_table(p, columns=[_AGE[dataset]], filesystem=self.fs)[0] for p in paths]
            newest = pc.max(pa.chunked_array([c for a in ages for c in a.chunks])).as_py()
            if newest is not None and newest.date() <= self.through:
                whole += paths
        return whole, []

    def _batches(self, path: str) -> Iterator[pa.RecordBatch]:
        with self.fs.open_input_file(path) as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=64 * 1024)

    def _read_ahead(self, paths: list[str]) -> Iterator[Iterator[pa.RecordBatch]]:
        """Each file's batches, in order, read _READ_AHEAD_FILES files ahead on that many
        threads (Parquet decoding releases the GIL). A file bigger than _READ_WHOLE_BYTES is
        read a batch at a time when its turn comes instead (memory: a few small files)."""
        sizes = [i.size or 0 for i in self.fs.get_file_info(paths)] if paths else []

        def whole(path: str) -> pa.Table:
            return pq.read_table(path, filesystem=self.fs, use_threads=False)

        with ThreadPoolExecutor(max_workers=_READ_AHEAD_FILES) as pool:
            ahead: deque[Future[pa.Table] | str] = deque()
            for path, size in zip(paths, sizes, strict=True):
                ahead.append(pool.submit(whole, path) if size <= _READ_WHOLE_BYTES else path)
                if len(ahead) > _READ_AHEAD_FILES:
                    yield self._batches_of(ahead.popleft())
            while ahead:
                yield self._batches_of(ahead.popleft())

    def _batches_of(self, entry: Future[pa.Table] | str) -> Iterator[pa.RecordBatch]:
        if isinstance(entry, str):
            return self._batches(entry)
        return iter(entry.result().to_batches(max_chunksize=64 * 1024))

    # -- the shuffle ------------------------------------------------------------------------

    def _fold(self, dataset: str) -> None:
        whole, split = self._leaving(dataset)
        if not whole and not split:
            return
        sizes = [i.size or 0 for i in self.fs.get_file_info(whole + split)]
        slices = max(1, math.ceil(sum(sizes) * _EXPANSION / _SLICE_BYTES))
        per_slice = math.ceil(self.buckets / slices)
        spill = _Spill(self.fs, join(self.staging, "_spill", dataset), slices)
        moved = 0
        for batch in _gathered(self._read_ahead(whole)):
            moved += spill.add(self._tagged(batch, per_slice))
        self.deletes.extend(whole)
        if split:
            moved += self._split_recent(dataset, split, spill, per_slice)
        spill.close()
        self.report.rows_folded[dataset] = moved
        self.report.files_replaced[dataset] += len(whole) + len(split)
        for number in range(slices):
            rows = spill.read(number)
            if rows is None:
                continue
            self._write_buckets(dataset, rows)
        self._hook(f"fold:shuffled:{dataset}")

    def _split_recent(self, dataset: str, paths: list[str], spill: _Spill, per_slice: int) -> int:
        """Spill the old rows of these recent transcript files; write the rows that stay to the
        recent tier, those of its last FRESH_TRANSCRIPT_DAYS (the conversations commits
        continue) in files of their own, a day of last activity at a time (``_ByDay``), so that
        a commit rewrites those small files to drop their old rows, not the big files of older
        rows. Streamed a batch at a time. Returns the rows spilled."""
        moved = 0
        older = self._writer(dataset, RECENT_PARTITION)
        fresh = _ByDay(lambda: self._writer(dataset, RECENT_PARTITION), _AGE[dataset])
        since = None
        if self._fresh_since is not None:
            since = pa.scalar(self._fresh_since, DATASETS[dataset].field(_AGE[dataset]).type)
        for path in paths:
            for batch in self._batches(path):
                age = batch.column(_AGE[dataset])
                old = self._is_old(age)
                moved += spill.add(self._tagged(batch.filter(old), per_slice))
                staying = batch.filter(pc.invert(old))
                if since is None:
                    older.write_batch(staying)
                    continue
                is_fresh = pc.greater_equal(staying.column(_AGE[dataset]), since)
                older.write_batch(staying.filter(pc.invert(is_fresh)))
                fresh.write_batch(staying.filter(is_fresh))
            self.deletes.append(path)
        older.close()
        fresh.close()
        return moved

    def _tagged(self, batch: pa.RecordBatch, per_slice: int) -> tuple[pa.RecordBatch, np.ndarray]:
        """The batch with its rows' bucket, and each row's shuffle slice."""
        buckets = customer_bucket(batch.column("customer_id"), self.buckets)
        tagged = batch.append_column(_BUCKET, pa.array(buckets.astype(np.int32)))
        return tagged, buckets // per_slice

    def _write_buckets(self, dataset: str, rows: pa.Table) -> None:
        """Merge one slice's rows with the folded files of their buckets; write each bucket,
        _BUCKET_WRITERS at a time (sorting and encoding release the GIL)."""
        base = self.archive.path(dataset)
        bucket_column = np.asarray(rows.column(_BUCKET).combine_chunks())
        rows = rows.drop_columns([_BUCKET])
        order = np.argsort(bucket_column, kind="stable")
        ordered = bucket_column[order]
        rows = rows.take(pa.array(order))
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        ends = np.concatenate((starts[1:], [len(ordered)]))
        work = []
        for start, end in zip(starts, ends, strict=True):
            partition = folded_partition(dataset, int(ordered[start]))
            existing = list_files(self.fs, join(base, partition))
            self.deletes.extend(existing)
            self.report.files_replaced[dataset] += len(existing)
            self.report.files_written[dataset] += 1
            work.append((partition, rows.slice(int(start), int(end - start)), existing))
        with ThreadPoolExecutor(max_workers=_BUCKET_WRITERS) as pool:
            # A failure (or a test's crash) stops the slice: the rest are cancelled, the
            # running ones finish, and the first error is raised.
            done = [pool.submit(self._write_bucket, dataset, *each) for each in work]
            try:
                for future in done:
                    future.result()
            finally:
                for future in done:
                    future.cancel()

    def _write_bucket(
        self, dataset: str, partition: str, rows: pa.Table, existing: list[str]
    ) -> None:
        parts = [rows]
        parts += [pq.read_table(p, filesystem=self.fs, schema=DATASETS[dataset]) for p in existing]
        merged = pa.concat_tables(parts).sort_by([(c, "ascending") for c in _ORDER[dataset]])
        with self._writer(dataset, partition) as writer:
            writer.write_batches(merged.combine_chunks().to_batches())


# A day's file is a few hundred rows: the shuffle tags and spills them this many at a time (or
# this many bytes), not a file at a time (a first fold of three years: 1,083 small writes a
# slice file otherwise).
_GATHER_ROWS = 64 * 1024
_GATHER_BYTES = 8 << 20


def _gathered(files: Iterator[Iterator[pa.RecordBatch]]) -> Iterator[pa.RecordBatch]:
    """The files' batches, small ones combined up to _GATHER_ROWS rows or _GATHER_BYTES."""
    pending: list[pa.RecordBatch] = []
    rows = size = 0
    for batches in files:
        for batch in batches:
            if pending and (rows + batch.num_rows > _GATHER_ROWS or size >= _GATHER_BYTES):
                yield pa.concat_batches(pending)
                pending, rows, size = [], 0, 0
            pending.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
    if pending:
        yield pa.concat_batches(pending)


class _ByDay:
    """Writes the recent tier's fresh rows in files of one UTC day of last activity each: the
    next commits continue mostly the newest days' conversations, and so rewrite those days'
    files, not every fresh file. A day's rows wait until they fill a row group
    (RECENT_TRANSCRIPT_ROW_GROUP_BYTES): each batch of the files a fold reads holds a few of
    them, and a row group a piece made files of ~100-row groups, slower to read and to rewrite.
    Memory: under a row group a day, over FRESH_TRANSCRIPT_DAYS + 1 days."""

    def __init__(self, make_writer: Callable[[], DatasetWriter], column: str) -> None:
        self._make, self._column = make_writer, column
        self._writers: dict[int, DatasetWriter] = {}
        self._pending: dict[int, list[pa.RecordBatch]] = {}
        self._bytes: dict[int, int] = {}

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        days = pc.cast(batch.column(self._column), pa.date32()).cast(pa.int32())
        for day in sorted(set(days.to_pylist())):
            piece = batch.filter(pc.equal(days, day))
            self._pending.setdefault(day, []).append(piece)
            self._bytes[day] = self._bytes.get(day, 0) + piece.nbytes
            if self._bytes[day] >= RECENT_TRANSCRIPT_ROW_GROUP_BYTES:
                self._flush(day)

    def _flush(self, day: int) -> None:
        pieces = self._pending.pop(day)
        self._bytes.pop(day)
        if day not in self._writers:
            self._writers[day] = self._make()
        self._writers[day].write_batch(pa.concat_batches(pieces))

    def close(self) -> None:
        for day in sorted(self._pending):
            self._flush(day)
        for writer in self._writers.values():
            writer.close()


class _Spill:
    """Rows parked by shuffle slice in LZ4-compressed Arrow IPC files under the staging area."""

    def __init__(self, fs: pafs.FileSystem, directory: str, slices: int) -> None:
        self.fs, self.directory, self.slices = fs, directory, slices
        self._writers: dict[int, ipc.RecordBatchFileWriter] = {}
        self._sinks: dict[int, pa.NativeFile] = {}
        fs.create_dir(directory, recursive=True)

    def _path(self, number: int) -> str:
        return join(self.directory, f"{number:05d}.arrow")

    def add(self, tagged: tuple[pa.RecordBatch, np.ndarray]) -> int:
        batch, slice_of = tagged
        if batch.num_rows == 0:
            return 0
        order = np.argsort(slice_of, kind="stable")
        ordered = slice_of[order]
        batch = batch.take(pa.array(order))
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        ends = np.concatenate((starts[1:], [len(ordered)]))
        for start, end in zip(starts, ends, strict=True):
            number = int(ordered[start])
            writer = self._writers.get(number)
            if writer is None:
                sink = self.fs.open_output_stream(self._path(number))
                options = ipc.IpcWriteOptions(compression="lz4")
                writer = ipc.new_file(sink, batch.schema, options=options)
                self._writers[number], self._sinks[number] = writer, sink
            writer.write_batch(batch.slice(int(start), int(end - start)))
        return int(batch.num_rows)

    def close(self) -> None:
        for number, writer in self._writers.items():
            writer.close()
            self._sinks[number].close()

    def read(self, number: int) -> pa.Table | None:
        if number not in self._writers:
            return None
        with self.fs.open_input_file(self._path(number)) as handle:
            table = ipc.open_file(handle).read_all()
        self.fs.delete_file(self._path(number))
        return table
