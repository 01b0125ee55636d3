"""The evidence pack's report.html: plain tables and inline SVG charts; no script, no network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from audit_log import outcomes as o
from evidence.charts import Html, age_bins, escape, reading_order, stacked_bars, timeline

__all__ = ["age_bins", "iso", "render_report", "stacked_bars", "timeline"]


def iso(value: datetime | None) -> str | None:
    """A time as ISO-8601 UTC to the second (2026-05-20T09:00:00Z)."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return f"<td>{escape(value)}</td>"


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> str:
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{escape(empty)}</p>'
    return "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + f"</tr>{body}</table>"


def _grid(records: Iterable[dict[str, Any]], columns: str, empty: str = "none") -> str:
    """A table of records: ``columns`` is "key:heading, key:heading, ..."; a key ending in
    "hash" is shown as code."""
    pairs = [c.strip().split(":", 1) for c in columns.split(",")]
    rows = [[_code(r[k]) if k.endswith("hash") else r.get(k) for k, _ in pairs] for r in records]
    return _table([h for _, h in pairs], rows, empty)


def _code(value: Any) -> Html:
    return Html(f"<code>{escape(value)}</code>")


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
            f"the events of the data subject whose {escape(scope['subject_kind'])} has the keyed "
            f"hash {_code(scope['subject_hash'])} (HMAC-SHA256 with the pipeline's audit key; the "
            f"{escape(scope['subject_kind'])} itself is not in this pack), the events of the "
            "customers those runs erased for it, and those runs' own events (start, approval, "
            "tombstones, purge, finish: these count the whole run)"
        )
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>",
        f"<p class='muted'>Generated {escape(summary['generated_at'])} from the audit log. Scope: "
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
        f" Not yet sealed (sealed by the next run): {escape(', '.join(chain['unsealed']))}."
        if chain["unsealed"]
        else ""
    )
    if not chain["ok"]:
        return (
            f"<div class='verdict bad'><strong>✘ AUDIT CHAIN BROKEN.</strong> "
            f"{escape(chain['problem'])}. Verified before the problem: {chain['runs']} run(s), "
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
    notes = "".join(f"<li>{escape(n)}</li>" for n in attention["notes"])
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
    names = reading_order({*total, *(n for r in runs for n in r["outcomes"])})
    short = [r["run_id"] if len(r["run_id"]) <= 16 else r["run_id"][:12] + "…" for r in runs]
    head = ["outcome", "meaning", *(f"run {s}" for s in short), "latest per target"]
    rows = [
        [n, o.MEANINGS.get(n, ""), *(r["outcomes"].get(n, 0) for r in runs), total.get(n, 0)]
        for n in names
    ]
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
            "outcome:outcome, meaning:meaning, http_status:HTTP, error_code:error code, "
            "detail:detail",
            "Nothing.",
        ),
        f"<p class='muted'>{more} more in events.parquet.</p>" if more > 0 else "",
        "<h2>Steps recorded</h2>",
        _grid(steps, "run_id:run, step:step, n:events"),
        _about(summary),
    ]


def _ages(ages: dict[str, Any]) -> str:
    note = f"<p class='muted'>{escape(ages['note'])}</p>" if ages.get("note") else ""
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
