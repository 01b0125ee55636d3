"""The audit log's format and its check: schema, event hash, files on disk, verify_chain."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from gladly_archive.fs import ArchiveError
from gladly_archive.schemas import UTC_MICROS, with_metadata

__all__ = [
    "AUDIT_DIR",
    "AUDIT_EVENTS",
    "AUDIT_SCHEMA_VERSION",
    "GENESIS",
    "AuditError",
    "ChainReport",
    "Journal",
    "SealedRun",
    "canonical_time",
    "event_hash",
    "events_table",
    "journal_paths",
    "order_journals",
    "read_journal",
    "read_sealed",
    "sealed_metadata",
    "sealed_runs",
    "verify_chain",
]

# Bump when an audit column is added, removed or changes type (independent of the archive's).
AUDIT_SCHEMA_VERSION = 1
GENESIS = hashlib.sha256(b"gladly-pipeline audit log v1").hexdigest()

_VERSION_KEY = b"gladly_pipeline.schema_version"
_S = pa.string()
_stamped = with_metadata(
    "audit",
    pa.schema(
        [
            pa.field("run_id", _S, nullable=False),
            pa.field("seq", pa.int64(), nullable=False),  # 0, 1, 2, … within a run
            pa.field("time", UTC_MICROS, nullable=False),
            pa.field("actor", _S),  # who requested: a handle, never an email
            pa.field("approver", _S),
            pa.field("flow", _S),  # flow or deployment name
            pa.field("policy_name", _S),
            pa.field("policy_hash", _S),
            pa.field("plan_hash", _S),
            pa.field("target_type", _S),  # customer | conversation | item | run | archive
            pa.field("target_id", _S),  # a Gladly id
            pa.field("customer_id", _S),
            pa.field("subject_hash", _S),  # HMAC-SHA256 hex of the requester's email/phone
            pa.field("action", _S),
            pa.field("step", _S),
            pa.field("phase", _S),  # intent | result
            pa.field("outcome", _S),
            pa.field("http_status", pa.int32()),
            pa.field("error_code", _S),
            pa.field("attempt", pa.int32()),
            pa.field("duration_ms", pa.float64()),
            pa.field("detail", _S),  # non-personal: content type, a merged id, counts as JSON
            pa.field("prev_hash", _S, nullable=False),
            pa.field("hash", _S, nullable=False),
        ]
    ),
)
# audit/… under <root>/_audit/runs — one Parquet file per sealed run.
AUDIT_EVENTS = _stamped.with_metadata(
    {**_stamped.metadata, _VERSION_KEY: str(AUDIT_SCHEMA_VERSION).encode()}
)

# Footer keys of a sealed run file.
META_RUN_ID = b"gladly_pipeline.audit.run_id"
META_RUN_NUMBER = b"gladly_pipeline.audit.run_number"
META_PREV = b"gladly_pipeline.audit.prev_run_last_hash"
META_LAST = b"gladly_pipeline.audit.last_hash"
META_COUNT = b"gladly_pipeline.audit.event_count"

AUDIT_DIR = "_audit"
SEALED_NAME = re.compile(r"^(\d{6,})-([A-Za-z0-9][A-Za-z0-9_.-]*)\.parquet$")


class AuditError(ArchiveError):
    """The audit log refused an event or a run, or found its files damaged."""


def canonical_time(value: datetime) -> str:
    """An event time as hashed: ISO-8601 UTC with microseconds (2025-03-01T10:00:00.000000Z)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(event: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of every field but ``hash`` (missing fields as null).

    Canonical: ``json.dumps(sort_keys=True, separators=(",", ":"))``, time via ``canonical_time``,
    floats as Python writes them.
    """
    body = {name: event.get(name) for name in AUDIT_EVENTS.names if name != "hash"}
    if isinstance(body["time"], datetime):
        body["time"] = canonical_time(body["time"])
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# -- the files --------------------------------------------------------------------------------


class SealedRun(NamedTuple):
    """A sealed run file: its run number, run id and path."""

    number: int
    run_id: str
    path: Path


@dataclass
class Journal:
    """A run's write-ahead journal as read back: the acknowledged events, in order."""

    path: Path
    run_id: str
    events: list[dict[str, Any]]
    mtime_ns: int


def sealed_runs(audit_dir: Path) -> list[SealedRun]:
    """The sealed run files in run-number order (unrecognised and hidden names skipped)."""
    found = []
    for path in (audit_dir / "runs").glob("*.parquet"):
        match = SEALED_NAME.match(path.name)
        if match:
            found.append(SealedRun(int(match.group(1)), match.group(2), path))
    return sorted(found)


def sealed_metadata(path: Path) -> dict[bytes, bytes]:
    """A sealed file's footer key-value metadata."""
    return dict(pq.ParquetFile(path).metadata.metadata or {})


def journal_paths(audit_dir: Path) -> list[Path]:
    """The unsealed journals, by name (use ``order_journals`` for chain order)."""
    return sorted((audit_dir / "journal").glob("*.jsonl"))


def read_journal(path: Path) -> Journal:
    """Read a journal, dropping a torn last line: it was never acknowledged."""
    data = path.read_bytes()
    mtime_ns = path.stat().st_mtime_ns
    lines = data.split(b"\n")
    tail = lines.pop()  # bytes after the last newline: empty, or an append cut short
    events = []
    for number, line in enumerate(lines, 1):
        try:
            raw = json.loads(line)
        except ValueError:
            # A crash can only tear the line being appended: every earlier one was fsynced.
            if number == len(lines) and not tail:
                break
            raise AuditError(
                f"audit journal {path} line {number} is not JSON, yet it is not the last "
                "line: the journal was damaged or edited; keep it as evidence"
            ) from None
        events.append(_journal_event(raw, path, number))
    return Journal(path, path.stem, events, mtime_ns)


def _journal_event(raw: Any, path: Path, number: int) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) != set(AUDIT_EVENTS.names):
        raise AuditError(f"audit journal {path} line {number} does not hold an audit event")
    try:
        raw["time"] = datetime.fromisoformat(raw["time"])
    except (TypeError, ValueError):
        raise AuditError(f"audit journal {path} line {number} has no valid time") from None
    return raw


