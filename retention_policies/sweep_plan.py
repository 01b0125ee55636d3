"""The sweep's findings as a plan `apply` executes, and the `--new` watermark beside the archive.

One target per item found: redact what Gladly can redact, delete a customer activity, and list
the rest as not erasable via the API (a person erases those in Gladly); an item a legal hold
protects goes to the plan's held rows instead. The plan has the shape and files of a retention
plan, so `gladly-pipeline apply PLAN --approve HASH` runs it with the same approval, hold
re-check, audit and recovery, then erases our archive's copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from gladly_archive import Archive
from gladly_archive.fs import ArchiveLockedError, WriterLock, atomic_write_bytes, exists, read_bytes
from gladly_archive.keyed import audit_key
from retention_policies.facts import Progress
from retention_policies.holds import HoldRegistry
from retention_policies.plan import TARGET_SCHEMA, Plan
from retention_policies.planning import plans_dir
from retention_policies.sweep import SweepScan, scan_archive
from retention_policies.sweep_holds import sweep_holds
from retention_policies.vocab import DELETABLE_TYPES, REDACTABLE_TYPES

__all__ = [
    "STATE_PATH",
    "SWEEP_POLICY",
    "SweepResult",
    "build_sweep_plan",
    "jobs_since",
    "make_sweep",
    "read_watermark",
]

# The policy name of sweep plans: their targets belong to the sweep (its findings' hash is the
# policy hash); there is no policy definition to re-check, only holds.
SWEEP_POLICY = "sensitive-data-sweep"
# Relative to the archive root: {"swept_through": the newest job commit (its manifest's
# archived_at) swept, "written_at"}.
STATE_PATH = "_sweep/state.json"
# One `--new` sweep at a time: its own lock, never the archive's writer lock (see make_sweep).
_LOCK_PATH = "_sweep/lock"


@dataclass
class SweepResult:
    """The scan, and the plan with where it was written (None when nothing was found)."""

    scan: SweepScan
    plan: Plan | None
    path: Path | None

    @property
    def held(self) -> int:
        """Items found that a legal hold protects (in the plan's held rows, not its targets)."""
        return self.plan.held.num_rows if self.plan is not None else 0


def operation_for(content_type: str) -> str:
    """What the API can do to an item of this type."""
    if content_type in REDACTABLE_TYPES:
        return "redact"
    if content_type in DELETABLE_TYPES:
        return "delete"
    return "not_erasable_via_api"


def _sweep_hash(findings: pa.Table, kinds: Iterable[str], scope: Mapping[str, Any]) -> str:
    """The sweep's identity: what it looked for, where, and what it found (positions only)."""
    content = {
        "kinds": sorted(kinds),
        "scope": dict(scope),
        "findings": findings.select(["item_id", "kind", "field", "start", "end"]).to_pylist(),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_sweep_plan(
    scan: SweepScan,
    *,
    kinds: Iterable[str],
    now: datetime,
    holds_hash: str,
    scope: Mapping[str, Any],
    held: Mapping[str, list[str]] | None = None,
) -> Plan:
    """One item target per item with findings; its facts list the kinds, fields and spans.
    An item in `held` (item id → hold labels) is a held row instead, never a target."""
    on_hold = held or {}
    wanted = sorted(kinds)
    sweep_id = _sweep_hash(scan.findings, wanted, scope)
    by_item: dict[str, dict[str, Any]] = {}
    for row in scan.findings.to_pylist():
        entry = by_item.setdefault(row["item_id"], {"row": row, "findings": [], "kinds": set()})
        entry["findings"].append({k: row[k] for k in ("kind", "field", "start", "end")})
        entry["kinds"].add(row["kind"])
    rows = []
    for item_id in sorted(by_item):
        entry = by_item[item_id]
        first = entry["row"]
        operation = operation_for(str(first["content_type"]))
        facts = {"kinds": sorted(entry["kinds"]), "findings": entry["findings"]}
        labels = sorted(on_hold.get(item_id, ()))
        rows.append(
            {
                "target_type": "item",
                "target_id": item_id,
                "customer_id": first["customer_id"],
                "conversation_id": first["conversation_id"],
                "policy_name": SWEEP_POLICY,
                "policy_hash": sweep_id,
                "action": "redact_items",
                # As the planner's held rows: the action, never an operation to run.
                "operation": "redact_items" if labels else operation,
                "erasable": not labels and operation != "not_erasable_via_api",
                "content_type": first["content_type"],
                "close_open_conversations": False,
                "matched_facts_json": json.dumps(facts, sort_keys=True),
                "excluded_by_holds": labels,
            }
        )
    targets = pa.Table.from_pylist(
        [r for r in rows if not r["excluded_by_holds"]], schema=TARGET_SCHEMA
    )
    held_rows = pa.Table.from_pylist(
        [r for r in rows if r["excluded_by_holds"]], schema=TARGET_SCHEMA
    )
    policy = {
        "name": SWEEP_POLICY,
        "version_hash": sweep_id,
        "resource": "item",
        "action": "redact_items",
        "enabled": True,
        "status": "planned",
        "reason": "sensitive-data sweep: " + ", ".join(wanted),
        "population": scan.items_scanned,
        "matched": len(rows),
        "held": held_rows.num_rows,
        "eligible": targets.num_rows,
        "kinds": wanted,
        "items_by_kind": scan.items_by_kind(),
        "scope": dict(scope),
    }
    return Plan(
        now=now, targets=targets, held=held_rows, policies=[policy], holds_hash=holds_hash,
    )  # fmt: skip


def read_watermark(archive: Archive) -> datetime | None:
    """The newest `archived_at` an earlier sweep covered; None before the first. A state file
    that cannot be read is an error naming it (never taken as "nothing swept yet")."""
    path = archive.path(STATE_PATH)
    if not exists(archive.fs, path):
        return None
    try:
        state = json.loads(read_bytes(archive.fs, path))
        value = state["swept_through"]
        return None if value is None else datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: unreadable sweep state ({type(exc).__name__}); fix or delete it "
            "(then sweep with --since or everything)"
        ) from None


def _write_watermark(archive: Archive, swept_through: datetime, now: datetime) -> None:
    state = {"swept_through": swept_through.isoformat(), "written_at": now.isoformat()}
    data = (json.dumps(state, sort_keys=True) + "\n").encode()
    atomic_write_bytes(archive.fs, archive.path(STATE_PATH), data)


def jobs_since(archive: Archive, after: datetime | None) -> tuple[list[str], datetime | None]:
    """The jobs committed after `after` (by their manifest's `archived_at`, stamped at commit
    under the writer lock), and the newest commit time of all: the watermark once they are
    swept. A job is archived exactly when its manifest exists, and the manifest is written
    after every file of the job is in place; so these jobs' items are all there to read."""
    manifest = archive.read_manifest().select(["job_id", "archived_at"]).to_pylist()
    if not manifest:
        return [], None
    through = max(row["archived_at"] for row in manifest)
    jobs = [r["job_id"] for r in manifest if after is None or r["archived_at"] > after]
    return sorted(jobs), through


def make_sweep(
    root: str,
    kinds: Iterable[str],
    *,
    since: date | None = None,
    new: bool = False,
    out: str | Path | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
    holds_path: str | Path | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Scan the archive and write the plan of what was found (default
    `<root>/_plans/sweep-<UTC timestamp>`); with `new`, only the items of the jobs committed
    since the last `new` sweep, and the watermark moves once the plan (if any) is in place.
    With `holds_path` (needs GLADLY_AUDIT_KEY) an item a legal hold protects is a held row of
    the plan, as in a retention plan; apply re-checks the holds before each call either way.
    `progress` hears the items scanned (sweep.SWEEP_PHASE) and any fact tables built for the
    holds (facts.FACTS_PHASE).

    It reads without the archive's writer lock, so it runs while an export writes. That is
    safe because `new` sweeps by committed job, not by time seen: the jobs are those whose
    manifest (written last, after all their files) was there when the sweep began, and the
    watermark becomes their newest commit time. A job committing meanwhile, even one whose
    files are half renamed, is left whole to the next sweep. (Items carry the export run's
    start as `archived_at`, the same for every job of a run: a watermark of the newest
    `archived_at` read would skip the rest of a run whose first job a sweep had seen.)
    Only one `new` sweep runs at a time (a lock of its own under `_sweep/`): two would both
    read the watermark and write overlapping plans."""
    if since is not None and new:
        raise ValueError("--since and --new: give one of them (or neither, to sweep everything)")
    wanted = tuple(kinds)
    moment = now or datetime.now(UTC)
    archive = Archive(root)
    if not exists(archive.fs, archive.root):
        raise ValueError(f"no archive at {root}: export into it first, or pass --root")
    archive.check_layout()
    key = audit_key(required=holds_path is not None, env=env)
    lock = WriterLock(archive.fs, archive.path(_LOCK_PATH))
    if new:
        try:
            lock.acquire()
        except ArchiveLockedError:
            raise ValueError(
                f"another `sweep --new` of {root} is running ({archive.path(_LOCK_PATH)}); "
                "run this one after it ends (it sweeps the same new items)"
            ) from None
    try:
        after = read_watermark(archive) if new else None
        jobs, through = jobs_since(archive, after) if new else (None, None)
        scan = scan_archive(archive, wanted, since=since, job_ids=jobs, progress=progress)
        registry, held = HoldRegistry.empty(key=key), {}
        if holds_path is not None:
            found = sweep_holds(root, holds_path, key, scan.findings, moment, progress=progress)
            registry, held = found.registry, dict(found.held)
        plan: Plan | None = None
        target: Path | None = None
        if scan.findings.num_rows:
            scope = {
                "since": since.isoformat() if since else None,
                "archived_after": after.isoformat() if after else None,
                "archived_through": through.isoformat() if through else None,
            }
            plan = build_sweep_plan(
                scan, kinds=wanted, now=moment, holds_hash=registry.hash, scope=scope, held=held
            )
            stamp = moment.strftime("%Y%m%dT%H%M%SZ")
            target = Path(out) if out is not None else plans_dir(root) / f"sweep-{stamp}"
            if out is None and target.exists():
                target = target.with_name(f"{target.name}-{plan.hash[:8]}")
            plan.write(target)
        if new and through is not None and (after is None or through > after):
            _write_watermark(archive, through, moment)
    finally:
        lock.release()
    return SweepResult(scan, plan, target)
