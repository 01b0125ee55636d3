"""The evidence pack's report.html: plain tables and inline SVG charts; no script, no network."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from flows import outcomes as o

__all__ = ["age_bins", "iso", "render_report", "stacked_bars", "timeline"]

# Outcomes in the order a reader meets them (erased, kept on purpose, failed), with their colours.
COLOURS = {
    o.DELETED: "#1b5e20",
    o.REDACTED: "#43a047",
    o.ITEM_DELETED: "#81c784",
    o.ALREADY_DELETED: "#90a4ae",
    o.NOT_ERASABLE: "#8d6e63",
    o.HELD: "#1565c0",
    o.BECAME_ACTIVE: "#7e57c2",
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


def iso(value: datetime | None) -> str | None:
    """A time as ISO-8601 UTC to the second (2026-05-20T09:00:00Z)."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ordered(names: Iterable[str]) -> list[str]:
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
    series = {name: [0] * count for name in _ordered(n for _, n in points)}
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
    series = {name: [0] * count for name in _ordered(n for _, n in ages)}
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


class _Html(str):
    """Markup that is already escaped (a table cell shows it as is)."""


def _e(value: Any) -> str:
    if isinstance(value, _Html):
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
        f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<text x="{left}" y="18" class="ct">{_e(title)}</text>',
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
                    f'fill="{colour(name)}"><title>{_e(label)}: {_e(name)} {values[i]}</title>'
                    "</rect>"
                )
        if i % every == 0:
            cx, ly = left + (i + 0.5) * slot, base + 14
            out.append(
                f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {ly})">{_e(label)}</text>'
            )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" class="axis"/>'
        f'<text x="14" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.0f})">{_e(y_label)}</text></svg>'
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
            f'<text x="{x + 17}" y="{y + 10}">{_e(name)}</text>'
        )
        x += span
    return parts, (y - 30 + 18 if names else 0)


# -- the page --------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1b1b1b;
 max-width:62rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.2rem;margin-top:2.2rem;
 border-bottom:1px solid #ccc;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d0d0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-all}
