"""The evidence report's charts: their data (outcomes over time, ages) and their inline SVG."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from audit_log import outcomes as o

__all__ = [
    "COLOURS",
    "ORDER",
    "Html",
    "age_bins",
    "colour",
    "escape",
    "reading_order",
    "stacked_bars",
    "timeline",
]

# Outcomes in the order a reader meets them (erased, kept on purpose, failed), with their colours.
COLOURS = {
    o.DELETED: "#1b5e20",
    o.REDACTED: "#43a047",
    o.ITEM_DELETED: "#81c784",
    o.ALREADY_ABSENT: "#90a4ae",
    o.NOT_FOUND: "#ff7043",
    o.NOT_ERASABLE: "#8d6e63",
    o.HELD: "#1565c0",
    o.BECAME_ACTIVE: "#7e57c2",
    o.SKIPPED_CHANGED: "#9575cd",
    o.BLOCKED_OPEN: "#f9a825",
    o.PREFLIGHT_INCOMPLETE: "#ffb74d",
    o.VERIFY_FAILED: "#e57373",
    o.FAILED: "#b71c1c",
    o.DRY_RUN: "#bdbdbd",
}
ORDER = tuple(COLOURS)
_SPARE = ("#00838f", "#ad1457", "#5d4037", "#37474f", "#827717")
# Bucket of the outcomes-over-time chart by the span it covers: (unit, up to span, step, label).
_BUCKETS = (
    ("hour", timedelta(days=2), timedelta(hours=1), "%Y-%m-%d %H:00"),
    ("day", timedelta(days=120), timedelta(days=1), "%Y-%m-%d"),
    ("week", timedelta.max, timedelta(weeks=1), "wk %Y-%m-%d"),
)
_AGE_WIDTHS = (1, 7, 30, 90, 180, 365, 730, 1825, 3650, 36500)  # days per bar of the age chart


def reading_order(names: Iterable[str]) -> list[str]:
    """The outcome names in ORDER, then any others alphabetically."""
    known = set(names)
    return [n for n in ORDER if n in known] + sorted(known - set(ORDER))


def colour(name: str) -> str:
    """The fill of an outcome's bars (unknown outcomes get a stable spare colour)."""
    return COLOURS.get(name) or _SPARE[sum(map(ord, name)) % len(_SPARE)]


# -- chart data ------------------------------------------------------------------------------


def _floor(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if unit == "day" else day - timedelta(days=day.weekday())


def timeline(points: list[tuple[datetime, str]]) -> dict[str, Any]:
    """Terminal outcomes per hour (a span up to 2 days), per day (up to 120) or per week,
    every bucket between the first and the last shown, empty ones too."""
    if not points:
        return {"bucket": None, "labels": [], "series": {}}
    low, high = min(t for t, _ in points), max(t for t, _ in points)
    unit, _, step, fmt = next(b for b in _BUCKETS if high - low <= b[1])
    start = _floor(low, unit)
    count = (_floor(high, unit) - start) // step + 1
    series = {name: [0] * count for name in reading_order(n for _, n in points)}
    for moment, name in points:
        series[name][(_floor(moment, unit) - start) // step] += 1
    labels = [(start + i * step).strftime(fmt) for i in range(count)]
    return {"bucket": unit, "labels": labels, "series": series}


def age_bins(ages: list[tuple[float, str]], max_bins: int = 15) -> dict[str, Any]:
    """A histogram of ages in days, by outcome, at a width that keeps it under ``max_bins``."""
    if not ages:
        return {"count": 0, "labels": [], "series": {}}
    values = sorted(a for a, _ in ages)
    width = next(w for w in _AGE_WIDTHS if values[-1] // w - values[0] // w < max_bins)
    first = int(values[0] // width)
    count = int(values[-1] // width) - first + 1
    series = {name: [0] * count for name in reading_order(n for _, n in ages)}
    for age, name in ages:
        series[name][int(age // width) - first] += 1
    bounds = [((first + i) * width, (first + i + 1) * width) for i in range(count)]
    labels = [
        f"{lo / 365:g}-{hi / 365:g} y" if width >= 365 else f"{lo}-{hi} d" for lo, hi in bounds
    ]
    return {
        "count": len(ages),
        "width_days": width,
        "min_days": round(values[0], 1),
        "median_days": round(median(values), 1),
        "max_days": round(values[-1], 1),
        "labels": labels,
        "series": series,
    }


# -- SVG -------------------------------------------------------------------------------------


class Html(str):
    """Markup that is already escaped (a table cell shows it as is)."""


def escape(value: Any) -> str:
    """A value as HTML text: Html as is, nothing as a dash, anything else escaped."""
    if isinstance(value, Html):
        return value
    return "—" if value is None or value == "" else html.escape(str(value), quote=True)


def _nice_step(raw: float) -> int:
    """1, 2 or 5 times a power of ten, at least ``raw`` (and at least 1: counts are whole)."""
    if raw <= 1:
        return 1
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def stacked_bars(
    title: str, labels: Sequence[str], series: dict[str, list[int]], *, y_label: str
) -> str:
    """A stacked bar chart as inline SVG: one bar per label, one colour per series, a legend,
    and a tooltip (<title>) on every segment."""
    width, height = 760, 340
    legend, legend_height = _legend(list(series), width)
    left, right, top, bottom = 84, 12, 42 + legend_height, 78  # rotated labels need the left
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    step = _nice_step(max(totals, default=0) / 5)
    y_max = step * max(1, math.ceil(max(totals, default=0) / step))
    scale, slot = plot_h / y_max, plot_w / max(1, len(labels))
    bar = min(64.0, max(1.0, slot * 0.8))  # one bucket alone is a bar, not a wall
    base = top + plot_h
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="{left}" y="18" class="ct">{escape(title)}</text>',
        *legend,
    ]
    for k in range(y_max // step + 1):
        y = base - k * step * scale
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{k * step}</text>'
        )
    every = max(1, math.ceil(len(labels) / 14))
    for i, label in enumerate(labels):
        x, y = left + i * slot + (slot - bar) / 2, float(base)
        for name, values in series.items():
            if values[i]:
                h = values[i] * scale
                y -= h
                out.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{colour(name)}"><title>{escape(label)}: {escape(name)} '
                    f"{values[i]}</title></rect>"
                )
        if i % every == 0:
            cx, ly = left + (i + 0.5) * slot, base + 14
            out.append(
                f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {ly})">{escape(label)}</text>'
            )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" class="axis"/>'
        f'<text x="14" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.0f})">{escape(y_label)}</text></svg>'
    )
    return "".join(out)


def _legend(names: list[str], width: int) -> tuple[list[str], int]:
    """Swatches and names in rows under the title; returns the parts and their height."""
    parts, x, y = [], 56, 30
    for name in names:
        span = 17 + 7 * len(name) + 14  # swatch, name (~7 px a letter), gap
        if x + span > width and x > 56:
            x, y = 56, y + 18
        parts.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour(name)}"/>'
            f'<text x="{x + 17}" y="{y + 10}">{escape(name)}</text>'
        )
        x += span
    return parts, (y - 30 + 18 if names else 0)
