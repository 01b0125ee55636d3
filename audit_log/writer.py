"""The tamper-evident audit log's writer: a hash-chained write-ahead journal, sealed per run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from audit_log.verify import (
    AUDIT_DIR,
    AUDIT_EVENTS,
    AUDIT_SCHEMA_VERSION,
    GENESIS,
    META_COUNT,
    META_LAST,
    META_PREV,
    META_RUN_ID,
    META_RUN_NUMBER,
    AuditError,
    ChainReport,
    Journal,
    canonical_time,
    event_hash,
    events_table,
    journal_paths,
    order_journals,
    read_journal,
    read_sealed,
    sealed_metadata,
    sealed_runs,
    verify_chain,
)
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

_FILLED = ("run_id", "seq", "time", "prev_hash", "hash")
CALLER_FIELDS = tuple(name for name in AUDIT_EVENTS.names if name not in _FILLED)
TARGET_TYPES = ("archive", "conversation", "customer", "item", "run")
PHASES = ("intent", "result")
MAX_TEXT = 2000

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # also a file name
_OPAQUE_ID = re.compile(r"[A-Za-z0-9_.:=-]{1,128}")  # Gladly ids are base64url
_HEX = {
    "subject_hash": re.compile(r"[0-9a-f]{64}"),
    # At least 32 digits, so no phone number can pass as a "hash".
    "policy_hash": re.compile(r"[0-9a-f]{32,128}"),
    "plan_hash": re.compile(r"[0-9a-f]{32,128}"),
}
_ENUMS = {"target_type": TARGET_TYPES, "phase": PHASES}
_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# 7+ digits with optional +, spaces, dashes, parentheses; not inside a longer word or decimal,
# so hex digests, base64 ids and float fractions are not mistaken for phone numbers.
_PHONE = re.compile(r"(?<![\w+])(?<!\d\.)\+?\(?\d[\d\s()-]{5,}\d(?!\w)(?!\.\d)")
# ISO dates and timestamps look like "2025-03-01" (8 digits and dashes): not phones.
_ISO_TIME = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)


def _refuse(name: str, why: str) -> AuditError:
    # Never echo the value: the point of refusing is that it may be personal data.
    return AuditError(f"audit field {name!r} refused: {why} (the value is not shown)")


def _looks_like_phone(text: str, *, whole: bool) -> bool:
    if whole:
        match = _PHONE.fullmatch(text)
        return match is not None and sum(c.isdigit() for c in text) >= 7
    stripped = _ISO_TIME.sub("_", text)
    return any(sum(c.isdigit() for c in m.group()) >= 7 for m in _PHONE.finditer(stripped))


def _check_value(name: str, value: Any) -> Any:
    """The value as stored, or AuditError; strings are screened for personal data."""
    if value is None:
        return None
    if name in ("http_status", "attempt"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(name, f"must be an int, not {type(value).__name__}")
        if not -(2**31) <= value < 2**31:
            raise _refuse(name, "is outside the int32 range")
        return value
    if name == "duration_ms":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(name, f"must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise _refuse(name, "must be a finite number")
        return float(value)  # hashed as a float, exactly as Parquet gives it back
    if not isinstance(value, str):
        raise _refuse(name, f"must be a str, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise _refuse(name, f"is {len(value)} characters long, over {MAX_TEXT}: no transcript text")
    if name in _HEX:
        if not _HEX[name].fullmatch(value):
            raise _refuse(name, "must be a lowercase hex digest (hash emails/phones with HMAC)")
        return value
    opaque = name in ("run_id", "target_id", "customer_id")
    if _EMAIL.search(value):
        raise _refuse(name, "looks like an email address; audit events hold no personal data")
    if _looks_like_phone(value, whole=opaque):
        raise _refuse(name, "looks like a phone number; audit events hold no personal data")
    if name == "run_id" and not _RUN_ID.fullmatch(value):
        raise _refuse(name, "must be 1-128 letters, digits, '_', '.', '-' (it names a file)")
    if opaque and not _OPAQUE_ID.fullmatch(value):
        raise _refuse(name, "must be an opaque id: 1-128 letters, digits and _ . : = -")
    if name in _ENUMS and value not in _ENUMS[name]:
        raise _refuse(name, f"must be one of {', '.join(_ENUMS[name])}")
    return value


def check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate caller-supplied event fields: known names, types, and no personal data."""
    clean = {}
    for name, value in fields.items():
        if name in _FILLED:
            raise AuditError(f"audit field {name!r} is filled in by the audit log, not the caller")
        if name not in CALLER_FIELDS:
            raise AuditError(
                f"unknown audit field {name!r}; valid fields: {', '.join(CALLER_FIELDS)}"
            )
        clean[name] = _check_value(name, value)
    return clean


# -- the log ----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """The audit log under ``<root>/_audit`` of a LOCAL archive root.

    ``journal/<run_id>.jsonl`` is a run's write-ahead journal (one fsynced JSON line per
    event), ``runs/<n:06d>-<run_id>.parquet`` a sealed run, ``lock`` the lock held for a whole
    run so that runs are sequential and the hash chain stays linear. Reading (``events``,
    ``verify_chain``) takes no lock.
    """

    def __init__(self, root: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        """Point at ``root`` (no I/O); ``clock`` stamps event times (default: now, in UTC)."""
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
        """Seal every journal a crashed run left, oldest first; returns their run ids."""
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
        recovered = []
        for journal in order_journals(journals, self._head()):
            self._seal_journal(journal)
            recovered.append(journal.run_id)
        return recovered

    def _head(self) -> str:
        """The hash the next event chains to: the last sealed run's last hash, or GENESIS."""
        sealed = sealed_runs(self.dir)
        if not sealed:
            return GENESIS
        try:
            return sealed_metadata(sealed[-1].path)[META_LAST].decode()
        except (OSError, KeyError, pa.ArrowException) as exc:
            raise AuditError(
                f"cannot read the last hash of {sealed[-1].path} ({exc}); "
                "run verify_chain and repair or restore that file before appending"
            ) from None

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
        if another live process holds the lock, if the run id was used, or a field is refused.
        """
        run_id = uuid.uuid4().hex if run_id is None else run_id
        _check_value("run_id", run_id)
        clean = check_fields(common)
        lock = self._take_lock()
        try:
            self._recover_locked()
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
        for _ in range(5):
            # Journals are listed before runs: a seal renames its run file into place before it
            # removes the journal, so a run sealed meanwhile is either among the runs (its
            # journal is skipped) or still a journal, unless the journal vanished: read again.
            journals = journal_paths(self.dir) if include_journals else []
            sealed = sealed_runs(self.dir)
            tables = [read_sealed(run.path) for run in sealed]
            sealed_ids = {run.run_id for run in sealed}
            try:
                loaded = [read_journal(p) for p in journals if p.stem not in sealed_ids]
            except FileNotFoundError:
                continue  # sealed between the two listings: read again
            head = self._head() if sealed else GENESIS
            for journal in order_journals(loaded, head):
                try:
                    tables.append(events_table(journal.events))
                except (pa.ArrowException, TypeError, ValueError):
                    raise AuditError(
                        f"audit journal of run {journal.run_id} holds malformed events (a field "
                        "of the wrong type); restore it from a backup or move it aside"
                    ) from None
            return pa.concat_tables(tables) if tables else AUDIT_EVENTS.empty_table()
        raise AuditError(f"the audit journals under {self.dir} kept changing while being read")


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

        Fills run_id, seq, time, prev_hash and hash; the run's common fields are the defaults.
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
        event["hash"] = event_hash(event)
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