.verdict{padding:.8rem 1rem;border-radius:6px;margin:1rem 0;font-size:1.05rem}
.ok{background:#e8f5e9;border:2px solid #2e7d32}.bad{background:#ffebee;border:2px solid #c62828}
.warn{background:#fff8e1;border:2px solid #f9a825}.muted{color:#555}
svg{max-width:100%;height:auto}svg text{font:11px Arial,sans-serif;fill:#333}
svg .ct{font-size:13px;font-weight:bold}svg .grid{stroke:#e3e3e3}svg .axis{stroke:#555}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,svg{break-inside:avoid}}
"""


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        value = ", ".join(f"{k} {v}" for k, v in value.items()) or "0"
    elif isinstance(value, list | tuple):
        value = "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        return f'<td class="n">{value}</td>'
    return f"<td>{_e(value)}</td>"


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> str:
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{_e(empty)}</p>'
    return "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + f"</tr>{body}</table>"


def _grid(records: Iterable[dict[str, Any]], columns: str, empty: str = "none") -> str:
    """A table of records: ``columns`` is "key:heading, key:heading, ..."; a key ending in
    "hash" is shown as code."""
    pairs = [c.strip().split(":", 1) for c in columns.split(",")]
    rows = [[_code(r[k]) if k.endswith("hash") else r.get(k) for k, _ in pairs] for r in records]
    return _table([h for _, h in pairs], rows, empty)


def _code(value: Any) -> _Html:
    return _Html(f"<code>{_e(value)}</code>")


def _chart(title: str, data: dict[str, Any], x_label: str, y_label: str) -> str:
    """The chart, and the same numbers as a table for those who would rather read."""
    labels, series = data["labels"], data["series"]
    rows = [[label, *(series[n][i] for n in series)] for i, label in enumerate(labels)]
    numbers = _table([x_label, *series], rows)
    chart = stacked_bars(title, labels, series, y_label=y_label)
    return f"{chart}<details><summary>The numbers</summary>{numbers}</details>"


def render_report(summary: dict[str, Any]) -> str:
    """The whole page, drawn from the summary alone (everything shown is in summary.json)."""
    scope, chain, runs = summary["scope"], summary["chain"], summary["runs"]
    if scope["kind"] == "run":
        title = f"Erasure evidence: run {scope['run_id']}"
        how = f"every event of audit run {_code(scope['run_id'])}"
    else:
        title = f"Erasure evidence: data subject {scope['subject_hash'][:12]}…"
        how = (
            f"the events of the data subject whose {_e(scope['subject_kind'])} has the keyed hash "
            f"{_code(scope['subject_hash'])} (HMAC-SHA256 with the pipeline's audit key; the "
            f"{_e(scope['subject_kind'])} itself is not in this pack), the events of the "
            "customers those runs erased for it, and those runs' own events (start, approval, "
            "tombstones, purge, finish: these count the whole run)"
        )
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
        f"<p class='muted'>Generated {_e(summary['generated_at'])} from the audit log. Scope: "
        f"{how}; {summary['events']['selected']} event(s).</p>",
        _verdict(chain),
        _status(summary),
        *_runs_section(runs),
        *_outcomes_section(summary, runs),
        *_other_sections(summary, runs),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _verdict(chain: dict[str, Any]) -> str:
    unsealed = (
        f" Not yet sealed (sealed by the next run): {_e(', '.join(chain['unsealed']))}."
        if chain["unsealed"]
        else ""
    )
    if not chain["ok"]:
        return (
            f"<div class='verdict bad'><strong>✘ AUDIT CHAIN BROKEN.</strong> "
            f"{_e(chain['problem'])}. Verified before the problem: {chain['runs']} run(s), "
            f"{chain['events']} event(s).{unsealed}</div>"
        )
    return (
        f"<div class='verdict ok'><strong>✔ The audit chain holds:</strong> {chain['runs']} "
        f"sealed run(s), {chain['events']} event(s), each linked to the one before and unaltered."
        f" Newest hash {_code(chain['last_hash'])}: keep a copy outside this system, because only "
        f"an outside copy shows that no run was cut off the end.{unsealed}</div>"
    )


def _status(summary: dict[str, Any]) -> str:
    total, attention = summary["outcomes"]["targets"], summary["attention"]
    erased = summary["verification"]["verified_total"]
    text = f"{total} target(s); {erased} erased and verified by reading back"
    if summary["status"] == "ok":
        return f"<div class='verdict ok'>{text}; nothing needs attention.</div>"
    notes = "".join(f"<li>{_e(n)}</li>" for n in attention["notes"])
    return (
        f"<div class='verdict warn'>{text}; <strong>{attention['targets']} target(s) need "
        f"attention</strong> (listed below).{f'<ul>{notes}</ul>' if notes else ''}</div>"
    )


def _runs_section(runs: list[dict[str, Any]]) -> list[str]:
    plans = {r["plan_hash"]: {**r["plan"], "plan_hash": r["plan_hash"]} for r in runs}
    approvals = [{**a, "run_id": r["run_id"]} for r in runs for a in r["approvals"]]
    reasons = [{"run_id": r["run_id"], "reason": x} for r in runs for x in r["reasons"]]
    return [
        "<h2>Runs: who requested, who approved, when</h2>",
        _grid(
            runs,
            "run_id:run, flow:flow, mode:mode, requested_by:requested by, approved_by:approved "
            "by, started_at:started, finished_at:finished, run_outcome:run outcome, events:events",
        ),
        _grid(approvals, "run_id:run, outcome:approval, approver:approver, time:time", ""),
        _grid(reasons, "run_id:run, reason:reason given", ""),
        "<h2>Plans</h2><p class='muted'>What each run was approved to do, found by its hash.</p>",
        _grid(
            plans.values(),
            "plan_hash:plan hash, found:found, now:planned at, path:directory, targets:targets, "
            "excluded_by_holds:excluded by holds, problem:problem",
        ),
        "<h3>Where each run sits in the chain</h3>",
        _grid(
            runs, "run_id:run, sealed:sealed, first_prev_hash:previous hash, last_hash:last hash"
        ),
    ]


def _outcomes_section(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    total = summary["outcomes"]["total"]
    names = _ordered({*total, *(n for r in runs for n in r["outcomes"])})
    short = [r["run_id"] if len(r["run_id"]) <= 16 else r["run_id"][:12] + "…" for r in runs]
    head = ["outcome", *(f"run {s}" for s in short), "latest per target"]
    rows = [[n, *(r["outcomes"].get(n, 0) for r in runs), total.get(n, 0)] for n in names]
    line = summary["timeline"]
    chart = (
        _chart(f"Terminal outcomes per {line['bucket']} (UTC)", line, line["bucket"], "targets")
        if line["labels"]
        else "<p class='muted'>No terminal outcome recorded: no chart.</p>"
    )
    return [
        "<h2>Outcomes</h2><p class='muted'>One terminal outcome per target and run. The last "
        "column counts each target once, by its latest outcome (a target retried by a later "
        "run of the same plan counts as what that run found).</p>",
        _table(head, rows, "No target was processed."),
        chart,
    ]


def _other_sections(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    holds, check, ages = summary["holds"], summary["verification"], summary["deleted_ages"]
    verified = [*check["verified"].items(), (o.VERIFY_FAILED, check["verify_failed"])]
    calls = [("answered as expected", check["calls_ok"]), ("error", check["calls_error"])]
    purges = [{**r["purge"], "run_id": r["run_id"]} for r in runs if r["purge"]]
    api = [
        {"run_id": r["run_id"], "method": m, "n": n}
        for r in runs
        for m, n in r["api_calls"].items()
    ]
    steps = [
        {"run_id": r["run_id"], "step": s, "n": n} for r in runs for s, n in r["steps"].items()
    ]
    more = summary["attention"]["targets"] - len(summary["attention"]["listed"])
    return [
        "<h2>Policies and their versions</h2><p class='muted'>The version hash identifies the "
        "exact policy text that selected the targets.</p>",
        _grid(
            summary["policies"],
            "name:policy, version_hash:version hash, matches_plan:events agree with plan, "
            "resource:resource, action:action, status:status, matched:matched, held:held, "
            "eligible:eligible, runs:runs, reason:reason",
        ),
        "<h2>Verification</h2><p class='muted'>Every erasure is read back: a search for the "
        "customer finds nothing, or the item reads back empty.</p>",
        _table(["terminal outcome", "targets"], verified),
        _table(["verification calls", "count"], calls),
        _grid(
            check["errors"],
            "http_status:HTTP status, error_code:error code, count:verification calls",
            "No verification call failed.",
        ),
        "<h2>Legal holds</h2>",
        f"<p>{holds['held_at_execution']} target(s) kept because a hold protected them when "
        f"they were about to be erased; {holds['excluded_at_planning']} excluded when planning."
        "</p>",
        _table(["hold (at execution)", "targets"], holds["labels"].items(), ""),
        _table(["hold (at planning)", "targets"], holds["planning_labels"].items(), ""),
        "<h2>Not erasable through Gladly's API</h2><p class='muted'>Reported, not erased: "
        "Gladly offers no API call that erases these.</p>",
        _table(
            ["content type", "targets"], summary["not_erasable_via_api"]["by_content_type"].items()
        ),
        "<h2>Our own archive: tombstones and purge</h2><p class='muted'>Counts of the whole run."
        "</p>",
        _grid(
            purges,
            "run_id:run, tombstoned:tombstones, customers:customers purged, rows_removed:rows "
            "removed, files_rewritten:files rewritten, files_deleted:files deleted, "
            "not_purged:not purged",
            "No purge was recorded (a rehearsal, or nothing was erased).",
        ),
        "<h2>API calls</h2>",
        _grid(api, "run_id:run, method:method, n:calls"),
        "<h2>Ages of what was erased</h2>",
        _ages(ages),
        "<h2>Needs attention</h2>",
        _grid(
            summary["attention"]["listed"],
            "run_id:run, target_type:type, target_id:target, policy_name:policy, "
            "outcome:outcome, http_status:HTTP, error_code:error code, detail:detail",
            "Nothing.",
        ),
        f"<p class='muted'>{more} more in events.parquet.</p>" if more > 0 else "",
        "<h2>Steps recorded</h2>",
        _grid(steps, "run_id:run, step:step, n:events"),
        _about(summary),
    ]


def _ages(ages: dict[str, Any]) -> str:
    note = f"<p class='muted'>{_e(ages['note'])}</p>" if ages.get("note") else ""
    if not ages["count"]:
        return note or "<p class='muted'>Nothing to show.</p>"
    return (
        f"<p>{ages['count']} erased target(s); age at planning: min {ages['min_days']} d, "
        f"median {ages['median_days']} d, max {ages['max_days']} d.</p>"
        + _chart(
            "Age of what was erased: days from last activity to planning", ages, "age", "targets"
        )
        + note
    )


def _about(summary: dict[str, Any]) -> str:
    events = summary["events"]
    return (
        "<h2>About this pack</h2><p>Three files: <code>report.html</code> (this page), "
        "<code>summary.json</code> (every number on it) and <code>events.parquet</code> "
        f"({events['selected']} audit events, unchanged, SHA-256 "
        f"{_code(events.get('parquet_sha256'))}). Each event carries the hash of the one "
        "before it and its own: SHA-256 of its canonical JSON, which anyone can recompute. "
        "<code>gladly-pipeline audit verify</code> checks the whole chain again.</p>"
        "<p>The audit log holds ids, keyed hashes, codes and counts, never an email, phone "
        "number, name or message text, and this pack holds nothing else: plan facts are ids and "
        "timestamps.</p>"
    )
