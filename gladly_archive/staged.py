"""A staged job: writes kept out of sight until one commit makes them visible atomically."""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from gladly_archive.catalog import refresh_catalog
from gladly_archive.commit import (
    CommitIntent,
    CrashHook,
    execute_intent,
    manifest_record,
    read_intent,
    write_intent,
)
from gladly_archive.convert import QuarantinedLine
from gladly_archive.fs import ArchiveError, ArchiveLockedError, WriterLock, join, remove_dir
from gladly_archive.item_derive import derive_items
from gladly_archive.layout import INDEX_DIR, QUARANTINE_DIR, id_partition, relative
from gladly_archive.merge import KEPT_COLUMNS, KEPT_DISTINCT, CommitPlanner
from gladly_archive.reference_names import ConversationFacts, load_names
from gladly_archive.schemas import DATASETS, QUARANTINE, SCHEMA_VERSION, UTC_MICROS
from gladly_archive.transcripts import writer_limits
from gladly_archive.writer import DatasetWriter, WrittenFile


class ArchiveSettings(Protocol):
    """What a staged job needs of its archive (the archive itself, which stages jobs)."""

    fs: pafs.FileSystem
    root: str
    crash_hook: CrashHook | None
    clock: Callable[[], datetime]
    max_file_bytes: int
    compact_below_bytes: int


__all__ = ["CommitResult", "StagedJob"]

_QUARANTINE_BATCH_ROWS = 10_000
# The order moves run in: data first, the index that points at it last.
_MOVE_ORDER = ("items", "transcripts", "customers", "agents", "topics", QUARANTINE_DIR, INDEX_DIR)


@dataclass(frozen=True)
class CommitResult:
    """What one commit made visible."""

    job_id: str
    rows_by_dataset: dict[str, int]  # new rows per dataset (transcripts: conversations rebuilt)
    files_written: list[str]  # relative to the archive root
    duplicates_replaced: int  # item rows superseded by a later copy (in the archive or this job)
    conversations_rebuilt: int
    quarantined: int


# Day files a staged job's items writer finishes at once, besides the caller's thread.
STAGE_WRITE_THREADS = 2


def with_item_dates(batch: pa.RecordBatch) -> pa.RecordBatch:
    """An ITEMS batch whose ``date`` column is the UTC date of its ``timestamp``."""
    names = batch.schema.names
    if "date" not in names or "timestamp" not in names:
        return batch  # not ITEMS: the writer's schema check names what is wrong
    position = names.index("date")
    dates = pc.cast(batch.column("timestamp"), pa.date32())
    return batch.set_column(position, batch.schema.field("date").with_type(pa.date32()), dates)


