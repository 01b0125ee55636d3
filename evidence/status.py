"""The audit log's half of the status: plans awaiting approval, erasure runs and requests left
unfinished, the chain (read in `evidence.status_plans` and `evidence.status_audit`); what needs
a person, and each section as a person reads it and as a machine does. Also the order in which
the status shows both halves' sections, for the two places that join them (the command line and
the flows' artifact). Plain strings; ids, hashes and counts only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from evidence.status_audit import (
    ChainState,
    OpenRequest,
    RequestsState,
    read_audit,
    requests_state,
)
from evidence.status_plans import APPROVAL_OVERDUE, PlansState, list_plans, plans_state
from gladly_archive.wording import age as _age
from gladly_archive.wording import at as _at
from gladly_archive.wording import counted as _n
from gladly_archive.wording import hours as _hours
from gladly_archive.wording import iso_time as _time

__all__ = ["HASH_PREFIX", "SECTIONS", "AuditStatus", "in_status_order", "read_audit_status"]

# The status's sections in the order it shows them, the archive's (`ingest.status`) and the
# audit log's interleaved; the keys of docs/status.schema.json.
SECTIONS = (
    "last_export",
    "unarchived_jobs",
    "enrichment",
    "plans",
    "requests",
    "reappeared",
    "refilled_details",
    "audit",
)
HASH_PREFIX = 12

T = TypeVar("T")


def in_status_order(*halves: Mapping[str, T]) -> dict[str, T]:
    """The halves' parts (each keyed by section) as one mapping in SECTIONS order; ValueError
    unless the halves together hold each section exactly once."""
    merged = {name: part for half in halves for name, part in half.items()}
    if sorted(merged) != sorted(SECTIONS) or sum(map(len, halves)) != len(SECTIONS):
        held = sorted(name for half in halves for name in half)
        raise ValueError(f"the status's sections are {list(SECTIONS)}, not {held}")
    return {name: merged[name] for name in SECTIONS}


@dataclass(frozen=True)
class AuditStatus:
    """The audit log's sections of the status; each output is keyed by section (`plans`,
    `requests`, `audit`)."""

    plans: PlansState
    requests: RequestsState
    chain: ChainState

    def attention(self) -> dict[str, list[str]]:
        """What needs a person, one line each per section; empty lists when nothing does."""
        plans = [
            f"plan {plan.hash[:HASH_PREFIX]} has awaited approval "
            f"{plan.age.total_seconds() / 3600:.1f} h"
            for plan in self.plans.awaiting
            if plan.overdue
        ]
        requests = [
            f"run {run.run_id} started {run.started_at:%Y-%m-%d %H:%M}Z and did not finish"
            for run in self.requests.unfinished_runs
        ]
        requests += [
            f"{request.kind} {request.hash[:HASH_PREFIX]}: {_left(request)}"
            for request in self.requests.open
        ]
        chain = []
        if self.chain.verified is False:
            chain.append(f"the audit chain does not verify: {self.chain.problem}")
        return {"plans": plans, "requests": requests, "audit": chain}

    def lines(self) -> dict[str, list[str]]:
        """Each section as a person reads it: a heading, then indented lines short enough for a
        narrow terminal (no tables)."""
        return {
            "plans": _plans_lines(self.plans),
            "requests": _requests_lines(self.requests),
            "audit": _chain_lines(self.chain),
        }

    def json(self) -> dict[str, Any]:
        """Each section as a JSON-ready object (docs/status.schema.json)."""
        p, r, a = self.plans, self.requests, self.chain
        return {
            "plans": {
                "directory": p.directory,
                "total": p.total,
                "executed": p.executed,
                "rejected": p.rejected,
                "one_off_not_executed": p.one_off,
                "overdue_after_hours": APPROVAL_OVERDUE.total_seconds() / 3600,
                "awaiting": [
                    {
                        "directory": plan.directory,
                        "hash_prefix": plan.hash[:HASH_PREFIX],
                        "planned_at": _time(plan.planned_at),
                        "age_hours": _hours(plan.age),
                        "targets": plan.targets,
                        "held": plan.held,
                        "blocked_policies": list(plan.blocked_policies),
                        "rehearsals": plan.rehearsals,
                        "overdue": plan.overdue,
                    }
                    for plan in p.awaiting
                ],
                "unreadable": [
                    {"directory": bad.directory, "problem": bad.problem} for bad in p.unreadable
                ],
            },
            "requests": {
                "unfinished_runs": [
                    {
                        "run_id": run.run_id,
                        "plan_hash_prefix": run.plan_hash[:HASH_PREFIX],
                        "started_at": _time(run.started_at),
                        "targets": run.targets,
                        "outcomes": run.outcomes,
                    }
                    for run in r.unfinished_runs
                ],
                "failed_targets": r.failed_targets,
                "interrupted_targets": r.interrupted_targets,
                "open": [
                    {
                        "kind": req.kind,
                        "hash_prefix": req.hash[:HASH_PREFIX],
                        "last_run_id": req.last_run_id,
                        "last_run_at": _time(req.last_run_at),
                        "targets": req.targets,
                        "finished": req.finished,
                        "failed": req.failed,
                        "interrupted": req.interrupted,
                        "not_reached": req.not_reached,
                    }
                    for req in r.open
                ],
            },
            "audit": {
                "exists": a.exists,
                "runs": a.runs,
                "unsealed": a.unsealed,
                "events": a.events,
                "head_hash_prefix": None if a.head_hash is None else a.head_hash[:HASH_PREFIX],
                "verified": a.verified,
                "problem": a.problem,
            },
        }


def read_audit_status(root: str, *, now: datetime, audit_key: bytes | None) -> AuditStatus:
    """Read `<root>`'s audit log and plans as of `now` (never written here). With `audit_key`
    the audit chain is verified."""
    audit = read_audit(root, audit_key)
    plans = list_plans(root)
    plan_keys = {p.hash: p.key for p in plans if p.hash is not None and p.key is not None}
    return AuditStatus(
        plans=plans_state(root, plans, audit, now),
        requests=requests_state(audit, plan_keys),
        chain=audit.chain,
    )


# -- as a person reads it ---------------------------------------------------------------------


def _plans_lines(p: PlansState) -> list[str]:
    lines = ["Plans awaiting approval"]
    if not p.awaiting:
        lines.append("  none")
    for plan in p.awaiting:
        over = f", over {APPROVAL_OVERDUE.total_seconds() / 3600:.0f} h" if plan.overdue else ""
        lines.append(f"  plan {plan.hash[:HASH_PREFIX]} ({plan.directory})")
        lines.append(f"    planned {_age(plan.age)} ago{over}")
        lines.append(f"    {_n(plan.targets, 'target')}, {plan.held:,} held")
        if plan.blocked_policies:
            lines.append(f"    blocked: {', '.join(plan.blocked_policies)}")
        if plan.rehearsals:
            lines.append(f"    rehearsed {_n(plan.rehearsals, 'time')}")
    for bad in p.unreadable:
        lines.append(f"  {bad.directory}: {bad.problem}")
    lines.append(
        f"  {_n(p.total, 'plan')} on disk: {p.executed} executed, {p.rejected} rejected, "
        f"{p.one_off} one-off never run"
    )
    return lines


def _requests_lines(r: RequestsState) -> list[str]:
    lines = ["Erasure runs and requests"]
    if not r.unfinished_runs and not r.open:
        lines.append("  nothing interrupted or failed")
    for run in r.unfinished_runs:
        lines.append(f"  run {run.run_id}")
        lines.append(f"    started {_at(run.started_at)}, not finished")
        lines.append("    (running now, or stopped: the next run's recovery sweep re-checks it)")
    for request in r.open:
        of = f" of {request.targets:,}" if request.targets is not None else ""
        lines.append(f"  {request.kind} {request.hash[:HASH_PREFIX]}:")
        lines.append(f"    {_left(request)}{of} targets")
        lines.append(f"    last run {request.last_run_id}")
    return lines


def _chain_lines(a: ChainState) -> list[str]:
    lines = ["Audit log"]
    if not a.exists:
        lines.append("  no audit log yet")
        return lines
    lines.append(f"  {_n(a.runs, 'run')} sealed, {a.unsealed} unsealed")
    lines.append(f"  {_n(a.events, 'event')}")
    if a.head_hash is not None:
        lines.append(f"  head {a.events}-{a.head_hash[:HASH_PREFIX]}…")
    if a.verified is None:
        lines.append("  not verified: set GLADLY_AUDIT_KEY")
    elif a.verified:
        lines.append("  the chain verifies")
    else:
        lines.append(f"  THE CHAIN DOES NOT VERIFY: {a.problem}")
    return lines


def _left(request: OpenRequest) -> str:
    """A request's targets without a final outcome, by why (`1 failed, 2 not reached`)."""
    pairs = (
        ("failed", request.failed),
        ("interrupted", request.interrupted),
        ("not reached", request.not_reached),
    )
    return ", ".join(f"{count} {what}" for what, count in pairs if count)


# -- as a machine reads it --------------------------------------------------------------------