def order_journals(journals: list[Journal], head: str) -> list[Journal]:
    """Chain order: each journal whose first event links to the current head comes next.

    Journals that link to nothing (none in a healthy log, or empty ones) follow by
    modification time, so they are still sealed and ``verify_chain`` reports the break.
    """
    remaining = sorted(journals, key=lambda j: (j.mtime_ns, j.run_id))
    ordered = []
    while remaining:
        linked = [j for j in remaining if j.events and j.events[0]["prev_hash"] == head]
        chosen = linked[0] if linked else remaining[0]
        remaining.remove(chosen)
        ordered.append(chosen)
        if chosen.events:
            head = chosen.events[-1]["hash"]
    return ordered


def events_table(events: list[dict[str, Any]]) -> pa.Table:
    """Events as an AUDIT_EVENTS table."""
    return pa.Table.from_pylist(events, schema=AUDIT_EVENTS)


def read_sealed(path: Path) -> pa.Table:
    """A sealed run's events (AuditError if its schema is not the audit schema)."""
    table = pq.ParquetFile(path).read()
    if not table.schema.equals(AUDIT_EVENTS, check_metadata=False):
        raise AuditError(f"{path} does not have the audit schema; run verify_chain")
    return table.replace_schema_metadata(AUDIT_EVENTS.metadata)


# -- verification -----------------------------------------------------------------------------

_DATASET_KEY = b"gladly_pipeline.dataset"


@dataclass
class ChainReport:
    """What ``verify_chain`` found.

    ``runs`` and ``events`` count what was verified before the first problem (all of it when
    ``ok``). ``unsealed`` lists the run ids of journals not yet sealed (not a failure: the next
    run or ``recover()`` seals them). ``last_hash`` is the verified chain's head: publish it
    somewhere else (a flow artifact), because removing the newest run files leaves a shorter
    chain that is still valid and only an outside copy of the head reveals it.
    """

    ok: bool
    runs: int
    events: int
    problem: str | None
    unsealed: list[str] = field(default_factory=list)
    last_hash: str = GENESIS


class _Broken(Exception):
    """The first problem, in words a person can act on."""


def verify_chain(root: str | os.PathLike[str]) -> ChainReport:
    """Walk every sealed run of the audit log under ``<root>/_audit`` in run-number order.

    Checks the schema, run numbers without gaps, seq 0..n-1, every prev_hash against the
    previous event's hash (and the file's recorded prev_run_last_hash), every hash recomputed,
    and each file's recorded last_hash and event_count. Stops at the first problem.
    """
    audit_dir = Path(root).expanduser().resolve() / AUDIT_DIR
    unsealed = [path.stem for path in journal_paths(audit_dir)]
    runs = events = 0
    head = GENESIS
    previous = "the start of the log (GENESIS)"
    try:
        _check_names(audit_dir)
        for expected, run in enumerate(sealed_runs(audit_dir), 1):
            label = f"{run.path.name} (run {run.number}, run_id {run.run_id})"
            if run.number != expected:
                gap = (
                    "run 1 is missing: the first sealed file is"
                    if expected == 1
                    else (f"run {expected} is missing: after {previous} comes")
                )
                raise _Broken(f"{gap} {run.path.name}; a whole run file was deleted or renamed")
            count, head = _verify_file(run.path, label, run.run_id, run.number, head, previous)
            runs += 1
            events += count
            previous = f"{run.path.name} (run {run.number})"
    except _Broken as problem:
        return ChainReport(False, runs, events, str(problem), unsealed, head)
    return ChainReport(True, runs, events, None, unsealed, head)


