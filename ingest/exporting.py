"""Export jobs into the archive: which jobs, in what order, each committed whole; expiry watch."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from gladly_archive import Archive, StagedJob
from gladly_archive.catalog import refresh_catalog
from gladly_archive.convert import (
    ConvertStats,
    QuarantinedLine,
    convert_agents_file,
    convert_customers_file,
    convert_items_file,
    convert_topics_file,
)
from gladly_archive.fold import FoldReport, fold_archive, fold_due
from gladly_archive.layout import validate_job_id
from gladly_client import GladlyClient, GladlyError
from gladly_client.models import ExportJob
from ingest.conversation_facts import Progress
from ingest.reappeared import ReappearedReport, check_reappeared
from ingest.reference import try_refresh_reference
from ingest.refills import Refill, check_refills

logger = logging.getLogger("ingest.exporting")

# Gladly deletes export jobs and their files 14 days after they were made; we warn well before.
GLADLY_EXPORT_RETENTION_DAYS = 14
DEFAULT_EXPIRY_WARNING_DAYS = 12

Converter = Callable[..., Iterator[pa.RecordBatch]]

# A job id is printed as it is only when it is short, visible ASCII (no spaces, no control or
# escape characters); any other id is named by the start of its SHA-256.
_PRINTABLE_JOB_ID = re.compile(r"[!-~]{1,100}")
_JOB_ID_HASH_CHARS = 12


def job_label(job_id: str) -> str:
    """`job_id` if it is safe to print, else `sha256:` and the first 12 hex digits of it."""
    if _PRINTABLE_JOB_ID.fullmatch(job_id):
        return job_id
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:_JOB_ID_HASH_CHARS]}"


def unsafe_job_id_reason(job_id: str) -> str | None:
    """Why `job_id` cannot name the archive's files and directories, or None when it can."""
    try:
        validate_job_id(job_id)
    except ValueError as exc:
        # The archive's message states the rule, never the id.
        return f"job id is not a safe file name ({exc})"
    return None


# The phase of the run's jobs: progress(JOBS_PHASE, jobs done, jobs to do).
JOBS_PHASE = "export jobs"
_DOWNLOAD = "download "


def download_phase(job_id: str, name: str) -> str:
    """The phase of one file's bytes: progress(download_phase(job, file), received, size)."""
    return f"{_DOWNLOAD}{name} (job {job_label(job_id)})"


def is_download_phase(phase: str) -> bool:
    """Whether `phase` counts a file's bytes (a display shows sizes, and drops it once done)."""
    return phase.startswith(_DOWNLOAD)


@dataclass(frozen=True)
class _FileKind:
    convert: Converter
    write: Callable[[StagedJob, Iterator[pa.RecordBatch]], int]
    dataset: str


