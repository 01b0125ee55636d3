"""How times, ages and counts are written where people and machines read them (the status's
sections, from ingest and evidence alike): one wording for every room that reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["age", "at", "counted", "hours", "iso_time"]


def at(moment: datetime) -> str:
    """A moment to the minute, in UTC as given: `2026-05-20 09:00Z`."""
    return f"{moment:%Y-%m-%d %H:%M}Z"


def age(span: timedelta) -> str:
    """How old, in the unit a person reads best: minutes, hours up to two days, then days."""
    seconds = span.total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def counted(count: int, one: str, many: str | None = None) -> str:
    """`1 plan`, `1,234 plans` (or `many` where the plural is not one + s)."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def iso_time(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, for JSON; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours(span: timedelta) -> float:
    """A span in hours, to the thousandth, for JSON."""
    return round(span.total_seconds() / 3600, 3)
