"""The sweep's findings as a plan `apply` executes, and the `--new` watermark beside the archive.

One target per item found: redact what Gladly can redact, delete a customer activity, and list
the rest as not erasable via the API (a person erases those in Gladly). The plan has the shape
and files of a retention plan, so `gladly-pipeline apply PLAN --approve HASH` runs it with the
same approval, hold re-check, audit and recovery, then erases our archive's copy.
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
from gladly_archive.fs import atomic_write_bytes, exists, read_bytes
from gladly_archive.keyed import audit_key
from retention_policies.holds import HoldRegistry
from retention_policies.plan import TARGET_SCHEMA, Plan
from retention_policies.planning import plans_dir
from retention_policies.sweep import SweepScan, scan_archive
from retention_policies.vocab import DELETABLE_TYPES, REDACTABLE_TYPES

__all__ = [
    "STATE_PATH",
    "SWEEP_POLICY",
    "SweepResult",
    "build_sweep_plan",
    "make_sweep",
    "read_watermark",
]

# The policy name of sweep plans: their targets belong to the sweep (its findings' hash is the
# policy hash); there is no policy definition to re-check, only holds.
SWEEP_POLICY = "sensitive-data-sweep"
# Relative to the archive root: {"swept_through": newest archived_at swept, "written_at"}.
STATE_PATH = "_sweep/state.json"


@dataclass
class SweepResult:
    """The scan, and the plan with where it was written (None when nothing was found)."""

    scan: SweepScan
    plan: Plan | None
    path: Path | None


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
) -> Plan:
    """One item target per item with findings; its facts list the kinds, fields and spans."""
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
        rows.append(
            {
                "target_type": "item",
                "target_id": item_id,
                "customer_id": first["customer_id"],
                "conversation_id": first["conversation_id"],
                "policy_name": SWEEP_POLICY,
                "policy_hash": sweep_id,
                "action": "redact_items",
                "operation": operation,
                "erasable": operation != "not_erasable_via_api",
                "content_type": first["content_type"],
                "close_open_conversations": False,
                "matched_facts_json": json.dumps(facts, sort_keys=True),
                "excluded_by_holds": [],
            }
        )
    targets = pa.Table.from_pylist(rows, schema=TARGET_SCHEMA)
    policy = {
        "name": SWEEP_POLICY,
        "version_hash": sweep_id,
        "resource": "item",
        "action": "redact_items",
        "enabled": True,
        "status": "planned",
        "reason": "sensitive-data sweep: " + ", ".join(wanted),
        "population": scan.items_scanned,
        "matched": targets.num_rows,
        "held": 0,
        "eligible": targets.num_rows,
        "kinds": wanted,
        "items_by_kind": scan.items_by_kind(),
        "scope": dict(scope),
    }
    return Plan(
        now=now, targets=targets, held=TARGET_SCHEMA.empty_table(), policies=[policy],
        holds_hash=holds_hash,
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


def make_sweep(
    root: str,
    kinds: Iterable[str],
    *,
    since: date | None = None,
    new: bool = False,
    out: str | Path | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> SweepResult:
    """Scan the archive and write the plan of what was found (default
    `<root>/_plans/sweep-<UTC timestamp>`); with `new`, only items archived since the last
    sweep, and the watermark moves once the plan (if any) is in place. Reads under the
    archive's writer lock, so no export commits halfway through the scan."""
    if since is not None and new:
        raise ValueError("--since and --new: give one of them (or neither, to sweep everything)")
    wanted = tuple(kinds)
    moment = now or datetime.now(UTC)
    archive = Archive(root)
    if not exists(archive.fs, archive.root):
        raise ValueError(f"no archive at {root}: export into it first, or pass --root")
    lock = archive.lock()
    lock.acquire()
    try:
        after = read_watermark(archive) if new else None
        scan = scan_archive(archive, wanted, since=since, archived_after=after)
        plan: Plan | None = None
        target: Path | None = None
        if scan.findings.num_rows:
            scope = {
                "since": since.isoformat() if since else None,
                "archived_after": after.isoformat() if after else None,
            }
            key = audit_key(required=False, env=env)
            holds_hash = HoldRegistry.empty(key=key).hash
            plan = build_sweep_plan(
                scan, kinds=wanted, now=moment, holds_hash=holds_hash, scope=scope
            )
            stamp = moment.strftime("%Y%m%dT%H%M%SZ")
            target = Path(out) if out is not None else plans_dir(root) / f"sweep-{stamp}"
            if out is None and target.exists():
                target = target.with_name(f"{target.name}-{plan.hash[:8]}")
            plan.write(target)
        if new:
            newest = scan.newest_archived_at or after
            if newest is not None:
                _write_watermark(archive, newest, moment)
    finally:
        lock.release()
    return SweepResult(scan, plan, target)
