"""The archive's half of the status: its sections read (`ingest.status_sections`), what needs a
person, and each section as a person reads it (short lines) and as a machine does (the keys of
docs/status.schema.json). Plain strings; ids, times and counts only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gladly_archive import Archive
from gladly_archive.wording import age as _age
from gladly_archive.wording import at as _at
from gladly_archive.wording import counted as _n
from gladly_archive.wording import hours as _hours
from gladly_archive.wording import iso_time as _time
from gladly_client import GladlyClient
from ingest.status_sections import (
    EXPIRY_ATTENTION,
    EnrichmentStatus,
    ExportsStatus,
    ReappearedStatus,
    RefilledStatus,
    UnarchivedJob,
    UnarchivedStatus,
    check_archive_root,
    read_enrichment,
    read_exports,
    read_reappeared,
    read_refilled,
    read_unarchived,
)

__all__ = ["ArchiveStatus", "read_archive_status"]

# Jobs listed one by one before the rest are counted.
_LISTED = 10


@dataclass(frozen=True)
class ArchiveStatus:
    """The archive's sections of the status, as of `now`; each output is keyed by section
    (`last_export`, `unarchived_jobs`, `enrichment`, `reappeared`, `refilled_details`)."""

    root: str
    now: datetime
    exports: ExportsStatus
    unarchived: UnarchivedStatus
    enrichment: EnrichmentStatus
    reappeared: ReappearedStatus
    refilled: RefilledStatus

    def attention(self) -> dict[str, list[str]]:
        """What needs a person, one line each per section; empty lists when nothing does."""
        unarchived = [
            f"export job {job.job} is not archived and Gladly deletes it "
            f"{_until(job.expires_at - self.now)}"
            for job in self.unarchived.expiring(self.now)
        ]
        unarchived += [f"export job {job.job}: Gladly failed it" for job in self.unarchived.failed]
        reappeared = [
            f"customer {r.customer_id} has the {r.matched_on} of erased {r.tombstoned_id}"
            for r in self.reappeared.customers
        ]
        refilled = [
            f"customer {r.customer_id} has the {_KIND[r.kind]} unlinked by {r.watch_id} "
            f"back ({r.explanation})"
            for r in self.refilled.details
        ]
        return {
            "last_export": [],
            "unarchived_jobs": unarchived,
            "enrichment": [],
            "reappeared": reappeared,
            "refilled_details": refilled,
        }

    def lines(self) -> dict[str, list[str]]:
        """Each section as a person reads it: a heading, then indented lines short enough for a
        narrow terminal (no tables)."""
        return {
            "last_export": _exports_lines(self.exports, self.now),
            "unarchived_jobs": _unarchived_lines(self.unarchived, self.now),
            "enrichment": _enrichment_lines(self.enrichment, self.now),
            "reappeared": _reappeared_lines(self.reappeared),
            "refilled_details": _refilled_lines(self.refilled),
        }

    def json(self) -> dict[str, Any]:
        """Each section as a JSON-ready object (docs/status.schema.json)."""
        now, e, u, f, r = self.now, self.exports, self.unarchived, self.enrichment, self.reappeared
        return {
            "last_export": {
                "jobs_archived": e.jobs_archived,
                "customer_exports": e.customer_runs,
                "last_job": e.last_job,
                "last_archived_at": _time(e.last_archived_at),
                "age_hours": (
                    None if e.last_archived_at is None else _hours(now - e.last_archived_at)
                ),
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
            "reappeared": {
                "checked": r.checked,
                "erased_customers": r.tombstones,
                "customers": [
                    {
                        "customer_id": one.customer_id,
                        "tombstoned_id": one.tombstoned_id,
                        "matched_on": one.matched_on,
                        "erased_at": _time(one.deleted_at),
                    }
                    for one in r.customers
                ]
                if r.checked
                else None,
            },
            "refilled_details": {
                "checked": self.refilled.checked,
                "watched": self.refilled.watched,
                "details": [
                    {
                        "customer_id": one.customer_id,
                        "kind": one.kind,
                        "watch_id": one.watch_id,
                        "unlinked_from": one.unlinked_from,
                        "source": one.source,
                    }
                    for one in self.refilled.details
                ]
                if self.refilled.checked
                else None,
            },
        }


def read_archive_status(
    root: str,
    *,
    now: datetime,
    audit_key: bytes | None,
    client: GladlyClient | None = None,
) -> ArchiveStatus:
    """Read the archive at `root` as of `now` (NotAnArchiveError first when it is none). With
    `audit_key` reappeared customers are matched; with `client`, Gladly's export jobs are
    listed to find those not archived. Nothing is written: the archive is not even recovered
    (`Archive.open` would take its lock)."""
    check_archive_root(root)
    archive = Archive(root)
    return ArchiveStatus(
        root=root,
        now=now,
        exports=read_exports(archive),
        unarchived=read_unarchived(archive, client),
        enrichment=read_enrichment(archive, now),
        reappeared=read_reappeared(archive, audit_key),
        refilled=read_refilled(archive, audit_key),
    )


# -- as a person reads it ---------------------------------------------------------------------


def _exports_lines(e: ExportsStatus, now: datetime) -> list[str]:
    lines = ["Last export"]
    if e.last_archived_at is None:
        lines.append("  no export job archived yet")
    else:
        lines.append(f"  newest job archived {_at(e.last_archived_at)}")
        lines.append(f"  that is {_age(now - e.last_archived_at)} ago")
        lines.append(f"  job {e.last_job}")
    lines.append(f"  {_n(e.jobs_archived, 'export job')} archived in all")
    if e.customer_runs:
        lines.append(f"  and {_n(e.customer_runs, 'customer export')}")
    return lines


def _job_line(job: UnarchivedJob, now: datetime) -> str:
    left = (job.expires_at - now).total_seconds() / 86400
    when = f"in {left:.1f} days" if left >= 0 else "already"
    return f"  {job.job}: Gladly deletes it {when}"


def _unarchived_lines(u: UnarchivedStatus, now: datetime) -> list[str]:
    lines = ["Export jobs not archived"]
    if not u.live:
        lines.append("  not known: the archive records only the jobs it archived")
        lines.append("  (--live asks Gladly)")
        return lines
    expiring = u.expiring(now)
    days = EXPIRY_ATTENTION.days
    lines.append(f"  {_n(len(u.jobs), 'completed job')} not archived (from Gladly)")
    lines.append(f"  {len(expiring)} within {days} days of expiry")
    lines.extend(_job_line(job, now) for job in u.jobs[:_LISTED])
    if len(u.jobs) > _LISTED:
        lines.append(f"  … and {len(u.jobs) - _LISTED} more")
    lines.extend(f"  {job.job}: FAILED in Gladly" for job in u.failed)
    return lines


def _enrichment_lines(e: EnrichmentStatus, now: datetime) -> list[str]:
    lines = ["Enrichment (conversation facts)"]
    if e.as_of is None:
        lines.append("  no pass recorded")
    else:
        lines.append(f"  facts as of {_at(e.as_of)}")
        lines.append(f"  that is {_age(now - e.as_of)} ago")
    if e.covered_from is not None:
        lines.append(f"  covering conversations from {e.covered_from}")
    lines.append(f"  next pass: {e.next_pass} ({e.reason})")
    return lines


def _reappeared_lines(r: ReappearedStatus) -> list[str]:
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


_KIND = {"email": "email", "phone": "phone", "external_id": "external id"}


def _refilled_lines(r: RefilledStatus) -> list[str]:
    lines = ["Unlinked details back on a profile"]
    if not r.checked:
        lines.append("  not checked: set GLADLY_AUDIT_KEY")
    elif not r.details:
        lines.append("  none")
    for one in r.details:
        lines.append(f"  customer {one.customer_id}")
        lines.append(f"    has the {_KIND[one.kind]} unlinked by {one.watch_id} back")
        if one.unlinked_from != one.customer_id:
            lines.append(f"    (unlinked from {one.unlinked_from})")
        lines.append(f"    likely source: {one.explanation}")
    lines.append(f"  {_n(r.watched, 'unlinked detail')} watched")
    return lines


def _until(left: timedelta) -> str:
    days = left.total_seconds() / 86400
    return f"in {days:.1f} days" if days >= 0 else f"since {-days:.1f} days"


# -- as a machine reads it --------------------------------------------------------------------


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