def _check_names(audit_dir: Path) -> None:
    """Every visible file in runs/ is a sealed run, and no run number appears twice."""
    runs_dir = audit_dir / "runs"
    if not runs_dir.is_dir():
        return
    numbers: dict[int, str] = {}
    for path in sorted(runs_dir.iterdir()):
        if path.name.startswith("."):
            continue  # a seal's temporary file: never part of the log
        match = SEALED_NAME.match(path.name)
        if match is None:
            raise _Broken(
                f"unexpected file {path.name} in {runs_dir}: sealed runs are named "
                "<number>-<run_id>.parquet; a file was renamed or added"
            )
        number = int(match.group(1))
        if number in numbers:
            raise _Broken(f"run {number} appears twice: {numbers[number]} and {path.name}")
        numbers[number] = path.name


def _verify_file(
    path: Path, label: str, run_id: str, number: int, head: str, previous: str
) -> tuple[int, str]:
    """Check one sealed run chained to ``head``; returns its event count and last hash."""
    try:
        table = pq.ParquetFile(path).read()
        meta = dict(pq.ParquetFile(path).metadata.metadata or {})
    except (OSError, pa.ArrowException) as exc:
        raise _Broken(f"{label} cannot be read as Parquet ({exc}); the file was damaged") from None
    if not table.schema.equals(AUDIT_EVENTS, check_metadata=False):
        raise _Broken(f"{label} does not have the audit schema; the file was rewritten")
    if (
        meta.get(_DATASET_KEY) != b"audit"
        or meta.get(_VERSION_KEY) != str(AUDIT_SCHEMA_VERSION).encode()
    ):
        raise _Broken(f"{label} is not marked as audit schema version {AUDIT_SCHEMA_VERSION}")
    try:
        recorded = {key: meta[key].decode() for key in (META_RUN_ID, META_PREV, META_LAST)}
        recorded_number, recorded_count = int(meta[META_RUN_NUMBER]), int(meta[META_COUNT])
    except (KeyError, ValueError):
        raise _Broken(f"{label} lacks its run metadata; the file was rewritten") from None
    if recorded[META_RUN_ID] != run_id or recorded_number != number:
        raise _Broken(
            f"{label} records run {recorded_number} ({recorded[META_RUN_ID]}) in its metadata, "
            "not the run its name says; the file was renamed"
        )
    if recorded[META_PREV] != head:
        raise _Broken(
            f"{label}: its recorded prev_run_last_hash is not the last hash of {previous}; "
            "the file's metadata was altered, or a run before it was removed or replaced"
        )
    rows = table.to_pylist()
    _check_seqs(label, [row["seq"] for row in rows], recorded_count)
    for row in rows:
        _check_event(label, row, run_id, head, recorded[META_PREV])
        head = row["hash"]
    if recorded[META_LAST] != head:
        last = f"its last event (seq {len(rows) - 1})" if rows else "its previous run"
        raise _Broken(
            f"{label}: its recorded last_hash does not match the hash of {last}; the file's "
            "metadata was altered"
        )
    return len(rows), head


def _check_seqs(label: str, seqs: list[int], recorded_count: int) -> None:
    """seq must run 0..n-1 in order: name the first event missing, doubled or out of place."""
    seen: set[int] = set()
    for position, seq in enumerate(seqs):
        if seq in seen:
            raise _Broken(f"{label}: seq {seq} appears twice (again at position {position})")
        seen.add(seq)
    for position, seq in enumerate(seqs):
        if seq == position:
            continue
        if position not in seen:
            raise _Broken(
                f"{label}: seq {position} is missing (seq {seq} follows seq {position - 1}); "
                "an event was deleted"
            )
        raise _Broken(
            f"{label}: events are out of order at seq {position}: position {position} holds "
            f"seq {seq}; events were swapped or reordered"
        )
    if recorded_count != len(seqs):
        missing = f"seq {len(seqs)} is missing" if recorded_count > len(seqs) else "extra events"
        raise _Broken(
            f"{label}: {missing}: the file records {recorded_count} events but holds "
            f"{len(seqs)}; events at the end were deleted or added"
        )


def _check_event(label: str, row: dict[str, Any], run_id: str, head: str, file_prev: str) -> None:
    seq = row["seq"]
    if row["run_id"] != run_id:
        raise _Broken(f"{label}: seq {seq} belongs to another run; events were moved between files")
    if row["prev_hash"] != head:
        if seq == 0:
            raise _Broken(
                f"{label}: seq 0's prev_hash does not match the file's recorded "
                f"prev_run_last_hash ({file_prev}); the event or the metadata was altered"
            )
        raise _Broken(
            f"{label}: seq {seq}'s prev_hash is not the hash of seq {seq - 1}; an event before "
            "it is missing, or was altered and re-hashed"
        )
    try:
        recomputed = event_hash(row)
    except ValueError:
        recomputed = None  # NaN or infinity cannot be in a genuine event
    if recomputed != row["hash"]:
        raise _Broken(f"{label}: seq {seq} was altered: its content no longer matches its hash")
