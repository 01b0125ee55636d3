"""The archive's sections of the status, read: exports, export jobs not archived, enrichment,
reappeared customers. Reads the archive only (Gladly only when given a client); what it returns
holds ids, times and counts, never personal data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import pyarrow.compute as pc
import pyarrow.fs as pafs

from gladly_archive import Archive
from gladly_archive.enrichment import ENRICHMENT_STATE, read_enrichment_state
from gladly_archive.layout import MANIFEST_DIR
from gladly_archive.refill_watch import REFILL_WATCH_DIR, read_watches
from gladly_archive.schemas import DATASETS
from gladly_archive.tombstones import TOMBSTONES_DIR, read_tombstones
from gladly_client import GladlyClient
from ingest.conversation_facts import plan_conversation_facts
from ingest.exporting import GLADLY_EXPORT_RETENTION_DAYS, job_label, pending_jobs
from ingest.reappeared import Reappeared, find_reappeared
from ingest.refills import Refill, read_refills

__all__ = [
    "EXPIRY_ATTENTION",
    "EnrichmentStatus",
    "ExportsStatus",
    "NotAnArchiveError",
    "ReappearedStatus",
    "RefilledStatus",
    "UnarchivedJob",
    "UnarchivedStatus",
    "check_archive_root",
    "read_enrichment",
    "read_exports",
    "read_reappeared",
    "read_refilled",
    "read_unarchived",
]

# An unarchived export job this close to Gladly's deletion of it needs a person.
EXPIRY_ATTENTION = timedelta(days=2)
# What a directory holds when it is an archive root: any one of these names (an empty
# directory is an archive with nothing in it yet).
_ARCHIVE_ENTRIES = frozenset(
    {name.split("/")[0] for name in DATASETS}
    | {TOMBSTONES_DIR, ENRICHMENT_STATE.split("/")[0], MANIFEST_DIR, REFILL_WATCH_DIR}
    | {"_audit", "_plans", "_staging", "_facts", "_evidence", "_layout.json"}
)


class NotAnArchiveError(ValueError):
    """The root does not exist, is not a directory, or holds something other than an archive."""


@dataclass(frozen=True)
class ExportsStatus:
    """What the archive's manifest says of the export jobs it archived."""

    jobs_archived: int  # export jobs
    customer_runs: int  # per-customer API exports (`export --customer-…`)
    last_job: str | None  # the newest archived export job (printable id or its hash prefix)
    last_archived_at: datetime | None


@dataclass(frozen=True)
class UnarchivedJob:
    """An export job Gladly lists that the archive does not hold."""

    job: str  # printable id, or `sha256:` and a prefix of it
    status: str  # COMPLETED, or FAILED (Gladly produced nothing to archive)
    completed_at: datetime
    expires_at: datetime  # Gladly deletes jobs 14 days after they were made


@dataclass(frozen=True)
class UnarchivedStatus:
    """Export jobs not archived: from Gladly (`live`), or unknown from the archive alone, which
    records only the jobs it archived."""

    live: bool
    jobs: tuple[UnarchivedJob, ...] = ()  # completed, not archived; soonest expiry first
    failed: tuple[UnarchivedJob, ...] = ()

    def expiring(self, now: datetime) -> tuple[UnarchivedJob, ...]:
        """Jobs Gladly deletes within EXPIRY_ATTENTION."""
        return tuple(job for job in self.jobs if job.expires_at - now <= EXPIRY_ATTENTION)


@dataclass(frozen=True)
class EnrichmentStatus:
    """How far conversation facts reach, and which pass the next `enrich` will make."""

    as_of: datetime | None
    covered_from: date | None
    next_pass: Literal["events", "reports"]
    reason: str


@dataclass(frozen=True)
class ReappearedStatus:
    """Erased customers who came back under a new id (keyed hashes of emails and phones)."""

    checked: bool  # False without GLADLY_AUDIT_KEY: the hashes cannot be computed
    tombstones: int
    customers: tuple[Reappeared, ...] = ()


@dataclass(frozen=True)
class RefilledStatus:
    """Unlinked details watched for their refill (keyed hashes), and those back on a profile."""

    checked: bool  # False without GLADLY_AUDIT_KEY: the hashes cannot be computed
    watched: int
    details: tuple[Refill, ...] = ()


