"""The audit log's format: schema, keyed event hash, and readers of sealed runs and journals."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    "EARLIER_RELEASE",
    "GENESIS",
    "GENESIS_V1",
    "AuditError",
    "Journal",
    "SealedRun",
    "canonical_event",
    "canonical_time",
    "chain_key",
    "event_hash",
    "event_mac",
    "events_table",
    "is_earlier_release",
    "journal_paths",
    "last_sealed_hash",
    "order_journals",
    "read_events",
    "read_journal",
    "read_sealed",
    "sealed_metadata",
    "sealed_runs",
]

# Bump when an audit column is added, removed or changes type, or the chain's hash changes
# (independent of the archive's). Version 1 chained unkeyed sha256 hashes; 2 chains HMACs.
AUDIT_SCHEMA_VERSION = 2
GENESIS = hashlib.sha256(b"gladly-pipeline audit log v2").hexdigest()
# The first prev_hash of a log written by an earlier release (audit schema version 1).
GENESIS_V1 = hashlib.sha256(b"gladly-pipeline audit log v1").hexdigest()
# Domain separation: the chain is keyed with a key derived from the audit key, never the key
# itself, so no chain hash can be mistaken for (or help forge) a keyed hash of an email.
_CHAIN_LABEL = b"gladly-pipeline audit chain v2"
_ENV_KEY = "GLADLY_AUDIT_KEY"

# Why a log of audit schema version 1 is refused, after "<file> " (verify_chain and start_run).
EARLIER_RELEASE = (
    "was written by an earlier release (audit schema version 1) with an unkeyed hash chain, "
    "which this release cannot vouch for: anyone could have rewritten it. Keep that log as it "
    "is (it is still evidence, as far as it goes) and start a new archive root for new runs"
)

META_VERSION = b"gladly_pipeline.schema_version"
META_DATASET = b"gladly_pipeline.dataset"
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
            pa.field("hash", _S, nullable=False),  # HMAC-SHA256 hex under the chain key
        ]
    ),
)
# audit/… under <root>/_audit/runs — one Parquet file per sealed run.
AUDIT_EVENTS = _stamped.with_metadata(
    {**_stamped.metadata, META_VERSION: str(AUDIT_SCHEMA_VERSION).encode()}
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


def chain_key(key: bytes) -> bytes:
    """The key the chain is hashed with: HMAC-SHA256(audit key, "gladly-pipeline audit chain v2").

    ``key`` is the audit key (GLADLY_AUDIT_KEY, as bytes); an empty one raises AuditError.
    """
    if not isinstance(key, bytes | bytearray):
        raise AuditError(f"the audit key must be bytes (the value of {_ENV_KEY}, encoded)")
    if not key:
        raise AuditError(
            f"the audit key is empty: the audit chain is keyed with {_ENV_KEY}, so that no one "
            "without it can rewrite the log; set it (the same value every run, kept like a "
            "password)"
        )
    return hmac.new(bytes(key), _CHAIN_LABEL, hashlib.sha256).digest()


def canonical_event(event: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash covers: canonical JSON of every field but ``hash``.

    Missing fields count as null; ``json.dumps(sort_keys=True, separators=(",", ":"))``, the
    time via ``canonical_time``, floats as Python writes them. ValueError for NaN or infinity.
    """
    body = {name: event.get(name) for name in AUDIT_EVENTS.names if name != "hash"}
    if isinstance(body["time"], datetime):
        body["time"] = canonical_time(body["time"])
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode()


def event_mac(event: Mapping[str, Any], chain: bytes) -> str:
    """An event's hash under an already derived ``chain_key`` (what writer and verifier use)."""
    return hmac.new(chain, canonical_event(event), hashlib.sha256).hexdigest()


def event_hash(event: Mapping[str, Any], key: bytes) -> str:
    """An event's ``hash``: HMAC-SHA256 hex of ``canonical_event(event)`` under ``chain_key(key)``.

    ``key`` (positional or keyword) is the audit key itself, not the derived chain key.
    """
    return event_mac(event, chain_key(key))


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


def is_earlier_release(meta: Mapping[bytes, bytes]) -> bool:
    """The footer of a sealed run written by an earlier release (audit schema version 1)."""
    return meta.get(META_DATASET) == b"audit" and meta.get(META_VERSION) == b"1"


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


def last_sealed_hash(audit_dir: Path) -> str:
    """The hash the chain continues from after the sealed runs: the last one's, or GENESIS."""
    sealed = sealed_runs(audit_dir)
    if not sealed:
        return GENESIS
    try:
        return sealed_metadata(sealed[-1].path)[META_LAST].decode()
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise AuditError(
            f"cannot read the last hash of {sealed[-1].path} ({exc}); "
            "run verify_chain and repair or restore that file before appending"
        ) from None


def read_events(audit_dir: Path, *, include_journals: bool = True) -> pa.Table:
    """Every event under ``audit_dir``: sealed runs in run order, then unsealed journals in
    chain order (AUDIT_EVENTS schema). Reads only and needs no key: nothing is verified here
    (``verify_chain`` does that); AuditError for a damaged file."""
    for _ in range(5):
        # Journals are listed before runs: a seal renames its run file into place before it
        # removes the journal, so a run sealed meanwhile is either among the runs (its
        # journal is skipped) or still a journal, unless the journal vanished: read again.
        journals = journal_paths(audit_dir) if include_journals else []
        sealed = sealed_runs(audit_dir)
        tables = [read_sealed(run.path) for run in sealed]
        sealed_ids = {run.run_id for run in sealed}
        try:
            loaded = [read_journal(p) for p in journals if p.stem not in sealed_ids]
        except FileNotFoundError:
            continue  # sealed between the two listings: read again
        for journal in order_journals(loaded, last_sealed_hash(audit_dir)):
            try:
                tables.append(events_table(journal.events))
            except (pa.ArrowException, TypeError, ValueError):
                raise AuditError(
                    f"audit journal of run {journal.run_id} holds malformed events (a field "
                    "of the wrong type); restore it from a backup or move it aside"
                ) from None
        return pa.concat_tables(tables) if tables else AUDIT_EVENTS.empty_table()
    raise AuditError(f"the audit journals under {audit_dir} kept changing while being read")
