"""Erasure follows the data: tombstones for erased customers, and their purge from our archive."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import AuditLog, AuditRun
from audit_log import outcomes as o
from erasure.subjects import Subjects
from gladly_archive import Archive
from gladly_archive.item_purge import delete_items, redact_items
from gladly_archive.location import drop_facts
from gladly_archive.purge import Progress, purge_customers, still_listed
from gladly_archive.tombstones import read_tombstones, write_tombstones
from retention_policies.holds import HoldRegistry
from retention_policies.sweep_plan import SWEEP_POLICY

__all__ = ["detail_json", "purge_erased_items", "tombstone_and_purge"]

# Outcomes after which Gladly no longer holds the customer (so neither may we). An already
# absent customer gets a tombstone only if our archive held it: nothing else was ours to erase.
_ERASED = (o.DELETED, o.ALREADY_ABSENT)


def detail_json(value: object, **kw: object) -> str:
    """JSON for an audit event's detail. Counts of a million and more are written with
    thousands separators: the audit log refuses a bare run of 7+ digits (it could be a phone
    number), and a count must never be what stops a deletion run."""

    def spaced(v: object) -> object:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and abs(v) >= 1_000_000:
            return f"{v:,}"
        if isinstance(v, dict):
            return {k: spaced(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [spaced(x) for x in v]
        return v

    return json.dumps(spaced(value), **kw)  # type: ignore[arg-type]


def _erased_customers(events: pa.Table) -> dict[str, set[str]]:
    """Customer ids Gladly no longer holds according to the log, with the ids they were
    merged under (both must leave our archive)."""
    if events.num_rows == 0:
        return {}
    mask = pc.and_(
        pc.and_(
            pc.equal(events.column("step"), "outcome"),
            pc.equal(events.column("target_type"), "customer"),
        ),
        pc.is_in(events.column("outcome"), pa.array(_ERASED)),
    )
    merges = pc.and_(
        pc.equal(events.column("step"), "preflight"),
        pc.equal(events.column("outcome"), "merged"),
    )
    merged: dict[str, str] = {
        r["target_id"]: r["detail"]
        for r in events.filter(merges).select(["target_id", "detail"]).to_pylist()
        if r["detail"]
    }
    out: dict[str, set[str]] = {}
    for row in events.filter(mask).select(["target_id"]).to_pylist():
        cid = row["target_id"]
        out[cid] = {cid} | ({merged[cid]} if cid in merged else set())
    return out


def _absent_only(events: pa.Table) -> set[str]:
    """Customers the log calls already absent and never deleted (by us)."""
    if events.num_rows == 0:
        return set()
    rows = events.filter(
        pc.and_(
            pc.equal(events.column("step"), "outcome"),
            pc.equal(events.column("target_type"), "customer"),
        )
    ).select(["target_id", "outcome"])
    absent = {r["target_id"] for r in rows.to_pylist() if r["outcome"] == o.ALREADY_ABSENT}
    deleted = {r["target_id"] for r in rows.to_pylist() if r["outcome"] == o.DELETED}
    return absent - deleted


def tombstone_and_purge(
    archive: Archive,
    run: AuditRun,
    log: AuditLog,
    root: str,
    key: bytes,
    report: o.RunReport,
    subjects: Subjects | None = None,
    merged: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> None:
    """Every customer the log says is erased in Gladly: tombstone it if it has no tombstone
    yet (keyed hashes of its contacts), and purge every tombstoned customer our archive still
    lists (a run killed between the two left some). Idempotent; a no-op when all is done.
    `progress` hears the purge (gladly_archive.purge.purge_phase)."""
    events = log.events()
    erased = _erased_customers(events)
    if not erased:
        return
    stones = read_tombstones(archive)
    have = set(stones.column("customer_id").to_pylist()) if stones.num_rows else set()
    missing = {cid: ids for cid, ids in erased.items() if cid not in have}
    absent = _absent_only(events) & set(missing)
    if absent:
        ours = still_listed(archive, _flatten(missing[c] for c in absent))
        missing = {c: ids for c, ids in missing.items() if c not in absent or ids & ours}
    rows: list[dict[str, object]] = []
    if missing:
        if subjects is None:
            subjects = Subjects.load(root, _flatten(missing.values()), ())
        rows = _tombstone_rows(missing, subjects, key, report, merged or {})
        run.append(
            target_type="archive",
            step="tombstone",
            phase="intent",
            detail=detail_json({"customers": len(rows)}),
        )
        write_tombstones(archive, rows, run_id=report.run_id)
        report.tombstoned += len(rows)
    tombstoned = have | {str(r["customer_id"]) for r in rows}
    purged = sorted({str(r["customer_id"]) for r in rows} | still_listed(archive, tombstoned))
    if not purged:
        return
    run.append(
        target_type="archive", step="purge", phase="intent", detail=f"{len(purged)} customers"
    )
    purge = purge_customers(archive, purged, progress=progress)
    drop_facts(root)  # the planner's saved facts still hold the erased customers' contacts
    report.purge = {
        "customers": purge.customers,
        "rows_removed": purge.rows_removed,
        "files_rewritten": purge.files_rewritten,
        "files_deleted": purge.files_deleted,
        "not_purged": purge.not_purged,
    }
    run.append(
        target_type="archive",
        step="purge",
        phase="result",
        outcome="ok",
        detail=detail_json(report.purge, sort_keys=True),
    )


def _tombstone_rows(
    missing: Mapping[str, set[str]],
    subjects: Subjects,
    key: bytes,
    report: o.RunReport,
    merged: Mapping[str, str],
) -> list[dict[str, object]]:
    registry = HoldRegistry.empty(key=key)
    deleted_at = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for cid, ids in sorted(missing.items()):
        emails = {e for i in ids for e in subjects.subject(i).emails}
        phones = {p for i in ids for p in subjects.subject(i).phones}
        for one in sorted(ids | ({merged[cid]} if cid in merged else set())):
            rows.append(
                {
                    "customer_id": one,
                    "email_hashes": sorted(registry.hash_email(e) for e in emails),
                    "phone_hashes": sorted(registry.hash_phone(p) for p in phones),
                    "deleted_at": deleted_at,
                    "run_id": report.run_id,
                    "plan_hash": report.plan_hash,
                }
            )
    return rows


def _flatten(groups: Iterable[set[str]]) -> set[str]:
    return {one for group in groups for one in group}


def _archive_erases(policy_name: str | None, outcome: str | None) -> str | None:
    """What our archive's copy of an item becomes after this outcome of a run that acted: what
    Gladly did, or for a sweep's finding Gladly's API cannot erase, redacted all the same (the
    number stays in Gladly for a person to remove; our copy need not keep it)."""
    if outcome in (o.REDACTED, o.ITEM_DELETED):
        return outcome
    if outcome == o.NOT_ERASABLE and policy_name == SWEEP_POLICY:
        return o.REDACTED
    return None


def _items_pending(events: pa.Table) -> tuple[dict[str, str], dict[str, str]]:
    """Items Gladly redacted or deleted for us (runs that acted), and sweep findings it cannot
    erase, whose copy in our archive was not yet erased — no `archive_purge` event for them:
    (to redact, to delete), item → customer."""
    if events.num_rows == 0:
        return {}, {}
    rehearsals = o.rehearsal_runs(events)
    rows = events.filter(
        pc.and_(
            pc.equal(events.column("target_type"), "item"),
            pc.is_in(events.column("step"), pa.array(["outcome", "archive_purge"])),
        )
    ).select(["run_id", "step", "target_id", "customer_id", "outcome", "policy_name"])
    erased: dict[str, tuple[str, str]] = {}
    done: set[str] = set()
    for row in rows.to_pylist():
        if row["step"] == "archive_purge":
            done.add(row["target_id"])
        elif row["run_id"] not in rehearsals and row["step"] == "outcome":
            becomes = _archive_erases(row["policy_name"], row["outcome"])
            if becomes is not None:
                erased[row["target_id"]] = (row["customer_id"] or "", becomes)
    todo = {i: v for i, v in erased.items() if i not in done and v[0]}
    redact = {i: c for i, (c, kind) in todo.items() if kind == o.REDACTED}
    delete = {i: c for i, (c, kind) in todo.items() if kind == o.ITEM_DELETED}
    return redact, delete


def purge_erased_items(archive: Archive, run: AuditRun, log: AuditLog, report: o.RunReport) -> None:
    """Items the log says Gladly redacted or deleted leave our archive too: their text (items,
    transcripts, raw_json) is erased, deleted items' rows removed — crash-safe, and a rerun
    finishes what a killed run left (an item is done once its `archive_purge` event exists)."""
    redact, delete = _items_pending(log.events())
    if not redact and not delete:
        return
    run.append(
        target_type="archive",
        step="item_purge",
        phase="intent",
        detail=detail_json({"redact": len(redact), "delete": len(delete)}),
    )
    missing: set[str] = set()
    counts: dict[str, int] = {}
    for items, erase in ((redact, redact_items), (delete, delete_items)):
        if items:
            done = erase(archive, items)
            missing |= set(done.not_found)
            counts[done.action] = done.items_changed
            counts["transcripts_rebuilt"] = (
                counts.get("transcripts_rebuilt", 0) + done.transcripts_rebuilt
            )
    for item_id, customer_id in sorted({**redact, **delete}.items()):
        run.append(
            target_type="item",
            target_id=item_id,
            customer_id=customer_id,
            step="archive_purge",
            phase="result",
            # An item our archive never held (or holds under another customer id) is said so.
            outcome="not_in_archive" if item_id in missing else "ok",
        )
    report.purge["items"] = {**counts, "not_in_archive": len(missing)}
