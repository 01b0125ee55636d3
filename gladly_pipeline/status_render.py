"""`gladly-pipeline status` as a person reads it (short lines, a block per section) and as a
machine reads it (one JSON object, docs/status.schema.json). Renders only: ids and counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from gladly_pipeline.status import EXPIRY_ATTENTION, SystemStatus, UnarchivedJob
from gladly_pipeline.status_plans import APPROVAL_OVERDUE

__all__ = ["JSON_SCHEMA_VERSION", "status_json", "status_lines"]

# Bump when a key of the JSON output is renamed, removed or changes meaning.
JSON_SCHEMA_VERSION = 1
HASH_PREFIX = 12
# Jobs listed one by one before the rest are counted.
_LISTED = 10


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}Z"


def _age(age: timedelta) -> str:
    seconds = age.total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def status_lines(status: SystemStatus) -> list[str]:
    """The human block per section: a heading, then indented lines short enough for a narrow
    terminal (no tables)."""
    lines = [
        f"Status at {_at(status.now)}",
        f"  archive {status.root}",
        "  read from the archive and its audit log"
        + ("; export jobs from Gladly (--live)" if status.unarchived.live else " (no Gladly call)"),
    ]
    for section in (
        _exports,
        _unarchived,
        _enrichment,
        _plans,
        _requests,
        _reappeared,
        _audit,
        _attention,
    ):
        lines.append("")
        lines.extend(section(status))
    return lines


def _exports(status: SystemStatus) -> list[str]:
    e = status.exports
    lines = ["Last export"]
    if e.last_archived_at is None:
        lines.append("  no export job archived yet")
    else:
        lines.append(f"  newest job archived {_at(e.last_archived_at)}")
        lines.append(f"  that is {_age(status.now - e.last_archived_at)} ago")
        lines.append(f"  job {e.last_job}")
    lines.append(f"  {_n(e.jobs_archived, 'export job')} archived in all")
    if e.customer_runs:
        lines.append(f"  and {_n(e.customer_runs, 'customer export')}")
    return lines


def _job_line(job: UnarchivedJob, now: datetime) -> str:
    left = (job.expires_at - now).total_seconds() / 86400
    when = f"in {left:.1f} days" if left >= 0 else "already"
    return f"  {job.job}: Gladly deletes it {when}"


def _unarchived(status: SystemStatus) -> list[str]:
    u = status.unarchived
    lines = ["Export jobs not archived"]
    if not u.live:
        lines.append("  not known: the archive records only the jobs it archived")
        lines.append("  (--live asks Gladly)")
        return lines
    expiring = u.expiring(status.now)
    days = EXPIRY_ATTENTION.days
    lines.append(f"  {_n(len(u.jobs), 'completed job')} not archived (from Gladly)")
    lines.append(f"  {len(expiring)} within {days} days of expiry")
    lines.extend(_job_line(job, status.now) for job in u.jobs[:_LISTED])
    if len(u.jobs) > _LISTED:
        lines.append(f"  … and {len(u.jobs) - _LISTED} more")
    lines.extend(f"  {job.job}: FAILED in Gladly" for job in u.failed)
    return lines


def _enrichment(status: SystemStatus) -> list[str]:
    e = status.enrichment
    lines = ["Enrichment (conversation facts)"]
    if e.as_of is None:
        lines.append("  no pass recorded")
    else:
        lines.append(f"  facts as of {_at(e.as_of)}")
        lines.append(f"  that is {_age(status.now - e.as_of)} ago")
    if e.covered_from is not None:
        lines.append(f"  covering conversations from {e.covered_from}")
    lines.append(f"  next pass: {e.next_pass} ({e.reason})")
    return lines


def _plans(status: SystemStatus) -> list[str]:
    p = status.plans
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


def _requests(status: SystemStatus) -> list[str]:
    r = status.requests
    lines = ["Erasure runs and requests"]
    if not r.unfinished_runs and not r.open:
        lines.append("  nothing interrupted or failed")
    for run in r.unfinished_runs:
        lines.append(f"  run {run.run_id}")
        lines.append(f"    started {_at(run.started_at)}, not finished")
        lines.append("    (running now, or stopped: the next run's recovery sweep re-checks it)")
    for request in r.open:
        counted = [
            f"{count} {what}"
            for what, count in (
                ("failed", request.failed),
                ("interrupted", request.interrupted),
                ("not reached", request.not_reached),
            )
            if count
        ]
        of = f" of {request.targets:,}" if request.targets is not None else ""
        lines.append(f"  {request.kind} {request.hash[:HASH_PREFIX]}:")
        lines.append(f"    {', '.join(counted)}{of} targets")
        lines.append(f"    last run {request.last_run_id}")
    return lines


def _reappeared(status: SystemStatus) -> list[str]:
    r = status.reappeared
    lines = ["Reappeared customers"]
    if not r.checked:
        lines.append("  not checked: set GLADLY_AUDIT_KEY")
    elif not r.customers:
        lines.append("  none")
    for one in r.customers:
        lines.append(f"  customer {one.customer_id}")
        lines.append(f"    has the {one.matched_on} of erased {one.tombstoned_id}")
        lines.append(f"    (erased {one.deleted_at:%Y-%m-%d})")
    lines.append(f"  {_n(r.tombstones, 'erased customer')} on record")
    return lines


def _audit(status: SystemStatus) -> list[str]:
    a = status.audit
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


def _attention(status: SystemStatus) -> list[str]:
    notes = status.attention()
    if not notes:
        return ["Nothing needs attention."]
    return ["Needs attention", *(f"  - {note}" for note in notes)]


# -- JSON -------------------------------------------------------------------------------------


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _hours(age: timedelta) -> float:
    return round(age.total_seconds() / 3600, 3)


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _job(job: UnarchivedJob, now: datetime) -> dict[str, Any]:
    return {
        "job": job.job,
        "status": job.status,
        "completed_at": _time(job.completed_at),
        "expires_at": _time(job.expires_at),
        "days_to_expiry": round((job.expires_at - now).total_seconds() / 86400, 3),
    }


def status_json(status: SystemStatus) -> dict[str, Any]:
    """The status as one JSON-ready object (docs/status.schema.json)."""
    now = status.now
    e, u, f, p, r, a = (
        status.exports,
        status.unarchived,
        status.enrichment,
        status.plans,
        status.requests,
        status.audit,
    )
    notes = status.attention()
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "root": status.root,
        "now": _time(now),
        "attention": bool(notes),
        "attention_notes": notes,
        "last_export": {
            "jobs_archived": e.jobs_archived,
            "customer_exports": e.customer_runs,
            "last_job": e.last_job,
            "last_archived_at": _time(e.last_archived_at),
            "age_hours": None if e.last_archived_at is None else _hours(now - e.last_archived_at),
        },
        "unarchived_jobs": {
            "source": "gladly" if u.live else "archive",
            "known": u.live,
            "jobs": [_job(job, now) for job in u.jobs] if u.live else None,
            "failed": [_job(job, now) for job in u.failed] if u.live else None,
            "within_days": EXPIRY_ATTENTION.days,
            "expiring": len(u.expiring(now)) if u.live else None,
        },
        "enrichment": {
            "as_of": _time(f.as_of),
            "age_hours": None if f.as_of is None else _hours(now - f.as_of),
            "covered_from": _day(f.covered_from),
            "next_pass": f.next_pass,
            "reason": f.reason,
        },
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
        "reappeared": {
            "checked": status.reappeared.checked,
            "erased_customers": status.reappeared.tombstones,
            "customers": [
                {
                    "customer_id": one.customer_id,
                    "tombstoned_id": one.tombstoned_id,
                    "matched_on": one.matched_on,
                    "erased_at": _time(one.deleted_at),
                }
                for one in status.reappeared.customers
            ]
            if status.reappeared.checked
            else None,
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
