"""The audit log's check: verify_chain walks sealed runs and journals under the audit key."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audit_log.files import (
    AUDIT_DIR,
    AUDIT_EVENTS,
    AUDIT_SCHEMA_VERSION,
    EARLIER_RELEASE,
    GENESIS,
    GENESIS_V1,
    META_COUNT,
    META_DATASET,
    META_LAST,
    META_PREV,
    META_RUN_ID,
    META_RUN_NUMBER,
    META_VERSION,
    SEALED_NAME,
    AuditError,
    Journal,
    SealedRun,
    canonical_event,
    canonical_time,
    chain_key,
    event_hash,
    event_mac,
    events_table,
    is_earlier_release,
    journal_paths,
    order_journals,
    read_journal,
    read_sealed,
    sealed_metadata,
    sealed_runs,
)

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

_HEAD = re.compile(r"(\d+)-([0-9a-f]{64})")
HEAD_FORMAT = (
    "<events>-<hash>: the number of events, a dash, and the 64 lowercase hex digits of the "
    "last event's hash, as ChainReport.head gives it"
)


@dataclass
class ChainReport:
    """What ``verify_chain`` found.

    ``runs`` counts the sealed runs and ``events`` the events (sealed runs' and journals') that
    were verified before the first problem (all of them when ``ok``). ``unsealed`` lists the
    run ids of journals not yet sealed (verified too; the next run or ``recover()`` seals
    them). ``last_hash`` is the keyed hash of the last verified event (GENESIS if none).
    ``head`` (``<events>-<last_hash>``) is what to keep somewhere else (a flow artifact, a
    ticket): removing the newest events leaves a shorter chain that is still valid, and only
    ``verify_chain(..., expect_head=<a head kept earlier>)`` reveals it.
    """

    ok: bool
    runs: int
    events: int
    problem: str | None
    unsealed: list[str] = field(default_factory=list)
    last_hash: str = GENESIS

    @property
    def head(self) -> str:
        """``f"{events}-{last_hash}"``: how long the verified chain is and how it ends."""
        return f"{self.events}-{self.last_hash}"


class _Broken(Exception):
    """The first problem, in words a person can act on."""


class _Walk:
    """The chain verified so far: its events, its last hash, and the hash at a kept position."""

    def __init__(self, wanted: int | None) -> None:
        self.runs = 0
        self.events = 0
        self.last = GENESIS
        self.wanted = wanted
        self.found: str | None = GENESIS if wanted == 0 else None

    def extend(self, hashes: list[str]) -> None:
        """Count a verified file's or journal's events (only once all of them verified)."""
        if self.wanted is not None and self.events < self.wanted <= self.events + len(hashes):
            self.found = hashes[self.wanted - self.events - 1]
        self.events += len(hashes)
        if hashes:
            self.last = hashes[-1]


def verify_chain(
    root: str | os.PathLike[str], *, key: bytes, expect_head: str | None = None
) -> ChainReport:
    """Verify the audit log under ``<root>/_audit`` with the audit key (GLADLY_AUDIT_KEY).

    Sealed runs in run-number order: the schema, run numbers without gaps, seq 0..n-1, every
    prev_hash against the previous event's hash (and the file's recorded prev_run_last_hash),
    every keyed hash recomputed, each file's recorded last_hash and event_count. Then every
    unsealed journal in chain order, continuing the chain (a torn last line, a crash
    mid-append, is not a failure). With ``expect_head`` (a ``ChainReport.head`` kept
    elsewhere) the log must still hold that many events, the last of them with that hash; a
    log that grew since passes. No log at all, or one written by an earlier release (audit
    schema version 1, unkeyed), is not ok. Stops at the first problem. Raises AuditError only
    for an empty (or non-bytes) key.
    """
    chain = chain_key(key)
    kept = None
    if expect_head is not None:
        kept = _parse_head(expect_head)
        if kept is None:
            return ChainReport(False, 0, 0, f"the head you kept is not of the form {HEAD_FORMAT}")
    root_path = Path(root).expanduser().resolve()
    for _ in range(5):
        try:
            return _verify(root_path, chain, kept)
        except FileNotFoundError:
            continue  # a run was sealed (its journal removed) while it was being read: again
    changing = f"the audit journals under {root_path / AUDIT_DIR} kept changing while verified"
    return ChainReport(False, 0, 0, f"{changing}; verify again when no run is sealing")


def _parse_head(text: str) -> tuple[int, str] | None:
    match = _HEAD.fullmatch(text.strip()) if isinstance(text, str) else None
    return (int(match.group(1)), match.group(2)) if match else None


def _verify(root: Path, chain: bytes, kept: tuple[int, str] | None) -> ChainReport:
    """One pass of verify_chain; FileNotFoundError if a journal vanished while being read."""
    audit_dir = root / AUDIT_DIR
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        return ChainReport(False, 0, 0, f"the archive root {root} {what}; check --root")
    # Journals are listed before runs: a seal renames its run file into place before it
    # removes the journal, so a run sealed meanwhile is among the runs (its journal skipped).
    journals = journal_paths(audit_dir)
    sealed = sealed_runs(audit_dir)
    sealed_ids = {run.run_id for run in sealed}
    journals = [path for path in journals if path.stem not in sealed_ids]
    unsealed = [path.stem for path in journals]
    walk = _Walk(kept[0] if kept else None)
    try:
        _check_names(audit_dir)
        if not sealed and not journals:
            raise _Broken(f"no audit log under {audit_dir}: nothing to verify; check --root")
        previous = _verify_runs(sealed, chain, walk)
        loaded = [_read_journal(path) for path in journals]
        for journal in order_journals(loaded, walk.last):
            walk.extend(_verify_journal(journal, chain, walk, previous))
            if journal.events:
                previous = f"journal {journal.path.name}"
        if kept is not None:
            _check_head(kept, walk)
    except _Broken as problem:
        return ChainReport(False, walk.runs, walk.events, str(problem), unsealed, walk.last)
    return ChainReport(True, walk.runs, walk.events, None, unsealed, walk.last)


def _check_head(kept: tuple[int, str], walk: _Walk) -> None:
    count, kept_hash = kept
    if count > walk.events:
        raise _Broken(
            f"the log holds {walk.events} events but the head you kept was taken at {count}: "
            "the newest events were removed"
        )
    if walk.found != kept_hash:
        where = "the empty log's GENESIS" if count == 0 else f"event {count} (in chain order)"
        raise _Broken(
            f"the head you kept says {where} has another hash than the log's: the log was "
            "rewritten since the head was taken (or the head was copied wrong)"
        )


# -- sealed runs ------------------------------------------------------------------------------


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


def _verify_runs(sealed: list[SealedRun], chain: bytes, walk: _Walk) -> str:
    """Verify the sealed runs in order into ``walk``; returns what the last one was called."""
    previous = "the start of the log (GENESIS)"
    for expected, run in enumerate(sealed, 1):
        label = f"{run.path.name} (run {run.number}, run_id {run.run_id})"
        if run.number != expected:
            gap = (
                "run 1 is missing: the first sealed file is"
                if expected == 1
                else (f"run {expected} is missing: after {previous} comes")
            )
            raise _Broken(f"{gap} {run.path.name}; a whole run file was deleted or renamed")
        walk.extend(_verify_file(run, label, chain, walk, previous))
        walk.runs += 1
        previous = f"{run.path.name} (run {run.number})"
    return previous


def _verify_file(run: SealedRun, label: str, chain: bytes, walk: _Walk, previous: str) -> list[str]:
    """Check one sealed run chained to the walk so far; returns its events' hashes."""
    try:
        table = pq.ParquetFile(run.path).read()
        meta = dict(pq.ParquetFile(run.path).metadata.metadata or {})
    except (OSError, pa.ArrowException) as exc:
        raise _Broken(f"{label} cannot be read as Parquet ({exc}); the file was damaged") from None
    if is_earlier_release(meta):
        raise _Broken(f"{label} {EARLIER_RELEASE}")
    if not table.schema.equals(AUDIT_EVENTS, check_metadata=False):
        raise _Broken(f"{label} does not have the audit schema; the file was rewritten")
    if (
        meta.get(META_DATASET) != b"audit"
        or meta.get(META_VERSION) != str(AUDIT_SCHEMA_VERSION).encode()
    ):
        raise _Broken(f"{label} is not marked as audit schema version {AUDIT_SCHEMA_VERSION}")
    try:
        recorded = {key: meta[key].decode() for key in (META_RUN_ID, META_PREV, META_LAST)}
        recorded_number, recorded_count = int(meta[META_RUN_NUMBER]), int(meta[META_COUNT])
    except (KeyError, ValueError):
        raise _Broken(f"{label} lacks its run metadata; the file was rewritten") from None
    if recorded[META_RUN_ID] != run.run_id or recorded_number != run.number:
        raise _Broken(
            f"{label} records run {recorded_number} ({recorded[META_RUN_ID]}) in its metadata, "
            "not the run its name says; the file was renamed"
        )
    head = walk.last
    if recorded[META_PREV] != head:
        raise _Broken(
            f"{label}: its recorded prev_run_last_hash is not the last hash of {previous}; "
            "the file's metadata was altered, or a run before it was removed or replaced"
        )
    rows = table.to_pylist()
    _check_seqs(label, [row["seq"] for row in rows], recorded_count)
    hashes: list[str] = []
    for row in rows:
        seq = row["seq"]
        if row["run_id"] != run.run_id:
            raise _Broken(
                f"{label}: seq {seq} belongs to another run; events were moved between files"
            )
        if row["prev_hash"] != head:
            if seq == 0:
                raise _Broken(
                    f"{label}: seq 0's prev_hash does not match the file's recorded "
                    f"prev_run_last_hash ({recorded[META_PREV]}); the event or the metadata "
                    "was altered"
                )
            raise _Broken(
                f"{label}: seq {seq}'s prev_hash is not the hash of seq {seq - 1}; an event "
                "before it is missing, or was altered and re-hashed"
            )
        _check_hash(f"{label}: seq {seq}", row, chain, first=walk.events + len(hashes) == 0)
        head = row["hash"]
        hashes.append(head)
    if recorded[META_LAST] != head:
        last = f"its last event (seq {len(rows) - 1})" if rows else "its previous run"
        raise _Broken(
            f"{label}: its recorded last_hash does not match the hash of {last}; the file's "
            "metadata was altered"
        )
    return hashes


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


