"""Evidence packs: what the audit log proves about a run or a data subject, no personal data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows import outcomes as o
from flows.evidence_html import age_bins, iso, render_report, timeline
from flows.exporting import resolve_root
from gladly_archive.audit import (
    AUDIT_EVENTS,
    AuditError,
    AuditLog,
    ChainReport,
    check_fields,
    verify_chain,
)
from retention_policies.holds import keyed_hash
from retention_policies.plan import Plan, PlanIntegrityError

__all__ = [
    "ATTENTION",
    "ERASED",
    "EVIDENCE_DIR",
    "EvidenceError",
    "EvidencePack",
    "UnknownRunError",
    "build_evidence",
]

EVIDENCE_DIR = "_evidence"
# Erased and proven by reading back; VERIFY_FAILED is the call that succeeded yet did not.
ERASED = (o.DELETED, o.REDACTED, o.ITEM_DELETED)
# The engine's own notion of "a person should look" (RunReport.ok / needs_attention).
ATTENTION = (
    o.FAILED,
    o.VERIFY_FAILED,
    o.BLOCKED_OPEN,
    o.HELD,
    o.BECAME_ACTIVE,
    o.PREFLIGHT_INCOMPLETE,
)
MAX_LISTED = 200  # rows of the "needs attention" list in the summary (all are in the Parquet)
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_OUTCOME_COLUMNS = [
    *("run_id", "time", "plan_hash", "policy_name", "target_type", "target_id"),
    *("outcome", "http_status", "error_code", "detail"),
]
_WITHHELD = "(withheld: looks like personal data)"


class EvidenceError(ValueError):
    """The report cannot be built as asked (bad selector, output in the way, remote root)."""


class UnknownRunError(EvidenceError):
    """No event of the audit log belongs to the run asked for."""

    def __init__(self, run_id: str, known: list[str]) -> None:
        """Name the run and the latest runs the log does hold."""
        self.run_id = run_id
        self.known = known
        listed = ", ".join(known) if known else "none: the audit log is empty"
        super().__init__(f"no events for run {run_id}; known runs (latest 5): {listed}")


@dataclass(frozen=True)
class EvidencePack:
    """A written evidence pack: its directory, its three files and the summary they show."""

    out_dir: Path
    events_path: Path
    summary_path: Path
    html_path: Path
    summary: dict[str, Any]

    @property
    def status(self) -> Literal["ok", "attention", "broken"]:
        """broken: the audit chain does not verify; attention: something was not erased."""
        status: Literal["ok", "attention", "broken"] = self.summary["status"]
        return status


def build_evidence(
    root: str | os.PathLike[str] | None = None,
    *,
    run_id: str | None = None,
    subject_email: str | None = None,
    subject_phone: str | None = None,
    plans_dir: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> EvidencePack:
    """Select the events of one run or of one data subject and write an evidence pack.

    The pack is ``events.parquet`` (the selected events, AUDIT_EVENTS schema, verifiable
    hashes), ``summary.json`` and ``report.html``. A subject is matched by the keyed hash of
    its email or phone (``key``, default GLADLY_AUDIT_KEY); the clear value is never written.
    Plans are looked up by hash under ``plans_dir`` and ``<root>/_plans``. Raises
    EvidenceError (UnknownRunError) for a bad request, AuditError if the log is unreadable.
    """
    from flows.execution import audit_key
    from flows.execution import plans_dir as default_plans

    chosen = [v for v in (run_id, subject_email, subject_phone) if v is not None]
    if len(chosen) != 1 or not chosen[0].strip():
        raise EvidenceError("choose exactly one of: a run id, a subject email, a subject phone")
    archive_root = resolve_root(root)
    if "://" in archive_root:
        raise EvidenceError(f"the audit log is local only; {archive_root} is not a local path")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    chain = verify_chain(archive_root)
    events = AuditLog(archive_root).events()
    scope: dict[str, Any]
    if run_id is not None:
        selected = _select_run(events, run_id)
        scope = {"kind": "run", "run_id": run_id}
        label = run_id
    else:
        kind: Literal["email", "phone"] = "email" if subject_email is not None else "phone"
        value = subject_email if subject_email is not None else subject_phone
        assert value is not None  # exactly one selector was checked above
        subject = keyed_hash(value, kind=kind, key=key or audit_key())
        selected = _select_subject(events, subject)
        scope = {"kind": "subject", "subject_kind": kind, "subject_hash": subject}
        label = f"subject-{subject[:12]}"
    final = _out_path(archive_root, out_dir, label, moment)
    hashes = {h for h in pc.unique(selected.column("plan_hash")).to_pylist() if h}
    search = [Path(plans_dir)] if plans_dir is not None else []
    plans = _find_plans(hashes, [*search, default_plans(archive_root)])
    return _write_pack(final, selected, _summarise(selected, chain, plans, scope, moment))


# -- selection -------------------------------------------------------------------------------


def _select_run(events: pa.Table, run_id: str) -> pa.Table:
    picked = events.filter(pc.equal(events.column("run_id"), run_id))
    if picked.num_rows == 0:
        known = [str(r) for r in pc.unique(events.column("run_id")).to_pylist()]
        raise UnknownRunError(run_id, known[::-1][:5])  # the log is in run order
    return picked


def _select_subject(events: pa.Table, subject_hash: str) -> pa.Table:
    """The subject's events, the events of the customers those runs targeted for it (same
    run), and those runs' own events (start, approval, tombstone, purge, finish)."""
    if events.num_rows == 0:
        return events
    direct = pc.fill_null(pc.equal(events.column("subject_hash"), subject_hash), False)
    hits = events.filter(direct).select(["run_id", "customer_id"]).to_pylist()
    runs = pa.array(sorted({h["run_id"] for h in hits}), pa.string())
    pairs = pa.array(sorted({f"{h['run_id']}/{h['customer_id']}" for h in hits}), pa.string())
    customer = pc.fill_null(events.column("customer_id"), "")
    joined = pc.binary_join_element_wise(events.column("run_id"), customer, "/")
    run_level = pc.is_in(
        pc.fill_null(events.column("target_type"), ""), pa.array(["run", "archive"])
    )
    mask = pc.or_(
        pc.or_(direct, pc.and_(pc.is_in(joined, pairs), pc.not_equal(customer, ""))),
        pc.and_(pc.is_in(events.column("run_id"), runs), run_level),
    )
    return events.filter(mask)


