"""The evidence pack's summary: what the selected events and their plans show, as JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import AuditError, ChainReport, check_fields
from audit_log import outcomes as o
from evidence.charts import age_bins, timeline
from evidence.page import iso
from retention_policies.plan import Plan

__all__ = ["ATTENTION", "ERASED", "MAX_LISTED", "PlanRef", "summarise"]

# Erased and proven by reading back; VERIFY_FAILED is the call that succeeded yet did not.
ERASED = (o.DELETED, o.REDACTED, o.ITEM_DELETED)
# The engine's own notion of "a person should look" (RunReport.ok / needs_attention).
ATTENTION = (
    o.NOT_FOUND,
    o.FAILED,
    o.VERIFY_FAILED,
    o.BLOCKED_OPEN,
    o.HELD,
    o.BECAME_ACTIVE,
    o.SKIPPED_CHANGED,
    o.PREFLIGHT_INCOMPLETE,
)
MAX_LISTED = 200  # rows of the "needs attention" list in the summary (all are in the Parquet)
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_OUTCOME_COLUMNS = [
    *("run_id", "time", "plan_hash", "policy_name", "policy_hash", "target_type", "target_id"),
    *("outcome", "http_status", "error_code", "detail"),
]
_WITHHELD = "(withheld: looks like personal data)"


@dataclass(frozen=True)
class PlanRef:
    """A plan directory found by hash: the plan, read back and verified, or why it is not."""

    path: Path
    plan: Plan | None
    problem: str | None


def _rows(table: pa.Table, mask: pa.ChunkedArray, columns: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.filter(pc.fill_null(mask, False)).select(columns).to_pylist()
    return rows


def _is(table: pa.Table, column: str, value: str) -> pa.ChunkedArray:
    return pc.equal(table.column(column), value)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    """A count from an event's detail (the engine writes 1,000,000 and more with commas)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).replace(",", ""))
    except ValueError:
        return 0