def _check_hash(where: str, event: dict[str, Any], chain: bytes, *, first: bool) -> None:
    """The event's hash is its keyed hash; say how it was forged when that can be told."""
    try:
        body = canonical_event(event)
    except ValueError:
        body = None  # NaN or infinity cannot be in a genuine event
    if body is not None and event_mac(event, chain) == event["hash"]:
        return
    if body is not None and hashlib.sha256(body).hexdigest() == event["hash"]:
        raise _Broken(
            f"{where} was altered: its hash is an unkeyed sha256 of its content, which this "
            "release never writes; the event was rewritten and re-hashed without the audit key"
        )
    hint = (
        " (nothing before it verified: if no event does, the log was written with another "
        "GLADLY_AUDIT_KEY, or rewritten by someone without the key)"
        if first
        else ""
    )
    raise _Broken(f"{where} was altered: its content no longer matches its keyed hash{hint}")


# -- journals ---------------------------------------------------------------------------------


def _read_journal(path: Path) -> Journal:
    """A journal read back (a torn last line dropped); FileNotFoundError if it was sealed."""
    try:
        return read_journal(path)
    except FileNotFoundError:
        raise
    except AuditError as exc:
        raise _Broken(str(exc)) from None
    except OSError as exc:
        raise _Broken(f"audit journal {path} cannot be read ({exc.strerror})") from None


