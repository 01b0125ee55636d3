"""Gladly's Export API: one schedule, its jobs moving through their states over time."""

from __future__ import annotations

import random
import shutil
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from gladly_sandbox.errors import ApiError
from gladly_sandbox.export_files import FILE_NAMES, ExportSource, render_job_files
from gladly_sandbox.export_jobs import (
    EXACT_DIGITS,
    STATUSES,
    ExportJob,
    ExportSpec,
    as_utc,
    floor_day,
    truncate,
)
from gladly_sandbox.ids import FRACTION_DIGITS, format_timestamp, make_id, parse_timestamp

__all__ = ["Clock", "ExportOrg", "ExportService", "ExportSpec"]

# A client computing "14 days ago" or "now" on its own clock must not get a 400 for a few
# milliseconds of skew. Gladly does not document a tolerance; one minute is ours.
_CLOCK_SKEW = timedelta(minutes=1)
# How long before construction Support's one-off backfill job finished.
_BACKFILL_AGE = timedelta(minutes=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


class ExportOrg(ExportSource, Protocol):
    """The organisation as the export service sees it."""

    def earliest_activity(self) -> datetime:
        """Timestamp of the oldest item."""
        ...


class Clock(Protocol):
    """The organisation's clock (`clock.SandboxClock`)."""

    def now(self) -> datetime:
        """Aware UTC now."""
        ...


def _not_exist() -> ApiError:
    return ApiError(404, "not_exist", "entity does not exist")


class ExportService:
    """The org's export schedule and jobs, brought up to `clock.now()` on every call. Thread-safe.

    On construction it looks as if the schedule had always been running: every scheduled job not
    yet expired exists in the state the clock implies, and (with `backfill`) one COMPLETED one-off
    job covers everything before the first of them, so the completed jobs' files hold every item
    exactly once. Files are rendered when a job completes, so they are a snapshot of that moment.
    """

    def __init__(self, org: ExportOrg, clock: Clock, spec: ExportSpec, files_dir: Path) -> None:
        self._org = org
        self._clock = clock
        self._spec = spec
        self._files_dir = Path(files_dir)
        self._files_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._window = spec.window
        self._delay = spec.effective_start_delay
        self._retention = timedelta(days=spec.retention_days)
        self._jobs: dict[str, ExportJob] = {}

        rng = random.Random(f"{spec.seed}:export-schedule")
        self._schedule_id = make_id(rng)
        self._schedule_digits = rng.choice(FRACTION_DIGITS)
        earliest = floor_day(as_utc(org.earliest_activity()))
        # The schedule was set up (or last switched frequency) on the org's first day.
        self._schedule_updated = truncate(
            earliest + timedelta(seconds=rng.uniform(9 * 3600, 18 * 3600)), self._schedule_digits
        )

        now = clock.now()
        first = self._first_live_window(now)
        self._next_job = self._window_job(first)
        if spec.backfill and earliest < first:
            self._add(self._backfill_job(earliest, first, now))
        self._next_due = now
        self.refresh()

    # --- the API ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring jobs up to clock.now(): create, advance, render, expire. Cheap when idle."""
        now = self._clock.now()
        with self._lock:
            if now < self._next_due:
                return
            claimed = self._advance(now)
        # Rendering a large window takes seconds; other calls meanwhile see the job IN_PROGRESS.
        for index, job in enumerate(claimed):
            try:
                self._render(job)
            except BaseException:
                with self._lock:  # hand the rest back, so that the next refresh renders them
                    for other in claimed[index + 1 :]:
                        other.rendering = False
                    self._next_due = self._compute_next_due()
                raise

    def list_schedules(self) -> list[dict[str, Any]]:
        """GET /export/schedules: the org's one schedule."""
        self.refresh()
        with self._lock:
            next_start = self._next_job.start
        digits = random.Random(f"{self._spec.seed}:{next_start.isoformat()}").choice(EXACT_DIGITS)
        return [
            {
                "id": self._schedule_id,
                "frequency": self._spec.frequency,
                "type": "CONVERSATIONS",
                "nextStartAt": format_timestamp(next_start, digits),
                "updatedAt": format_timestamp(self._schedule_updated, self._schedule_digits),
            }
        ]

    def list_jobs(
        self, status: str | None = None, start_at: str | None = None, end_at: str | None = None
    ) -> list[dict[str, Any]]:
        """GET /export/jobs: live jobs with start_at <= updatedAt <= end_at, newest first.

        An empty parameter counts as absent. startAt may not be older than the retention period
        and endAt not before startAt nor in the future (each with one minute of tolerance);
        violations and unparseable values are 400 `invalid` naming the parameter.
        """
        self.refresh()
        now = self._clock.now()
        if status and status not in STATUSES:
            raise ApiError(
                400, "invalid", f"status must be one of {', '.join(STATUSES)}", attr="status"
            )
        start = self._parse_filter("startAt", start_at) if start_at else now - self._retention
        end = self._parse_filter("endAt", end_at) if end_at else now
        if start < now - self._retention - _CLOCK_SKEW:
            raise ApiError(
                400,
                "invalid",
                f"startAt cannot be more than {self._spec.retention_days} days ago",
                attr="startAt",
            )
        if end < start:
            raise ApiError(400, "invalid", "endAt cannot be before startAt", attr="endAt")
        if end > now + _CLOCK_SKEW:
            raise ApiError(400, "invalid", "endAt cannot be in the future", attr="endAt")
        with self._lock:
            jobs = [
                job
                for job in self._jobs.values()
                if (not status or job.status == status) and start <= job.updated_at <= end
            ]
            jobs.sort(key=lambda job: (job.updated_at, job.start), reverse=True)
            return [job.to_json() for job in jobs]

    def get_job(self, job_id: str) -> dict[str, Any]:
        """GET /export/jobs/{id}; 404 not_exist."""
        self.refresh()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise _not_exist()
            return job.to_json()

    def delete_job(self, job_id: str) -> None:
        """DELETE /export/jobs/{id}: removes a COMPLETED or FAILED job and its files; 400 / 404."""
        self.refresh()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise _not_exist()
            if job.status not in ("COMPLETED", "FAILED"):
                raise ApiError(
                    400,
                    "temporary_failure",
                    f"unable to delete job with status [{job.status}]. "
                    "Please try again after it has finished",
                    attr="status",
                    quirk="bare_list",
                )
            self._remove(job)
            self._next_due = self._compute_next_due()

    def file_path(self, job_id: str, filename: str) -> Path:
        """Where a COMPLETED job's file lies; 404 not_exist for anything else."""
        self.refresh()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != "COMPLETED" or filename not in job.files:
                raise _not_exist()
            return self._files_dir / job.id / filename

    def counts(self) -> dict[str, int]:
        """Jobs per status and bytes of files on disk."""
        self.refresh()
        with self._lock:
            out = {f"jobs_{status.lower()}": 0 for status in STATUSES}
            for job in self._jobs.values():
                out[f"jobs_{job.status.lower()}"] += 1
            out["files_bytes"] = sum(job.files_bytes for job in self._jobs.values())
            return out

    # --- the schedule's timeline -----------------------------------------------------------

    def _window_job(self, start: datetime) -> ExportJob:
        """The job of the scheduled window starting at `start`; the same for every run of a seed."""
        rng = random.Random(f"{self._spec.seed}:{self._spec.frequency}:{start.isoformat()}")
        job_id = make_id(rng)
        digits = rng.choice(FRACTION_DIGITS)
        bound_digits = rng.choice(EXACT_DIGITS)
        end = start + self._window
        created = end + self._delay + timedelta(microseconds=rng.randrange(1_000_000))
        fails = rng.random() < self._spec.failure_rate
        return self._timed_job(
            job_id, self._schedule_id, (start, end), created, fails, (digits, bound_digits)
        )

    def _backfill_job(self, start: datetime, end: datetime, now: datetime) -> ExportJob:
        """Support's one-off job for [start, end), finished just before the service started."""
        rng = random.Random(f"{self._spec.seed}:backfill:{start.isoformat()}:{end.isoformat()}")
        job_id = make_id(rng)
        digits = rng.choice(FRACTION_DIGITS)
        bound_digits = rng.choice(EXACT_DIGITS)
        created = now - _BACKFILL_AGE - self._spec.run_time - timedelta(seconds=rng.uniform(0, 60))
        return self._timed_job(job_id, None, (start, end), created, False, (digits, bound_digits))

    def _timed_job(
        self,
        job_id: str,
        schedule_id: str | None,
        window: tuple[datetime, datetime],
        created: datetime,
        fails: bool,
        precision: tuple[int, int],
    ) -> ExportJob:
        """A job created at `created`, IN_PROGRESS a tenth of run_time later, finished after it."""
        run = self._spec.run_time
        (start, end), (digits, bound_digits) = window, precision
        return ExportJob(
            id=job_id,
            schedule_id=schedule_id,
            start=start,
            end=end,
            created_at=truncate(created, digits),
            in_progress_at=truncate(created + run / 10, digits),
            finished_at=truncate(created + run, digits),
            fails=fails,
            digits=digits,
            bound_digits=bound_digits,
        )

    def _floor_window(self, when: datetime) -> datetime:
        floored = when.replace(minute=0, second=0, microsecond=0)
        return floor_day(floored) if self._spec.frequency == "DAILY" else floored

    def _first_live_window(self, now: datetime) -> datetime:
        """Start of the earliest scheduled window whose job has not expired by `now`."""
        horizon = now - self._retention
        start = self._floor_window(horizon - self._window - self._delay - self._spec.run_time)
        start -= self._window
        while self._window_job(start).finished_at < horizon:
            start += self._window
        return start

    def _advance(self, now: datetime) -> list[ExportJob]:
        """Apply every transition due by `now` (lock held); return jobs whose files to render."""
        horizon = now - self._retention
        if self._next_job.finished_at < horizon:
            # The clock jumped further than the retention period: the jobs in between were made,
            # finished and expired while nobody was looking.
            self._next_job = self._window_job(self._first_live_window(now))
        while self._next_job.created_at <= now:
            self._add(self._next_job)
            self._next_job = self._window_job(self._next_job.end)
        claimed: list[ExportJob] = []
        for job in self._jobs.values():
            if job.status == "PENDING" and job.in_progress_at <= now:
                job.status, job.updated_at = "IN_PROGRESS", job.in_progress_at
            if job.status == "IN_PROGRESS" and not job.rendering and job.finished_at <= now:
                if job.fails:
                    job.status, job.updated_at = "FAILED", job.finished_at
                elif job.finished_at >= horizon:
                    job.rendering = True
                    claimed.append(job)
                # else: it completed and expired unseen; the sweep below removes it unrendered.
        for job in [j for j in self._jobs.values() if not j.rendering and j.updated_at < horizon]:
            self._remove(job)
        self._next_due = self._compute_next_due()
        return sorted(claimed, key=lambda job: job.finished_at)

    def _compute_next_due(self) -> datetime:
        """The earliest moment anything changes (lock held), so refresh can skip until then."""
        due = self._next_job.created_at
        for job in self._jobs.values():
            if job.rendering:
                continue
            if job.status == "PENDING":
                due = min(due, job.in_progress_at)
            elif job.status == "IN_PROGRESS":
                due = min(due, job.finished_at)
            due = min(due, job.updated_at + self._retention + _ONE_MICROSECOND)
        return due

    def _render(self, job: ExportJob) -> None:
        """Write a claimed job's files outside the lock, then mark it COMPLETED (or FAILED)."""
        try:
            size = render_job_files(self._org, job.start, job.end, self._files_dir / job.id)
        except BaseException:
            with self._lock:
                job.rendering = False
                job.status, job.updated_at = "FAILED", job.finished_at
                self._next_due = self._compute_next_due()
            raise
        with self._lock:
            job.rendering = False
            job.status, job.updated_at = "COMPLETED", job.finished_at
            job.files, job.files_bytes = list(FILE_NAMES), size
            self._next_due = self._compute_next_due()

    def _add(self, job: ExportJob) -> None:
        self._jobs[job.id] = job

    def _remove(self, job: ExportJob) -> None:
        del self._jobs[job.id]
        shutil.rmtree(self._files_dir / job.id, ignore_errors=True)

    def _parse_filter(self, name: str, value: str) -> datetime:
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError):
            raise ApiError(
                400, "invalid", f"{name} must be an ISO 8601 date-time", attr=name
            ) from None