def _counts(mapping: Any) -> dict[str, int]:
    return {str(k): _count(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}


def _screened(text: str | None) -> str | None:
    """Free text from a plan, screened as the audit log screens its own fields."""
    if text is None:
        return None
    try:
        check_fields({"detail": text})
    except AuditError:
        return _WITHHELD
    return text


def summarise(
    selected: pa.Table,
    chain: ChainReport,
    plans: dict[str, PlanRef],
    scope: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data (the HTML is drawn from this alone)."""
    all_outcomes = _rows(selected, _is(selected, "step", "outcome"), _OUTCOME_COLUMNS)
    rehearsals = o.rehearsal_runs(selected)
    # Rehearsals are shown apart and never count as done: only runs that acted speak here.
    outcome_rows = [r for r in all_outcomes if r["run_id"] not in rehearsals]
    latest = _latest(outcome_rows)  # the log is in chain order: the last word on a target wins
    rehearsed = _latest([r for r in all_outcomes if r["run_id"] in rehearsals])
    totals = Counter(str(r["outcome"]) for r in latest.values())
    run_ids = [str(r) for r in pc.unique(selected.column("run_id")).to_pylist()]
    runs = [_run_facts(selected, r, all_outcomes, plans, chain.unsealed) for r in run_ids]
    plan_targets = _plan_targets(plans)
    attention = [
        {**r, "meaning": o.MEANINGS[r["outcome"]]}
        for r in latest.values()
        if r["outcome"] in ATTENTION
    ]
    # Rehearsed but never done by a run that acted; announced calls that never got an outcome.
    not_done = [
        {**r, "outcome": "not done: rehearsed only"}
        for k, r in rehearsed.items()
        if k not in latest
    ]
    interrupted = [
        {**r, "outcome": "interrupted: no outcome recorded"}
        for k, r in _latest(_announced(selected, rehearsals)).items()
        if k not in latest
    ]
    attention += not_done + interrupted
    notes = _notes(runs, scope)
    summary: dict[str, Any] = {
        "format": "gladly-pipeline evidence pack v1",
        "generated_at": iso(now),
        "scope": {**scope, "runs": run_ids},
        "chain": {**asdict(chain), "head": chain.head},  # ok, runs, events, problem, …, head
        "events": {"selected": selected.num_rows},
        "runs": runs,
        "policies": _policies(selected, plans),
        "outcomes": {
            "total": dict(sorted(totals.items())),
            "targets": len(latest),
            # Each outcome in plain words: which count as done, and why the rest were not.
            "meanings": {k: o.MEANINGS[k] for k in sorted(totals) if k in o.MEANINGS},
        },
        "rehearsals": {
            "runs": len(rehearsals & set(run_ids)),
            "targets": len(rehearsed),
            "not_done": len(not_done),
        },
        "interrupted": len(interrupted),
        "holds": _holds(selected, totals, plans),
        "verification": _verification(selected, totals),
        "not_erasable_via_api": _not_erasable(latest.values(), plan_targets),
        "timeline": timeline([(r["time"], str(r["outcome"])) for r in outcome_rows]),
        "deleted_ages": _ages(latest.values(), plans, plan_targets),
        "attention": {
            "targets": len(attention),
            "listed": [{**r, "time": iso(r["time"])} for r in attention[:MAX_LISTED]],
            "notes": notes,
        },
    }
    broken = not chain.ok
    summary["status"] = "broken" if broken else ("attention" if attention or notes else "ok")
    return summary


def _latest(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """The last row per target of a plan or one-off request (o.request_key)."""
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        key = (o.request_key(row), row["policy_name"] or "", row["target_type"] or "")
        latest[(*key, row["target_id"] or "")] = row
    return latest


def _announced(selected: pa.Table, rehearsals: set[str]) -> list[dict[str, Any]]:
    """Destructive calls announced (the audit log's intent) by runs that acted."""
    mask = pc.and_(_is(selected, "step", "act"), _is(selected, "phase", "intent"))
    rows = _rows(selected, mask, _OUTCOME_COLUMNS)
    return [r for r in rows if r["run_id"] not in rehearsals]


def _run_facts(
    table: pa.Table,
    run_id: str,
    outcome_rows: list[dict[str, Any]],
    plans: dict[str, PlanRef],
    unsealed: list[str],
) -> dict[str, Any]:
    run = table.filter(_is(table, "run_id", run_id))
    first = run.slice(0, 1).to_pylist()[0]
    last = run.slice(run.num_rows - 1, 1).to_pylist()[0]
    level = _rows(
        run,
        pc.is_in(run.column("target_type"), pa.array(["run", "archive"])),
        ["time", "step", "phase", "outcome", "approver", "detail"],
    )
    started = next((e for e in level if e["step"] == "run_started"), None)
    finished = next((e for e in reversed(level) if e["step"] == "run_finished"), None)
    approvals = [
        {"outcome": e["outcome"], "approver": e["approver"], "time": iso(e["time"])}
        for e in level
        if e["step"] == "approval"
    ]
    start_detail = _json(started["detail"]) if started else {}
    finish_detail = _json(finished["detail"]) if finished else {}
    mode = {"dry_run": "rehearsal", "execute": "executed"}
    steps = pc.value_counts(pc.fill_null(run.column("step"), "(none)")).to_pylist()
    methods = _rows(
        run,
        pc.and_(_is(run, "phase", "intent"), pc.is_in(run.column("detail"), pa.array(_METHODS))),
        ["detail"],
    )
    counts = Counter(str(r["outcome"]) for r in outcome_rows if r["run_id"] == run_id)
    plan_hash = first["plan_hash"]
    ref = plans.get(plan_hash) if plan_hash else None
    return {
        "run_id": run_id,
        "flow": first["flow"],
        "requested_by": first["actor"],
        "approved_by": next(
            (
                a["approver"]
                for a in approvals[::-1]
                if a["outcome"] == "approved" and a["approver"]
            ),
            first["approver"],
        ),
        "approvals": approvals,
        "mode": mode.get(started["outcome"] if started else "", "unknown"),
        "started_at": iso(started["time"] if started else first["time"]),
        "finished_at": iso(finished["time"]) if finished else None,
        "run_outcome": finished["outcome"] if finished else None,
        "sealed": run_id not in unsealed,
        "planned_targets": _count(start_detail.get("targets")),
        "resumed_targets": _count(finish_detail.get("resumed", start_detail.get("resumed"))),
        "reasons": [str(r) for r in start_detail.get("reasons") or []],
        "plan_hash": plan_hash,
        "plan": _plan_facts(ref),
        "events": run.num_rows,
        "first_prev_hash": first["prev_hash"],
        "last_hash": last["hash"],
        "steps": {str(s["values"]): int(s["counts"]) for s in steps},  # in order of appearance
        "outcomes": dict(sorted(counts.items())),
        "recorded_outcomes": _counts(finish_detail.get("outcomes")),
        "api_calls": dict(sorted(Counter(str(m["detail"]) for m in methods).items())),
        "purge": _purge(level),
    }


def _plan_facts(ref: PlanRef | None) -> dict[str, Any]:
    """The plan's facts; its directory by name only (a full path can name the operator)."""
    if ref is None:
        return {"found": False, "path": None, "problem": "no plan with this hash was found"}
    if ref.plan is None:
        problem = str(ref.problem).replace(str(ref.path), ref.path.name)
        return {"found": False, "path": ref.path.name, "problem": problem}
    plan = ref.plan
    return {
        "found": True,
        "path": ref.path.name,
        "problem": None,
        "now": iso(plan.now),
        "holds_hash": plan.holds_hash,
        "targets": plan.targets.num_rows,
        "excluded_by_holds": plan.held.num_rows,
    }


def _purge(level: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run's tombstones and purge of our archive, from its archive events."""
    stones = [e for e in level if e["step"] == "tombstone"]
    results = [e for e in level if e["step"] == "purge" and e["phase"] == "result"]
    if not stones and not results:
        return None
    done = _json(results[-1]["detail"]) if results else {}
    return {
        "tombstoned": sum(_count(_json(e["detail"]).get("customers")) for e in stones),
        "finished": bool(results),
        "customers": _count(done.get("customers")),
        "rows_removed": _counts(done.get("rows_removed")),
        "files_rewritten": _counts(done.get("files_rewritten")),
        "files_deleted": _counts(done.get("files_deleted")),
        "not_purged": [str(n) for n in done.get("not_purged") or []],
    }


def _policies(selected: pa.Table, plans: dict[str, PlanRef]) -> list[dict[str, Any]]:
    """Policy names with the version hashes the events carry and the plans record."""
    seen = selected.filter(pc.is_valid(selected.column("policy_name")))
    pairs = seen.group_by(["policy_name", "policy_hash", "run_id"]).aggregate([]).to_pylist()
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        entry = out.setdefault(pair["policy_name"], {"event_hashes": set(), "runs": set()})
        entry["event_hashes"].add(pair["policy_hash"] or "")
        entry["runs"].add(pair["run_id"])
    planned: dict[str, dict[str, Any]] = {}
    for ref in plans.values():
        for policy in ref.plan.policies if ref.plan else []:
            planned[str(policy.get("name"))] = policy
    rows = []
    for name in sorted(set(out) | set(planned)):
        entry, policy = out.get(name, {}), planned.get(name, {})
        hashes = sorted(h for h in entry.get("event_hashes", set()) if h)
        plan_hash = policy.get("version_hash")
        rows.append(
            {
                "name": name,
                "version_hash": plan_hash or (hashes[0] if hashes else None),
                "event_hashes": hashes,
                "matches_plan": plan_hash is None or not hashes or hashes == [plan_hash],
                "runs": sorted(entry.get("runs", set())),
                **{k: policy.get(k) for k in ("resource", "action", "status")},
                **{k: policy.get(k) for k in ("population", "matched", "held", "eligible")},
                "reason": _screened(policy.get("reason")),
            }
        )
    return rows


def _holds(selected: pa.Table, totals: Counter[str], plans: dict[str, PlanRef]) -> dict[str, Any]:
    checks = _rows(
        selected,
        pc.and_(_is(selected, "step", "hold_check"), _is(selected, "outcome", "held")),
        ["run_id", "target_id", "detail"],
    )
    labels: Counter[str] = Counter()
    for target in {(c["run_id"], c["target_id"], c["detail"] or "") for c in checks}:
        labels.update(label for label in target[2].split("; ") if label)
    planning: Counter[str] = Counter()
    excluded = 0
    for ref in plans.values():
        if ref.plan is not None:
            excluded += ref.plan.held.num_rows
            for row in ref.plan.held.column("excluded_by_holds").to_pylist():
                planning.update(str(_screened(label)) for label in row or [])
    return {
        "held_at_execution": totals.get(o.HELD, 0),
        "labels": dict(sorted(labels.items())),
        "excluded_at_planning": excluded,
        "planning_labels": dict(sorted(planning.items())),
    }


def _verification(selected: pa.Table, totals: Counter[str]) -> dict[str, Any]:
    calls = _rows(
        selected,
        pc.and_(_is(selected, "step", "verify"), _is(selected, "phase", "result")),
        ["outcome", "http_status", "error_code"],
    )
    errors = Counter(
        (c["http_status"], c["error_code"]) for c in calls if c["outcome"] != "ok"
    ).most_common()
    return {
        "verified": {k: totals.get(k, 0) for k in ERASED},
        "verified_total": sum(totals.get(k, 0) for k in ERASED),
        "verify_failed": totals.get(o.VERIFY_FAILED, 0),
        "calls_ok": sum(1 for c in calls if c["outcome"] == "ok"),
        "calls_error": sum(1 for c in calls if c["outcome"] != "ok"),
        "errors": [{"http_status": s, "error_code": c, "count": n} for (s, c), n in errors],
    }


_TargetKey = tuple[str, str, str, str]


def _plan_targets(plans: dict[str, PlanRef]) -> dict[_TargetKey, dict[str, Any]]:
    out: dict[_TargetKey, dict[str, Any]] = {}
    for plan_hash, ref in plans.items():
        if ref.plan is None:
            continue
        columns = ["policy_name", "target_type", "target_id", "content_type", "last_activity"]
        for row in ref.plan.targets.select(columns).to_pylist():
            key = (plan_hash, row["policy_name"], row["target_type"], row["target_id"])
            out[key] = row
    return out


def _target_key(row: dict[str, Any]) -> _TargetKey:
    return (row["plan_hash"], row["policy_name"], row["target_type"], row["target_id"])


def _not_erasable(latest: Any, plan_targets: dict[_TargetKey, dict[str, Any]]) -> dict[str, Any]:
    by_type: Counter[str] = Counter()
    for row in latest:
        if row["outcome"] == o.NOT_ERASABLE:
            known = plan_targets.get(_target_key(row), {}).get("content_type")
            # Without the plan, the detail's first part names the type (attachments follow).
            said = (row["detail"] or "").split(";")[0].strip()
            by_type[str(_screened(known or said or row["target_type"]))] += 1
    return {"total": sum(by_type.values()), "by_content_type": dict(sorted(by_type.items()))}


def _ages(
    latest: Any, plans: dict[str, PlanRef], plan_targets: dict[_TargetKey, dict[str, Any]]
) -> dict[str, Any]:
    erased = [r for r in latest if r["outcome"] in ERASED]
    ages: list[tuple[float, str]] = []
    unknown = 0
    for row in erased:
        ref = plans.get(row["plan_hash"] or "")
        last = plan_targets.get(_target_key(row), {}).get("last_activity")
        if ref is None or ref.plan is None or last is None:
            unknown += 1
            continue
        ages.append((max(0.0, (ref.plan.now - last).total_seconds() / 86400), row["outcome"]))
    result = age_bins(ages)
    result["without_age"] = unknown
    if not erased:
        result["note"] = "nothing was erased in the selected runs"
    elif not ages:
        result["note"] = "the plan of these runs was not found: ages are unknown"
    elif unknown:
        result["note"] = f"{unknown} erased target(s) have no known last activity or plan"
    return result


def _notes(runs: list[dict[str, Any]], scope: dict[str, Any]) -> list[str]:
    """Run-level findings a person should look at (target outcomes are listed separately)."""
    notes = []
    if not runs:
        notes.append("the audit log holds no event for this subject")
    for run in runs:
        if run["finished_at"] is None:
            notes.append(f"run {run['run_id']} has no run_finished event: it was interrupted")
        purge = run["purge"] or {}
        notes.extend(f"run {run['run_id']}: not purged: {n}" for n in purge.get("not_purged", []))
        if purge and not purge["finished"]:
            notes.append(f"run {run['run_id']}: the purge of our archive has no result")
        recorded = run["recorded_outcomes"]
        if scope["kind"] == "run" and recorded and recorded != run["outcomes"]:
            notes.append(f"run {run['run_id']}: run_finished records other outcome counts")
    return notes