@dataclass(frozen=True)
class _PlanRef:
    path: Path
    plan: Plan | None
    problem: str | None


def _find_plans(hashes: set[str], search: list[Path]) -> dict[str, _PlanRef]:
    """Plan directories whose plan.json names one of ``hashes``, read back and verified."""
    found: dict[str, _PlanRef] = {}
    for base in search:
        if not base.is_dir():
            continue
        direct = (base / "plan.json").is_file()
        for directory in [base] if direct else sorted(p.parent for p in base.glob("*/plan.json")):
            try:
                recorded = json.loads((directory / "plan.json").read_text()).get("hash")
            except (OSError, ValueError, AttributeError):
                continue
            if recorded not in hashes or (recorded in found and found[recorded].plan):
                continue
            try:
                found[recorded] = _PlanRef(directory, Plan.read(directory), None)
            except PlanIntegrityError as exc:
                found[recorded] = _PlanRef(directory, None, str(exc))
    return found


# -- the summary -----------------------------------------------------------------------------


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


def _summarise(
    selected: pa.Table,
    chain: ChainReport,
    plans: dict[str, _PlanRef],
    scope: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data (the HTML is drawn from this alone)."""
    outcome_rows = _rows(selected, _is(selected, "step", "outcome"), _OUTCOME_COLUMNS)
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in outcome_rows:  # the log is in chain order: the last word on a target wins
        key = (row["plan_hash"] or "", row["policy_name"] or "", row["target_type"] or "")
        latest[(*key, row["target_id"] or "")] = row
    totals = Counter(str(r["outcome"]) for r in latest.values())
    run_ids = [str(r) for r in pc.unique(selected.column("run_id")).to_pylist()]
    runs = [_run_facts(selected, r, outcome_rows, plans, chain.unsealed) for r in run_ids]
    plan_targets = _plan_targets(plans)
    attention = [r for r in latest.values() if r["outcome"] in ATTENTION]
    notes = _notes(runs, scope)
    summary: dict[str, Any] = {
        "format": "gladly-pipeline evidence pack v1",
        "generated_at": iso(now),
        "scope": {**scope, "runs": run_ids},
        "chain": asdict(chain),  # ok, runs, events, problem, unsealed, last_hash
        "events": {"selected": selected.num_rows},
        "runs": runs,
        "policies": _policies(selected, plans),
        "outcomes": {"total": dict(sorted(totals.items())), "targets": len(latest)},
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


def _run_facts(
    table: pa.Table,
    run_id: str,
    outcome_rows: list[dict[str, Any]],
    plans: dict[str, _PlanRef],
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
        "resumed_targets": _count(start_detail.get("resumed")),
        "reasons": [str(r) for r in start_detail.get("reasons") or []],
        "plan_hash": plan_hash,
        "plan": _plan_facts(ref),
        "events": run.num_rows,
        "first_prev_hash": first["prev_hash"],
        "last_hash": last["hash"],
        "steps": {str(s["values"]): int(s["counts"]) for s in steps},  # in order of appearance
        "outcomes": dict(sorted(counts.items())),
        "recorded_outcomes": _counts(_json(finished["detail"]).get("outcomes")) if finished else {},
        "api_calls": dict(sorted(Counter(str(m["detail"]) for m in methods).items())),
        "purge": _purge(level),
    }


def _plan_facts(ref: _PlanRef | None) -> dict[str, Any]:
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


def _policies(selected: pa.Table, plans: dict[str, _PlanRef]) -> list[dict[str, Any]]:
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


def _holds(selected: pa.Table, totals: Counter[str], plans: dict[str, _PlanRef]) -> dict[str, Any]:
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


def _plan_targets(plans: dict[str, _PlanRef]) -> dict[_TargetKey, dict[str, Any]]:
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
            by_type[str(_screened(known or row["detail"] or row["target_type"]))] += 1
    return {"total": sum(by_type.values()), "by_content_type": dict(sorted(by_type.items()))}


def _ages(
    latest: Any, plans: dict[str, _PlanRef], plan_targets: dict[_TargetKey, dict[str, Any]]
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


# -- writing ---------------------------------------------------------------------------------


def _out_path(root: str, out_dir: str | os.PathLike[str] | None, label: str, now: datetime) -> Path:
    if out_dir is not None:
        final = Path(out_dir)
        if final.exists() and (not final.is_dir() or any(final.iterdir())):
            raise EvidenceError(f"{final} exists and is not an empty directory; choose another")
        return final
    base = Path(root) / EVIDENCE_DIR / f"{label}-{now:%Y%m%dT%H%M%SZ}"
    final, n = base, 1
    while final.exists():
        n += 1
        final = base.with_name(f"{base.name}-{n}")
    return final


def _write_pack(final: Path, selected: pa.Table, summary: dict[str, Any]) -> EvidencePack:
    """Write the three files into a temporary directory and rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        events = selected.cast(AUDIT_EVENTS)
        pq.write_table(events, tmp / "events.parquet")
        digest = hashlib.sha256((tmp / "events.parquet").read_bytes()).hexdigest()
        summary["events"]["parquet_sha256"] = digest
        text = json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
        (tmp / "summary.json").write_text(text, encoding="utf-8")
        (tmp / "report.html").write_text(render_report(summary), encoding="utf-8")
        if final.exists():
            final.rmdir()  # checked empty before the work began
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EvidencePack(
        final, final / "events.parquet", final / "summary.json", final / "report.html", summary
    )