# The order matters only for the reader of the progress bars: small lookups first.
_FILES: dict[str, _FileKind] = {
    "agents.jsonl": _FileKind(convert_agents_file, StagedJob.write_agents, "agents"),
    "topics.jsonl": _FileKind(convert_topics_file, StagedJob.write_topics, "topics"),
    "customers.jsonl": _FileKind(convert_customers_file, StagedJob.write_customers, "customers"),
    "conversation_items.jsonl": _FileKind(convert_items_file, StagedJob.write_items, "items"),
}


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one export job in this run."""

    job_id: str
    window_start: datetime | None
    window_end: datetime | None
    updated_at: datetime
    status: str  # "archived" | "failed"
    rows_by_dataset: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    duplicates_replaced: int = 0
    skipped_files: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class SkippedJob:
    """An export job left alone (nothing written under its id) and why.

    `job` is the id when it is safe to print, else `sha256:` and a short prefix of its hash.
    """

    job: str
    status: str
    updated_at: datetime
    reason: str

    def describe(self) -> str:
        """One line a person acts on."""
        expires = self.updated_at + timedelta(days=GLADLY_EXPORT_RETENTION_DAYS)
        return (
            f"job {self.job} ({self.status}, Gladly deletes it {expires:%Y-%m-%d %H:%M}Z): "
            f"{self.reason}; not archived — ask Gladly Support about this job"
        )


@dataclass(frozen=True)
class ExpiryWarning:
    """A job Gladly will soon delete (or already failed) that is not in the archive."""

    job_id: str
    status: str
    updated_at: datetime
    expires_at: datetime
    reason: str

    def describe(self) -> str:
        """One line a person acts on."""
        expires = f"{self.expires_at:%Y-%m-%d %H:%M}Z"
        return f"job {self.job_id} ({self.status}, expires {expires}): {self.reason}"


@dataclass
class ExportReport:
    """The result of one export run: what was archived, failed, skipped, and is at risk."""

    root: str
    archived: list[JobOutcome] = field(default_factory=list)
    failed: list[JobOutcome] = field(default_factory=list)
    # Jobs never touched because their id cannot name a file (reported, not failed).
    skipped: list[SkippedJob] = field(default_factory=list)
    already_archived: int = 0
    warnings: list[ExpiryWarning] = field(default_factory=list)
    # Erased customers who came back, and erased ids an older job re-imported (then purged).
    reappeared: ReappearedReport | None = None
    # Unlinked details (the refill watch) back on a profile this run's jobs brought: ids,
    # kinds and watch ids only. Empty when not checked (no audit key: `refills_checked`).
    refilled: list[Refill] = field(default_factory=list)
    refills_checked: bool = False
    # The fold this run did (about monthly: rows older than a month into customer buckets).
    folded: FoldReport | None = None
    # The directory snapshot taken after the jobs (GET /inboxes, /topics, /agents): rows
    # written per dataset (0 where the archive already held the listing), or why it failed.
    reference_rows: dict[str, int] = field(default_factory=dict)
    reference_error: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed, nothing was skipped and nothing is about to be lost."""
        return (
            not self.failed
            and not self.skipped
            and not self.warnings
            and self.reference_error is None
        )

    def rows_by_dataset(self) -> dict[str, int]:
        """Rows archived per dataset by the run: every job's, then the directory snapshot's."""
        totals: dict[str, int] = {}
        for outcome in self.archived:
            for name, rows in outcome.rows_by_dataset.items():
                totals[name] = totals.get(name, 0) + rows
        for name, rows in self.reference_rows.items():
            totals[name] = totals.get(name, 0) + rows
        return totals

    @property
    def quarantined(self) -> int:
        """Lines set aside as unreadable in this run."""
        return sum(o.quarantined for o in self.archived)


@dataclass(frozen=True)
class PendingJobs:
    """What Gladly lists right now, against what the archive holds."""

    todo: list[ExportJob]  # completed, not archived, not excluded by `since`; oldest first
    completed: list[ExportJob]  # every completed job Gladly still lists
    failed: list[ExportJob]
    already_archived: int


def pending_jobs(
    client: GladlyClient, archive: Archive, *, since: datetime | None = None
) -> PendingJobs:
    """Completed jobs not yet archived (oldest first), failed jobs, and how many are archived.

    `since` skips jobs whose window ended before it (e.g. a first run that needs only recent
    days); skipped jobs still count for the expiry watch.
    """
    archived = archive.archived_job_ids()
    completed = client.exports.list_jobs(status="COMPLETED")
    failed = client.exports.list_jobs(status="FAILED")
    todo = [job for job in completed if job.id not in archived]
    already = len(completed) - len(todo)
    if since is not None:
        since = _aware(since)
        todo = [job for job in todo if (end := _window_end(job)) is None or end > since]
    todo.sort(key=lambda job: (job.updated_at, _window_start(job) or job.updated_at, job.id))
    return PendingJobs(todo, completed, failed, already)


