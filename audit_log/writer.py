"""The tamper-evident audit log's writer: a keyed hash chain in a write-ahead journal, per run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from audit_log.fields import CALLER_FIELDS, PHASES, TARGET_TYPES, check_fields, check_value
from audit_log.files import (
    AUDIT_DIR,
    AUDIT_EVENTS,
    AUDIT_SCHEMA_VERSION,
    EARLIER_RELEASE,
    GENESIS,
    GENESIS_V1,
    META_COUNT,
    META_LAST,
    META_PREV,
    META_RUN_ID,
    META_RUN_NUMBER,
    AuditError,
    Journal,
    canonical_time,
    chain_key,
    event_hash,
    event_mac,
    events_table,
    is_earlier_release,
    journal_paths,
    last_sealed_hash,
    order_journals,
    read_events,
    read_journal,
    read_sealed,
    sealed_metadata,
    sealed_runs,
)
from audit_log.verify import ChainReport, verify_chain
from gladly_archive.fs import ArchiveLockedError, WriterLock, atomic_write_bytes, fsync_dirs

__all__ = [
    "AUDIT_EVENTS",
    "AUDIT_SCHEMA_VERSION",
    "CALLER_FIELDS",
    "GENESIS",
    "PHASES",
    "TARGET_TYPES",
    "AuditError",
    "AuditLog",
    "AuditRun",
    "ChainReport",
    "check_fields",
    "event_hash",
    "verify_chain",
    "write_events_file",
]

Clock = Callable[[], datetime]

# -- the log ----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """The audit log under ``<root>/_audit`` of a LOCAL archive root.

    ``journal/<run_id>.jsonl`` is a run's write-ahead journal (one fsynced JSON line per
    event), ``runs/<n:06d>-<run_id>.parquet`` a sealed run, ``lock`` the lock held for a whole
    run so that runs are sequential and the hash chain stays linear. Reading (``events``,
    ``verify_chain``) takes no lock. Every event's hash is keyed with the audit key, so only
    a holder of the key can write an event that verifies.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, key: bytes, clock: Clock | None = None
    ) -> None:
        """Point at ``root`` (no I/O); ``key`` is the audit key (GLADLY_AUDIT_KEY as bytes;
        AuditError if empty); ``clock`` stamps event times (default: now, in UTC)."""
        self._chain = chain_key(key)  # only the derived chain key is kept
        self.dir = Path(root).expanduser().resolve() / AUDIT_DIR
        self.clock = clock or _now
        self._fs = pafs.LocalFileSystem()

    def _take_lock(self) -> WriterLock:
        lock = WriterLock(self._fs, str(self.dir / "lock"))
        try:
            lock.acquire()
        except ArchiveLockedError as exc:
            raise AuditError(
                f"audit lock {self.dir / 'lock'} is held: {exc}. One audited run at a time; "
                "a lock left by a dead process is broken automatically"
            ) from None
        return lock

    def recover(self) -> list[str]:
        """Seal every journal a crashed run left, oldest first; returns their run ids.

        Refuses (AuditError) a log written by an earlier release, as ``start_run`` does.
        """
        lock = self._take_lock()
        try:
            return self._recover_locked()
        finally:
            lock.release()

    def _recover_locked(self) -> list[str]:
        runs_dir = self.dir / "runs"
        # Half-written seals: atomic_write_bytes' hidden temporary names.
        for stale in runs_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        journals = [read_journal(path) for path in journal_paths(self.dir)]
        self._refuse_earlier_release(journals)
        recovered = []
        for journal in order_journals(journals, self._head()):
            self._seal_journal(journal)
            recovered.append(journal.run_id)
        return recovered

    def _head(self) -> str:
        """The hash the next event chains to: the last sealed run's last hash, or GENESIS."""
        return last_sealed_hash(self.dir)

    def _refuse_earlier_release(self, journals: list[Journal]) -> None:
        """AuditError if an earlier release's unkeyed chain is here: never extend it.

        This release appends nothing after a version-1 file and an earlier release wrote only
        version-1 files, so a log holding one holds it first (an old log) or last (an old
        release wrote after this one): two footers tell, however long the log.
        """
        sealed = sealed_runs(self.dir)
        for run in dict.fromkeys(sealed[:1] + sealed[-1:]):
            try:
                meta = sealed_metadata(run.path)
            except (OSError, pa.ArrowException) as exc:
                raise AuditError(
                    f"cannot read the metadata of {run.path} ({exc}); run verify_chain and "
                    "repair or restore that file before appending"
                ) from None
            if is_earlier_release(meta):
                raise AuditError(f"audit log {self.dir}: {run.path.name} {EARLIER_RELEASE}")
        for journal in journals:
            if journal.events and journal.events[0]["prev_hash"] == GENESIS_V1:
                raise AuditError(
                    f"audit log {self.dir}: journal {journal.path.name} {EARLIER_RELEASE}"
                )

    def _check_key(self) -> None:
        """AuditError unless the newest sealed event verifies under this log's key: events
        appended under another key would make the log fail verification from there on."""
        for run in reversed(sealed_runs(self.dir)):
            try:
                table = read_sealed(run.path)
            except (OSError, pa.ArrowException) as exc:
                raise AuditError(
                    f"cannot read {run.path} ({exc}); run verify_chain and repair or restore "
                    "that file before appending"
                ) from None
            if table.num_rows == 0:
                continue  # a run without events carries no hash of its own
            newest = table.slice(table.num_rows - 1).to_pylist()[0]
            try:
                verified = event_mac(newest, self._chain) == newest["hash"]
            except ValueError:
                verified = False  # NaN or infinity: no genuine event holds one
            if not verified:
                raise AuditError(
                    f"the newest audit event (in {run.path.name}) does not verify under this "
                    "audit key: GLADLY_AUDIT_KEY is not the key the log was written with, or "
                    "the log was altered; nothing was appended. Run verify_chain with the "
                    "right key"
                )
            return

    def _seal_journal(self, journal: Journal) -> Path:
        """Write the journal as the next sealed run file, then remove the journal (locked)."""
        sealed = sealed_runs(self.dir)
        for run in sealed:
            if run.run_id == journal.run_id:
                # A crash between the rename and the journal's removal: the seal is done.
                self._remove(journal.path)
                return run.path
        number = sealed[-1].number + 1 if sealed else 1
        prev = self._head()
        events = journal.events
        metadata = {
            **AUDIT_EVENTS.metadata,
            META_RUN_ID: journal.run_id.encode(),
            META_RUN_NUMBER: str(number).encode(),
            META_PREV: prev.encode(),
            META_LAST: (events[-1]["hash"] if events else prev).encode(),
            META_COUNT: str(len(events)).encode(),
        }
        try:
            table = events_table(events).replace_schema_metadata(metadata)
        except (pa.ArrowException, TypeError, ValueError):
            # Arrow's message quotes the offending value: name the file only.
            raise AuditError(
                f"audit journal {journal.path} holds malformed events (a field of the wrong "
                "type); restore the journal from a backup or move it aside, then verify"
            ) from None
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        target = self.dir / "runs" / f"{number:06d}-{journal.run_id}.parquet"
        atomic_write_bytes(self._fs, str(target), sink.getvalue().to_pybytes())
        self._remove(journal.path)
        return target

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        fsync_dirs(self._fs, {str(path.parent)})

    def start_run(self, run_id: str | None = None, **common: Any) -> AuditRun:
        """Take the lock, seal crashed runs, and open a run chained to the last sealed one.

        ``common`` fields (actor, approver, flow, plan_hash, …) go on every event of the run
        unless an append overrides them. ``run_id`` defaults to a uuid4 hex. Raises AuditError
        if another live process holds the lock, if the run id was used, or a field is refused;
        if the log was written by an earlier release (an unkeyed chain, never extended), or its
        newest event does not verify under this log's key.
        """
        run_id = uuid.uuid4().hex if run_id is None else run_id
        check_value("run_id", run_id)
        clean = check_fields(common)
        lock = self._take_lock()
        try:
            self._recover_locked()
            self._check_key()
            if any(run.run_id == run_id for run in sealed_runs(self.dir)):
                raise AuditError(f"audit run id {run_id} is already sealed; run ids are unique")
            head = self._head()
            journal = self.dir / "journal" / f"{run_id}.jsonl"
            journal.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            # The journal's name must survive a power loss, or so would none of its events.
            fsync_dirs(self._fs, {str(journal.parent)})
        except BaseException:
            lock.release()
            raise
        return AuditRun(self, run_id, lock, fd, journal, head, clean)

    def events(self, *, include_journals: bool = True) -> pa.Table:
        """Every event: sealed runs in run order, then unsealed journals (AUDIT_EVENTS schema)."""
        return read_events(self.dir, include_journals=include_journals)


