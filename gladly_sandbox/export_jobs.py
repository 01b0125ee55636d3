"""What an export job is: the schedule's settings, one job's timeline and its JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gladly_sandbox.ids import FRACTION_DIGITS, format_timestamp

STATUSES = ("PENDING", "IN_PROGRESS", "COMPLETED", "FAILED")

# Window bounds and nextStartAt are whole hours; more than 6 fraction digits would make
# `format_timestamp` append sub-microsecond digits, i.e. shift a boundary off the hour.
EXACT_DIGITS = tuple(d for d in FRACTION_DIGITS if d <= 6)


@dataclass(frozen=True)
class ExportSpec:
    """How the organisation's export schedule behaves; the undocumented parts are choices here."""

    frequency: Literal["DAILY", "HOURLY"] = "DAILY"
    # A one-off job (as Gladly Support makes) covering earliest activity -> first scheduled window.
    backfill: bool = True
    # Jobs and their files vanish this long after their updatedAt.
    retention_days: int = 14
    # Window end -> job created (PENDING). Default: DAILY 3 h ("jobs run during the night UTC");
    # HOURLY 1 h, because Gladly's example creates the job ~2 h after the window's start
    # (`nextStartAt` 08:00 -> job at ~10:00 for the window 08:00-09:00).
    start_delay: timedelta | None = None
    # Creation -> COMPLETED|FAILED; IN_PROGRESS begins a tenth of the way through.
    run_time: timedelta = timedelta(minutes=10)
    # Share of scheduled jobs that end FAILED (seeded per window; the backfill never fails).
    failure_rate: float = 0.0
    seed: int = 42

    def __post_init__(self) -> None:
        if self.frequency not in ("DAILY", "HOURLY"):
            raise ValueError(f"frequency must be DAILY or HOURLY, not {self.frequency!r}")
        if self.retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        if self.start_delay is not None and self.start_delay < timedelta(0):
            raise ValueError("start_delay must not be negative")
        if not timedelta(0) <= self.run_time < timedelta(days=self.retention_days):
            raise ValueError("run_time must be between 0 and retention_days")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")

    @property
    def window(self) -> timedelta:
        """Length of one scheduled export window."""
        return timedelta(days=1) if self.frequency == "DAILY" else timedelta(hours=1)

    @property
    def effective_start_delay(self) -> timedelta:
        """`start_delay`, or the frequency's default."""
        if self.start_delay is not None:
            return self.start_delay
        return timedelta(hours=3) if self.frequency == "DAILY" else timedelta(hours=1)


@dataclass
class ExportJob:
    """One export job and the times of its transitions (each already cut to `digits`)."""

    id: str
    schedule_id: str | None
    start: datetime
    end: datetime
    created_at: datetime
    in_progress_at: datetime
    finished_at: datetime
    fails: bool
    digits: int  # fraction digits of every updatedAt of this job
    bound_digits: int  # fraction digits of parameters.startAt / endAt
    status: str = "PENDING"
    updated_at: datetime = field(init=False)
    files: list[str] = field(default_factory=list)
    files_bytes: int = 0
    rendering: bool = False  # claimed by a refresh that is writing its files outside the lock

    def __post_init__(self) -> None:
        self.updated_at = self.created_at

    def to_json(self) -> dict[str, Any]:
        """The job as Gladly returns it."""
        out: dict[str, Any] = {"id": self.id}
        # The one-off backfill has no schedule. The spec marks scheduleId neither required nor
        # nullable, so it is left out rather than sent as null.
        if self.schedule_id is not None:
            out["scheduleId"] = self.schedule_id
        out["status"] = self.status
        out["updatedAt"] = format_timestamp(self.updated_at, self.digits)
        out["parameters"] = {
            "type": "CONVERSATIONS",
            "startAt": format_timestamp(self.start, self.bound_digits),
            "endAt": format_timestamp(self.end, self.bound_digits),
        }
        out["files"] = list(self.files)
        return out


def truncate(when: datetime, digits: int) -> datetime:
    """`when` cut to the precision it is shown with, so what clients read is what we compare."""
    keep = 10 ** (6 - min(digits, 6))
    return when.replace(microsecond=when.microsecond - when.microsecond % keep)


def as_utc(when: datetime) -> datetime:
    """`when` as aware UTC (naive counts as UTC)."""
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def floor_day(when: datetime) -> datetime:
    """Midnight UTC of `when`'s day."""
    return when.replace(hour=0, minute=0, second=0, microsecond=0)