def _verify_journal(journal: Journal, chain: bytes, walk: _Walk, previous: str) -> list[str]:
    """Check an unsealed journal chained to the walk so far; returns its events' hashes."""
    label = f"journal {journal.path.name} (unsealed run {journal.run_id})"
    events = journal.events
    if events and events[0]["prev_hash"] == GENESIS_V1:
        raise _Broken(f"{label} {EARLIER_RELEASE}")
    try:
        events_table(events)
    except (pa.ArrowException, TypeError, ValueError):
        # Arrow's message quotes the offending value: name the journal only.
        raise _Broken(
            f"{label} holds an event with a field of the wrong type; the journal was edited"
        ) from None
    head = walk.last
    hashes: list[str] = []
    for position, event in enumerate(events):
        where = f"{label} line {position + 1}"
        if event["seq"] != position:
            raise _Broken(
                f"{where} holds seq {event['seq']} where seq {position} belongs; an event was "
                "deleted, added or moved"
            )
        if event["run_id"] != journal.run_id:
            raise _Broken(f"{where} belongs to another run; events were moved between journals")
        if event["prev_hash"] != head:
            if position == 0:
                raise _Broken(
                    f"{label}: its first event does not link to what precedes it, {previous}; "
                    "a run before it was removed or replaced, or the journal was edited"
                )
            raise _Broken(
                f"{where}: its prev_hash is not the hash of line {position}; an event before "
                "it is missing, or was altered and re-hashed"
            )
        _check_hash(where, event, chain, first=walk.events + position == 0)
        head = event["hash"]
        hashes.append(head)
    return hashes