def check_archive_root(root: str) -> None:
    """NotAnArchiveError (one line, naming the root) unless `root` is an archive root: a
    directory holding one of an archive's entries, or an empty one (nothing archived yet)."""
    archive = Archive(root)
    info = archive.fs.get_file_info(archive.root)
    where = "give --root or set GLADLY_PIPELINE_ROOT"
    if info.type == pafs.FileType.NotFound:
        raise NotAnArchiveError(f"no archive at {root}: it does not exist ({where})")
    if info.type != pafs.FileType.Directory:
        raise NotAnArchiveError(f"no archive at {root}: it is not a directory ({where})")
    selector = pafs.FileSelector(archive.root, recursive=False)
    names = {entry.base_name for entry in archive.fs.get_file_info(selector)}
    if names and not names & _ARCHIVE_ENTRIES:
        raise NotAnArchiveError(
            f"{root} is not an archive root: it holds none of an archive's entries "
            f"(_manifest, items, _audit, …) ({where})"
        )


def read_exports(archive: Archive) -> ExportsStatus:
    """The manifest's export jobs: how many, the newest, and the per-customer exports."""
    manifest = archive.read_manifest().select(["job_id", "kind", "archived_at"])
    jobs = manifest.filter(pc.equal(manifest.column("kind"), "export_job"))
    last = jobs.slice(jobs.num_rows - 1).to_pylist()[0] if jobs.num_rows else None
    return ExportsStatus(
        jobs_archived=jobs.num_rows,
        customer_runs=manifest.num_rows - jobs.num_rows,
        last_job=job_label(str(last["job_id"])) if last else None,
        last_archived_at=last["archived_at"] if last else None,
    )


def read_unarchived(archive: Archive, client: GladlyClient | None) -> UnarchivedStatus:
    """With `client`, the completed jobs Gladly lists that the archive lacks, and those Gladly
    failed; without one, not known."""
    if client is None:
        return UnarchivedStatus(live=False)
    pending = pending_jobs(client, archive)
    archived = archive.archived_job_ids()
    retention = timedelta(days=GLADLY_EXPORT_RETENTION_DAYS)

    def seen(job_id: str, status: str, updated_at: datetime) -> UnarchivedJob:
        return UnarchivedJob(job_label(job_id), status, updated_at, updated_at + retention)

    jobs = [
        seen(job.id, job.status, job.updated_at)
        for job in pending.completed
        if job.id not in archived
    ]
    failed = [seen(job.id, job.status, job.updated_at) for job in pending.failed]
    return UnarchivedStatus(
        live=True,
        jobs=tuple(sorted(jobs, key=lambda j: (j.expires_at, j.job))),
        failed=tuple(sorted(failed, key=lambda j: (j.expires_at, j.job))),
    )


def read_enrichment(archive: Archive, now: datetime) -> EnrichmentStatus:
    """The enrichment state, and the pass `enrich` would make at `now`."""
    state = read_enrichment_state(archive)
    # The very choice `enrich` makes (the same function), so the two never disagree.
    plan = plan_conversation_facts(archive, now)
    return EnrichmentStatus(
        as_of=state.as_of if state else None,
        covered_from=state.covered_from if state else None,
        next_pass=plan.mode,
        reason=plan.reason,
    )


def read_reappeared(archive: Archive, key: bytes | None) -> ReappearedStatus:
    """The erased customers on record and, with `key`, those who came back."""
    stones = len(pc.unique(read_tombstones(archive).column("customer_id")))
    if key is None:
        return ReappearedStatus(checked=False, tombstones=stones)
    found = tuple(find_reappeared(archive, key)) if stones else ()
    return ReappearedStatus(checked=True, tombstones=stones, customers=found)


def read_refilled(archive: Archive, key: bytes | None) -> RefilledStatus:
    """The unlinked details watched and, with `key`, those back on a profile (the same rule
    as the export's check, over the whole archive)."""
    watched = len(read_watches(archive))
    if key is None:
        return RefilledStatus(checked=False, watched=watched)
    found = tuple(read_refills(archive, key)) if watched else ()
    return RefilledStatus(checked=True, watched=watched, details=found)