class AuditRun:
    """An open audited run: ``append`` events, then ``seal`` (or leave the ``with`` block).

    Made by ``AuditLog.start_run``; it holds the audit lock until sealed. Leaving a ``with``
    block seals even while an exception propagates, then releases the lock.
    """

    def __init__(
        self,
        log: AuditLog,
        run_id: str,
        lock: WriterLock,
        fd: int,
        journal: Path,
        head: str,
        common: dict[str, Any],
    ) -> None:
        """Wrap an opened journal (use ``AuditLog.start_run``)."""
        self.run_id = run_id
        self.journal_path = journal
        self._log = log
        self._lock = lock
        self._fd: int | None = fd
        self._head = head
        self._common = common
        self._seq = 0
        self._size = 0
        self._failed = False
        self._closed = False
        self._sealed: Path | None = None
        # Flows may append from several task threads; seq and the chain need one at a time.
        self._mutex = threading.Lock()

    @property
    def last_hash(self) -> str:
        """The hash of the run's last event (the previous run's last hash before the first)."""
        return self._head

    @property
    def event_count(self) -> int:
        """How many events append() has acknowledged."""
        return self._seq

    def append(self, **fields: Any) -> dict[str, Any]:
        """Append one event; it is on disk (written, flushed, fsynced) when this returns.

        Fills run_id, seq, time, prev_hash and hash (keyed); the run's common fields are defaults.
        Returns the event as written. Raises AuditError for an unknown field, a value that
        looks like personal data, or a failed write (the run then takes no more events).
        Thread-safe.
        """
        clean = check_fields(fields)
        with self._mutex:
            return self._append(clean)

    def _append(self, clean: dict[str, Any]) -> dict[str, Any]:
        if self._closed or self._failed or self._fd is None:
            raise AuditError(f"audit run {self.run_id} is closed; start a new run")
        event: dict[str, Any] = dict.fromkeys(AUDIT_EVENTS.names)
        event.update(self._common)
        event.update(clean)
        now = self._log.clock()
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise AuditError("the audit clock must return timezone-aware datetimes")
        event.update(
            run_id=self.run_id, seq=self._seq, time=now.astimezone(UTC), prev_hash=self._head
        )
        event["hash"] = event_mac(event, self._log._chain)
        line = json.dumps(
            {**event, "time": canonical_time(event["time"])}, sort_keys=True, separators=(",", ":")
        )
        data = (line + "\n").encode()
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as exc:
            self._failed = True
            # Best effort: cut the unacknowledged bytes so the journal ends on a whole line.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise AuditError(
                f"could not write audit event {self._seq} of run {self.run_id} to "
                f"{self.journal_path}: {exc.strerror}; the run accepts no more events"
            ) from exc
        self._size += len(data)
        self._seq += 1
        self._head = event["hash"]
        return event

    def seal(self) -> Path:
        """Turn the journal into the run's Parquet file, remove the journal, release the lock.

        Idempotent: later calls return the same path. A run with no events is sealed too, so
        every started run has its number. If sealing fails the lock is still released and the
        journal stays for the next ``start_run``/``recover`` to seal.
        """
        with self._mutex:
            return self._seal()

    def _seal(self) -> Path:
        if self._sealed is not None:
            return self._sealed
        if self._closed:
            raise AuditError(
                f"sealing audit run {self.run_id} failed earlier; the next start_run or "
                "recover() seals its journal"
            )
        self._closed = True
        try:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._sealed = self._log._seal_journal(read_journal(self.journal_path))
            return self._sealed
        finally:
            self._lock.release()

    def __enter__(self) -> AuditRun:
        """The run itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Seal (also while an exception propagates, which is then re-raised unchanged)."""
        if not self._closed:
            self.seal()


def write_events_file(events: pa.Table, path: str | os.PathLike[str]) -> str:
    """Write a selection of audit events (AUDIT_EVENTS) to one Parquet file, as an extract for
    an auditor; returns the SHA-256 of the bytes written. The caller makes it visible (an
    evidence pack renames its whole directory into place)."""
    sink = pa.BufferOutputStream()
    pq.write_table(events.cast(AUDIT_EVENTS), sink)
    data = sink.getvalue().to_pybytes()
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()
