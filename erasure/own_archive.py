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
from gladly_archive.location import drop_facts
from gladly_archive.purge import purge_customers, still_listed
from gladly_archive.tombstones import read_tombstones, write_tombstones
from retention_policies.holds import HoldRegistry

__all__ = ["detail_json", "tombstone_and_purge"]

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
) -> None:
    """Every customer the log says is erased in Gladly: tombstone it if it has no tombstone
    yet (keyed hashes of its contacts), and purge every tombstoned customer our archive still
    lists (a run killed between the two left some). Idempotent; a no-op when all is done."""
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
    purge = purge_customers(archive, purged)
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
