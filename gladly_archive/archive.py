"""The archive: open and recover a root, read its datasets, stage jobs for atomic commits."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from gladly_archive.catalog import refresh_catalog
from gladly_archive.commit import CrashHook, recover_staging
from gladly_archive.fs import ArchiveError, WriterLock, exists, join, local_path, resolve_root
from gladly_archive.layout import (
    DOWNLOADS_DIR,
    LOCK_NAME,
    MANIFEST_DIR,
    STAGING_DIR,
    check_layout,
    check_readable,
    manifest_job_id,
    validate_job_id,
)
from gladly_archive.schemas import DATASETS, SCHEMA_VERSION
from gladly_archive.staged import CommitResult, StagedJob
from gladly_archive.writer import DEFAULT_MAX_FILE_BYTES

__all__ = ["Archive", "CommitResult", "JobAlreadyArchivedError", "StagedJob"]

Clock = Callable[[], datetime]


class JobAlreadyArchivedError(ArchiveError):
    """The job id already has a manifest: archiving it again is refused, never merged."""


def _now() -> datetime:
    return datetime.now(UTC)


class Archive:
    """An archive root: datasets of Parquet files, a manifest per archived job, a staging area.

    ``root`` is a local path or any pyarrow filesystem URI (file://, s3://, gs://, …); pass
    ``filesystem`` to use a ready filesystem object (``root`` is then a path inside it).

    Writing: ``stage_job`` → ``write_*`` → ``commit``. The commit stages every rewrite it needs
    (replaced items, rebuilt transcripts, the customer file index), writes a durable intent,
    then renames and deletes idempotently and writes the job's manifest last. A job is archived
    exactly when its manifest exists; ``recover()`` rolls a job with an intent forward and
    discards one without. Archiving a job id that already has a manifest is refused
    (JobAlreadyArchivedError): callers skip ``archived_job_ids()``.

    Reading needs no lock. While a commit's renames run, a reader may for an instant see both
    a replaced file and its replacement (duplicates, never loss). Writing takes the single-
    writer lock, enforced on local filesystems only (see ``WriterLock``); on object stores the
    caller must keep to one writer.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        crash_hook: CrashHook | None = None,
        filesystem: pafs.FileSystem | None = None,
        clock: Clock | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        """Resolve the root (no I/O); call ``recover`` or use ``Archive.open`` before writing."""
        self.fs, self.root = resolve_root(root, filesystem)
        self.crash_hook = crash_hook
        self.clock = clock or _now
        self.max_file_bytes = max_file_bytes
        # Files under this size count as small: merged once enough gather in one directory.
        self.compact_below_bytes = max_file_bytes // 8

    def state(self, datasets: list[str] | tuple[str, ...]) -> str:
        """A digest of what `datasets` hold now: every visible Parquet file's path, size and
        modification time. Commits, merges, purges and enrichment write new files (temporary
        name, then rename), so any change to the data changes the digest; derived caches
        (the planner's fact tables) are keyed by it."""
        digest = hashlib.sha256(f"schema-v{SCHEMA_VERSION}".encode())
        for name in sorted(datasets):
            directory = join(self.root, name)
            selector = pafs.FileSelector(directory, allow_not_found=True, recursive=True)
            infos = sorted(self.fs.get_file_info(selector), key=lambda i: i.path)
            for info in infos:
                relative = info.path[len(directory) :].lstrip("/")
                if info.type != pafs.FileType.File or not relative.endswith(".parquet"):
                    continue
                if any(part.startswith((".", "_")) for part in relative.split("/")):
                    continue
                stamp = info.mtime_ns if info.mtime_ns is not None else -1
                digest.update(f"{name}/{relative}\0{info.size}\0{stamp}\n".encode())
        return digest.hexdigest()

    @classmethod
    def open(cls, root: str | os.PathLike[str], **kw: Any) -> Archive:
        """Construct an archive and run ``recover()``.

        Raises ArchiveLockedError while another live process writes; code that only reads can
        construct ``Archive(root)`` instead.
        """
        archive = cls(root, **kw)
        archive.recover()
        return archive

    def path(self, relative_path: str) -> str:
        """The full filesystem path of a path relative to the root."""
        return join(self.root, relative_path)

    def check_layout(self) -> None:
        """Raise OldLayoutError (one line, naming ``gladly-pipeline migrate``) unless this
        release may write here: callers that write beside the datasets (plans, the audit log)
        call it before their first write; every writer of the datasets checks on its own."""
        check_layout(self.fs, self.root)

    def lock(self) -> WriterLock:
        """The archive's writer lock (not yet taken)."""
        return WriterLock(self.fs, self.path(f"{STAGING_DIR}/{LOCK_NAME}"))

    def recover(self) -> list[str]:
        """Roll forward jobs with a commit intent, discard staging without one (under the lock)."""
        lock = self.lock()
        lock.acquire()
        try:
            rolled = recover_staging(self.fs, self.root, self.crash_hook)
        finally:
            lock.release()
        if rolled:
            refresh_catalog(self.fs, self.root)  # the crashed commit could not
        return rolled

    def archived_job_ids(self) -> set[str]:
        """Ids of the jobs whose manifest exists (the watermark)."""
        selector = pafs.FileSelector(self.path(MANIFEST_DIR), allow_not_found=True)
        return {
            job_id
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and (job_id := manifest_job_id(info.base_name)) is not None
        }

    def read_manifest(self) -> pa.Table:
        """Every manifest row, oldest archived first."""
        return self.dataset(MANIFEST_DIR).to_table().sort_by([("archived_at", "ascending")])

    def dataset(self, name: str) -> ds.Dataset:
        """A pyarrow dataset of ``name`` with exactly its explicit schema.

        Directory names carry no values (filter on columns: ``date``, ``job_id``). Hidden and
        ``_``-prefixed files are never read, so temporary files and the staging area stay out.
        An archive of an earlier schema version reads too, its missing columns as nulls.
        """
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
        if name in ("items", "transcripts"):
            check_readable(self.fs, self.root)
        schema = DATASETS[name]
        base = self.path(name)
        if not exists(self.fs, base):
            return ds.dataset([], schema=schema, format="parquet", filesystem=self.fs)
        return ds.dataset(base, schema=schema, format="parquet", filesystem=self.fs)

    def stage_job(
        self,
        job_id: str,
        *,
        kind: str = "export_job",
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        job_updated_at: datetime | None = None,
    ) -> StagedJob:
        """Take the writer lock, finish earlier crashed commits, and open a staging area.

        Raises JobAlreadyArchivedError if the job has a manifest (callers skip archived jobs by
        ``archived_job_ids()``), ArchiveLockedError if another live process is writing.
        """
        validate_job_id(job_id)
        lock = self.lock()
        lock.acquire()
        try:
            recover_staging(self.fs, self.root, self.crash_hook)
            if job_id in self.archived_job_ids():
                raise JobAlreadyArchivedError(f"job {job_id} is already archived")
            staging = self.path(f"{STAGING_DIR}/{job_id}")
            self.fs.create_dir(staging, recursive=True)
            local = local_path(self.fs, staging)
            if local is not None:
                download_dir = Path(local) / DOWNLOADS_DIR
                download_dir.mkdir(parents=True, exist_ok=True)
                own_download_dir = False
            else:
                # Remote archive: downloads go to local temp (left behind only by a crash).
                download_dir = Path(tempfile.mkdtemp(prefix=f"gladly-archive-{job_id}-"))
                own_download_dir = True
        except BaseException:
            lock.release()
            raise
        meta = {
            "kind": kind,
            "window_start": window_start,
            "window_end": window_end,
            "job_updated_at": job_updated_at,
        }
        return StagedJob(self, job_id, lock, staging, download_dir, own_download_dir, meta)