class StagedJob:
    """One job's writes, invisible to readers until ``commit()`` makes them visible atomically.

    Holds the archive's writer lock from ``stage_job`` until commit or abort. Any exception out
    of a write or the commit releases the lock and leaves the staging area for ``recover()``
    (rolled forward if the commit intent was written, else discarded); the job is then unusable.
    Use it as a context manager to abort on error.
    """

    def __init__(
        self,
        archive: ArchiveSettings,
        job_id: str,
        lock: WriterLock,
        staging: str,
        download_dir: Path,
        own_download_dir: bool,
        meta: dict[str, Any],
    ) -> None:
        """Created by ``Archive.stage_job``."""
        self.archive = archive
        self.job_id = job_id
        self.staging_dir = staging
        self.download_dir = download_dir
        self._own_download_dir = own_download_dir
        self._lock = lock
        self._meta = meta
        self._state = "open"
        self._staged: dict[str, list[WrittenFile]] = {}
        self._counters: dict[str, Iterator[int]] = {}
        self._rows: dict[str, int] = {}
        self._files: list[dict[str, Any]] = []

    def __enter__(self) -> StagedJob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._state in ("open", "failed"):
            self.abort()

    @property
    def state(self) -> str:
        """open, failed, committed or aborted."""
        return self._state

    def _hook(self, point: str) -> None:
        if self.archive.crash_hook is not None:
            self.archive.crash_hook(point)

    def _writer(self, dataset: str, partition: str, *, by_date: str | None = None) -> DatasetWriter:
        def on_file(written: WrittenFile) -> None:
            self._staged.setdefault(dataset, []).append(written)
            self._hook(f"staged:{dataset}")

        file_bytes, group_bytes = writer_limits(dataset, partition, self.archive.max_file_bytes)
        return DatasetWriter(
            self.archive.fs,
            join(self.staging_dir, dataset),
            dataset,
            DATASETS[dataset],
            file_prefix=f"part-{self.job_id}",
            partition_by_date=by_date,
            partition=partition,
            counter=self._counters.setdefault(dataset, itertools.count()),
            on_file=on_file,
            max_file_bytes=file_bytes,
            max_row_group_bytes=group_bytes,
            # The ids its commit looks at (merge.CommitPlanner), kept rather than read back:
            # a backfill stages a file a day, a thousand of them for three years.
            keep_columns=KEPT_COLUMNS,
            keep_distinct=KEPT_DISTINCT,
            # A backfill's thousand day files are finished two at a time, the next rows
            # parsed meanwhile (bench/export_end_to_end.py --phases).
            write_threads=STAGE_WRITE_THREADS if by_date else 0,
        )

    def _require_open(self) -> None:
        if self._state != "open":
            raise ArchiveError(f"staged job {self.job_id} is {self._state}; stage it again")

    @contextlib.contextmanager
    def _failing_releases_lock(self) -> Iterator[None]:
        self._require_open()
        try:
            yield
        except BaseException:
            self._state = "failed"
            self._lock.release()
            raise

    def _write(
        self, dataset: str, batches: Iterable[pa.RecordBatch], by_date: str | None = None
    ) -> int:
        with self._failing_releases_lock():
            partition = "" if by_date else id_partition(dataset, self.job_id)
            with self._writer(dataset, partition, by_date=by_date) as writer:
                rows = writer.write_batches(batches)
        self._rows[dataset] = self._rows.get(dataset, 0) + rows
        return rows

    def write_items(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Stage items (schema CONVERTED_ITEMS, or ITEMS) into day partitions; returns rows.

        The derived columns (channel, names, plain text: gladly_archive.item_derive) are filled
        here from what the archive knows now and the agents and topics this job staged before
        its items. The ``date`` column is set from ``timestamp`` (its UTC date), so it always
        agrees with the directory the row lands in, whatever the caller put there.
        """
        fs, root = self.archive.fs, self.archive.root
        names = load_names(
            fs,
            root,
            job_agents=[f.path for f in self._staged.get("agents", [])],
            job_topics=[f.path for f in self._staged.get("topics", [])],
            conversations=False,
        )
        facts = ConversationFacts(fs, root)

        def derived(batch: pa.RecordBatch) -> pa.RecordBatch:
            if "conversation_id" not in batch.schema.names:
                return batch  # the writer's schema check names what is wrong
            known = facts.lookup(batch.column("conversation_id"))
            return derive_items(with_item_dates(batch), replace(names, conversations=known))

        return self._write("items", (derived(b) for b in batches), by_date="timestamp")

    def write_customers(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Stage customer records (schema CUSTOMERS); returns rows written."""
        return self._write("customers", batches)

    def write_agents(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Stage agents (schema AGENTS); returns rows written."""
        return self._write("agents", batches)

    def write_topics(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Stage topics (schema TOPICS); returns rows written."""
        return self._write("topics", batches)

    def write_quarantine(self, file_name: str, lines: Iterable[QuarantinedLine]) -> int:
        """Stage the lines of ``file_name`` that could not be read; returns lines written."""
        now = self.archive.clock()

        def batches() -> Iterator[pa.RecordBatch]:
            chunk = iter(lines)
            while block := list(itertools.islice(chunk, _QUARANTINE_BATCH_ROWS)):
                count = len(block)
                yield pa.RecordBatch.from_pydict(
                    {
                        "job_id": [self.job_id] * count,
                        "file_name": [file_name] * count,
                        "line_number": [line.line_number for line in block],
                        "error": [line.error for line in block],
                        "raw_line": [line.raw_line for line in block],
                        "quarantined_at": pa.array([now] * count, UTC_MICROS),
                    },
                    schema=QUARANTINE,
                )

        return self._write(QUARANTINE_DIR, batches())

    def record_file(
        self, name: str, *, rows_written: int, lines_read: int, bytes_read: int, sha256: str
    ) -> None:
        """Note one source file's figures for the manifest."""
        self._require_open()
        self._files.append(
            {
                "name": name,
                "rows_written": rows_written,
                "lines_read": lines_read,
                "bytes_read": bytes_read,
                "sha256": sha256,
            }
        )

    def commit(self) -> CommitResult:
        """Make the job visible: dedupe, transcripts, index, intent, moves, manifest last; then
        refresh the archive's ``gladly.duckdb`` (gladly_archive.catalog)."""
        with self._failing_releases_lock():
            result = self._commit()
            self._state = "committed"
            self._lock.release()
            self._remove_download_dir()
        refresh_catalog(self.archive.fs, self.archive.root)
        self._hook("committed")
        return result

    def _commit(self) -> CommitResult:
        fs, root = self.archive.fs, self.archive.root
        planner = CommitPlanner(
            fs=fs,
            root=root,
            staging_root=self.staging_dir,
            job_id=self.job_id,
            staged=self._staged,
            make_writer=lambda dataset, partition: self._writer(dataset, partition),
            compact_below_bytes=self.archive.compact_below_bytes,
            hook=self.archive.crash_hook,
        )
        planner.dedupe_items()
        archived_at = self.archive.clock()
        planner.rebuild_transcripts(archived_at)
        planner.update_index()
        moves = [
            (relative(root, f.path), relative(self.staging_dir, f.path))
            for dataset in _MOVE_ORDER
            for f in self._staged.get(dataset, [])
        ]
        rows = {name: self._rows.get(name, 0) for name in ("items", "customers", "agents")}
        rows["items"] -= planner.duplicates_within_job
        rows["topics"] = self._rows.get("topics", 0)
        rows["transcripts"] = planner.conversations_rebuilt
        rows[QUARANTINE_DIR] = self._rows.get(QUARANTINE_DIR, 0)
        result = CommitResult(
            job_id=self.job_id,
            rows_by_dataset=rows,
            files_written=[final for _, final in moves],
            duplicates_replaced=planner.duplicates_replaced,
            conversations_rebuilt=planner.conversations_rebuilt,
            quarantined=rows[QUARANTINE_DIR],
        )
        record = manifest_record(
            job_id=self.job_id,
            files=self._files,
            quarantined_lines=result.quarantined,
            archived_at=archived_at,
            schema_version=SCHEMA_VERSION,
            **self._meta,
        )
        intent = CommitIntent(
            job_id=self.job_id,
            moves=moves,
            deletes=[relative(root, path) for path in planner.deletes],
            manifest=record,
            summary={"rows_by_dataset": rows, "duplicates_replaced": result.duplicates_replaced},
        )
        write_intent(fs, root, intent)
        self._hook("intent_written")
        execute_intent(fs, root, intent, self.archive.crash_hook)
        # Done: the key file is a cache that checks itself (recent_keys), saved after.
        planner.save_recent_keys()
        return result

    def abort(self) -> None:
        """Discard the staged work (nothing of it was visible) and release the lock.

        After a failed commit whose intent was written, the staging area is kept: ``recover()``
        must finish that commit, because some of its files may already be in place.
        """
        if self._state in ("committed", "aborted"):
            return
        if self._state == "failed":
            # The lock went with the failure; take it again to clean up, or leave the staging
            # area to the next recover() if another writer holds it now.
            try:
                self._lock.acquire()
            except ArchiveLockedError:
                self._state = "aborted"
                self._remove_download_dir()
                return
        try:
            if read_intent(self.archive.fs, self.archive.root, self.job_id) is None:
                remove_dir(self.archive.fs, self.staging_dir)
        finally:
            self._lock.release()
            self._state = "aborted"
            self._remove_download_dir()

    def _remove_download_dir(self) -> None:
        if self._own_download_dir:
            shutil.rmtree(self.download_dir, ignore_errors=True)