def archive_export_job(
    client: GladlyClient,
    archive: Archive,
    job: ExportJob,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> JobOutcome:
    """Download every file of one job once, convert it, and commit the job as a whole.

    Nothing of the job becomes visible until all of its files are staged; any failure aborts
    the staging and the job is simply redone by the next run. `progress` hears each file's
    bytes as they arrive, under `download_phase(job.id, name)`.
    """
    staged = archive.stage_job(
        job.id,
        kind="export_job",
        window_start=_window_start(job),
        window_end=_window_end(job),
        job_updated_at=job.updated_at,
    )
    rows: dict[str, int] = {}
    skipped: list[str] = []
    try:
        for name in sorted(job.files, key=_file_order):
            kind = _FILES.get(name)
            if kind is None:
                # A file Gladly added that we have no schema for: say so, never drop silently.
                logger.warning("job %s: no converter for file %s; not archived", job.id, name)
                skipped.append(name)
                continue
            rows[kind.dataset] = rows.get(kind.dataset, 0) + _archive_file(
                client, staged, job, name, kind, now=now, progress=progress
            )
        result = staged.commit()
    except BaseException:
        staged.abort()
        raise
    return JobOutcome(
        job_id=job.id,
        window_start=_window_start(job),
        window_end=_window_end(job),
        updated_at=job.updated_at,
        status="archived",
        rows_by_dataset=dict(result.rows_by_dataset),
        quarantined=result.quarantined,
        duplicates_replaced=result.duplicates_replaced,
        skipped_files=tuple(skipped),
    )


def _archive_file(
    client: GladlyClient,
    staged: StagedJob,
    job: ExportJob,
    name: str,
    kind: _FileKind,
    *,
    now: datetime,
    progress: Progress | None,
) -> int:
    local = Path(staged.download_dir) / name
    phase = download_phase(job.id, name)
    download = client.exports.download_file(
        job.id, name, local, on_progress=_bytes_progress(progress, phase)
    )
    if progress is not None:
        progress(phase, download.bytes_read, download.bytes_read)
    quarantined: list[QuarantinedLine] = []
    stats = ConvertStats()
    try:
        batches = kind.convert(
            local, job_id=job.id, archived_at=now, on_quarantine=quarantined.append, stats=stats
        )
        written = kind.write(staged, batches)
        if quarantined:
            staged.write_quarantine(name, quarantined)
        staged.record_file(
            name,
            rows_written=written,
            lines_read=stats.lines_read,
            bytes_read=download.bytes_read,
            sha256=download.sha256,
        )
    finally:
        local.unlink(missing_ok=True)
    return written


def _bytes_progress(
    progress: Progress | None, phase: str
) -> Callable[[int, int | None], None] | None:
    """The download's per-chunk callback, reporting to `progress` (None: nobody listens)."""
    if progress is None:
        return None
    high = 0

    def on_chunk(received: int, expected: int | None) -> None:
        nonlocal high
        # A download cut short is retried from its first byte: the bar holds until it passes.
        high = max(high, received)
        if expected is not None:  # an unannounced size: only the final count is reported
            progress(phase, high, max(expected, high))

    return on_chunk


def expiry_warnings(
    not_archived: list[ExportJob],
    failed: list[ExportJob],
    *,
    now: datetime,
    threshold_days: float = DEFAULT_EXPIRY_WARNING_DAYS,
) -> list[ExpiryWarning]:
    """Jobs Gladly will delete soon that we do not hold, and jobs Gladly failed to produce.

    Jobs are named by `job_label`: an id unsafe to print appears as a hash prefix.
    """
    warnings = []
    threshold = timedelta(days=threshold_days)
    retention = timedelta(days=GLADLY_EXPORT_RETENTION_DAYS)
    for job in not_archived:
        if now - job.updated_at >= threshold:
            warnings.append(
                ExpiryWarning(
                    job_label(job.id),
                    job.status,
                    job.updated_at,
                    job.updated_at + retention,
                    f"not archived {(now - job.updated_at).days} days after completion; Gladly "
                    "deletes it at 14 days — archive it now or ask Gladly Support to regenerate",
                )
            )
    for job in failed:
        warnings.append(
            ExpiryWarning(
                job_label(job.id),
                job.status,
                job.updated_at,
                job.updated_at + retention,
                "Gladly reports this export job FAILED; its window has no archive — ask Gladly "
                "Support to regenerate it",
            )
        )
    return warnings


def run_export(
    client: GladlyClient,
    archive: Archive,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
    expiry_warning_days: float = DEFAULT_EXPIRY_WARNING_DAYS,
    progress: Progress | None = None,
    on_job: Callable[[JobOutcome], None] | None = None,
    archive_one: Callable[[ExportJob, datetime], JobOutcome] | None = None,
    audit_key: bytes | None = None,
    fold: bool = True,
) -> ExportReport:
    """Archive every completed, not yet archived export job, oldest first, one commit per job.

    `archive_one(job, now)` replaces the per-job step (the Prefect flow passes a task here).
    A job whose id cannot name a file is skipped before anything is written for it and listed
    in `report.skipped`; a job whose calls still fail after the client's retries (any
    `GladlyError`, a garbled answer included) is listed in `report.failed`; the run goes on.
    Erased ids a job re-imported are purged again; with `audit_key`, a new profile holding an
    erased customer's email or phone (keyed hashes) is reported as reappeared, and a detail an
    unlink removed (the refill watch) back on a profile the jobs brought as refilled. With `fold`,
    once the recent tier holds more than two months the archive is folded through a month ago
    (gladly_archive.fold), which keeps erasing a customer cheap.

    Once the jobs are done (also when there were none), the organisation's inboxes, topics and
    agents are fetched and appended to the archive (`ingest.reference`); when those calls
    fail, `report.reference_error` says why and the run goes on (`report.ok` is then False).

    `progress` hears the jobs done of those to do (JOBS_PHASE: archived, failed or skipped
    alike), each file's bytes (`download_phase`), an erased customers' purge and the fold.
    """
    now = _aware(now or datetime.now(UTC))
    report = ExportReport(root=str(archive.root))
    pending = pending_jobs(client, archive, since=since)
    report.already_archived = pending.already_archived
    skipped_ids: set[str] = set()
    if progress is not None:
        progress(JOBS_PHASE, 0, len(pending.todo))
    for done, job in enumerate(pending.todo, 1):
        reason = unsafe_job_id_reason(job.id)
        if reason is not None:
            skipped = SkippedJob(job_label(job.id), job.status, job.updated_at, reason)
            report.skipped.append(skipped)
            skipped_ids.add(job.id)
            logger.error("export job skipped: %s", skipped.describe())
            if progress is not None:
                progress(JOBS_PHASE, done, len(pending.todo))
            continue
        try:
            if archive_one is not None:
                outcome = archive_one(job, now)
            else:
                outcome = archive_export_job(client, archive, job, now=now, progress=progress)
            report.archived.append(outcome)
        except GladlyError as exc:
            # str(GladlyError) is safe by construction: method, path template, status, codes.
            outcome = JobOutcome(
                job_id=job.id,
                window_start=_window_start(job),
                window_end=_window_end(job),
                updated_at=job.updated_at,
                status="failed",
                error=str(exc),
            )
            report.failed.append(outcome)
            logger.error("job %s could not be archived: %s", job.id, exc)
        if on_job is not None:
            on_job(outcome)
        if progress is not None:
            progress(JOBS_PHASE, done, len(pending.todo))
    report.reference_rows, report.reference_error = try_refresh_reference(
        client, archive, run_id=f"export-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", now=now
    )
    if report.archived:
        # Always: erased ids an older job re-imported are purged again (ids only). With the
        # key, new profiles holding an erased customer's contact are reported as well.
        jobs = [o.job_id for o in report.archived]
        report.reappeared = check_reappeared(archive, jobs, audit_key, progress=progress)
        if audit_key is not None:  # the watch holds keyed hashes: without the key, no match
            report.refilled = check_refills(archive, audit_key, job_ids=jobs)
            report.refills_checked = True
    through = fold_due(archive, now.date()) if fold else None
    if through is not None:
        report.folded = fold_archive(archive, through, progress=progress)
        logger.info(
            "folded rows dated up to %s into %d customer buckets (%.1f s)",
            through,
            report.folded.buckets,
            report.folded.seconds,
        )
    archived_now = archive.archived_job_ids()
    report.warnings = expiry_warnings(
        # Skipped jobs are reported once, as skipped: no run can archive them.
        [
            job
            for job in pending.completed
            if job.id not in archived_now and job.id not in skipped_ids
        ],
        pending.failed,
        now=now,
        threshold_days=expiry_warning_days,
    )
    # The analyst's catalog of views (gladly_archive.catalog): made on the first run, kept
    # current by every commit, fold and purge after it.
    refresh_catalog(archive.fs, archive.root, create=True)
    return report


def _file_order(name: str) -> tuple[int, str]:
    order = list(_FILES)
    return (order.index(name) if name in order else len(order), name)


def _window_start(job: ExportJob) -> datetime | None:
    return job.parameters.start_at if job.parameters else None


def _window_end(job: ExportJob) -> datetime | None:
    return job.parameters.end_at if job.parameters else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
