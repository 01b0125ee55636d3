"""What earlier runs did, read back from the audit log: finished targets, sent calls, and the
sweep that finishes what a crash interrupted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import outcomes as o
from erasure.context import Context, Target
from erasure.steps import has_content
from gladly_client.errors import NotFoundError
from retention_policies.plan import Plan

__all__ = [
    "Interrupted",
    "PlanHistory",
    "interrupted_targets",
    "plan_history",
    "sweep_interrupted",
]

Key = tuple[str, str, str]  # (policy name, target type, target id) within one plan or request
_TARGETS = pa.array(["customer", "conversation", "item"])


def _real(events: pa.Table) -> pa.Table:
    """Events of runs that acted (rehearsals left out) about a target."""
    if events.num_rows == 0:
        return events
    mask = pc.is_in(events.column("target_type"), _TARGETS)
    dry = o.rehearsal_runs(events)
    if dry:
        mask = pc.and_(mask, pc.invert(pc.is_in(events.column("run_id"), pa.array(sorted(dry)))))
    return events.filter(mask)


@dataclass(frozen=True)
class PlanHistory:
    """What earlier runs (not rehearsals) of this plan, or of the same one-off requests, did."""

    finished: frozenset[Key]  # a final outcome recorded
    sent: frozenset[Key]  # the destructive call was announced (and may have happened)
    attempts: dict[Key, int]  # how many runs reached each target


def plan_history(events: pa.Table, plan: Plan) -> PlanHistory:
    """Read the plan's history: by plan hash, and for one-off requests by request hash (a
    rerun of a request plans anew, under a new plan hash, but is the same request)."""
    requests = {
        str(p.get("version_hash")) for p in plan.policies if p.get("name") == o.ONE_OFF_POLICY
    }
    mine = {f"plan:{plan.hash}"} | {f"request:{r}" for r in requests}
    finished: set[Key] = set()
    sent: set[Key] = set()
    runs: dict[Key, set[str]] = {}
    for r in _real(events).to_pylist():
        if o.request_key(r) not in mine:
            continue
        key = (r["policy_name"], r["target_type"], r["target_id"])
        runs.setdefault(key, set()).add(r["run_id"])
        if r["step"] == "outcome" and r["outcome"] in o.FINAL_OUTCOMES:
            finished.add(key)
        if r["step"] == "act" and r["phase"] == "intent":
            sent.add(key)
    return PlanHistory(frozenset(finished), frozenset(sent), {k: len(v) for k, v in runs.items()})


@dataclass(frozen=True)
class Interrupted:
    """A target whose destructive call was announced by a run that never recorded its outcome."""

    target: Target
    plan_hash: str
    run_id: str
    method: str


def interrupted_targets(events: pa.Table) -> list[Interrupted]:
    """Every target, in any plan or request, with an announced destructive call and no final
    outcome since (a crash between the call and its record, or before the call)."""
    real = _real(events)
    if real.num_rows == 0:
        return []
    done: set[tuple[str, str, str, str]] = set()
    announced: dict[tuple[str, str, str, str], dict[str, object]] = {}
    for r in real.to_pylist():
        key = (o.request_key(r), r["policy_name"], r["target_type"], r["target_id"])
        if r["step"] == "outcome" and r["outcome"] in o.FINAL_OUTCOMES:
            done.add(key)
        elif r["step"] == "act" and r["phase"] == "intent":
            announced[key] = r
    out = []
    for key, r in announced.items():
        if key in done:
            continue
        method = str(r["detail"] or "")
        operation = {"DELETE": "delete", "POST": "redact"}.get(method, "delete")
        if r["target_type"] == "customer":
            operation = "delete_customer"
        target = Target(
            target_type=str(r["target_type"]),
            target_id=str(r["target_id"]),
            customer_id=r["customer_id"],  # type: ignore[arg-type]
            conversation_id=None,
            policy_name=str(r["policy_name"]),
            policy_hash=str(r["policy_hash"]),
            action=str(r["action"]),
            operation=operation,
            subject_hash=r["subject_hash"],  # type: ignore[arg-type]
            attempt=int(r["attempt"] or 1),  # type: ignore[call-overload]
        )
        out.append(Interrupted(target, str(r["plan_hash"]), str(r["run_id"]), method))
    return sorted(out, key=lambda i: (i.plan_hash, i.target.key))


def sweep_interrupted(ctx: Context, found: Iterable[Interrupted]) -> list[o.TargetOutcome]:
    """Re-check each interrupted target in Gladly and record the outcome its call had, under
    the plan or request it belongs to: a profile or deleted item that answers 404 was erased by
    that call; a redacted item without content was redacted. A target whose call evidently did
    not happen (the profile still answers) stays interrupted: a rerun of its plan or request
    finishes it, after every check again. Nothing here sends a destructive call."""
    outcomes = []
    for one in found:
        outcome = _recheck(ctx, one)
        if outcome is None:
            continue
        ctx.recorder.event(
            one.target,
            plan_hash=one.plan_hash,
            step="outcome",
            phase="result",
            outcome=outcome.outcome,
            http_status=outcome.http_status,
            detail=outcome.detail,
        )
        outcomes.append(outcome)
    return outcomes


def _recheck(ctx: Context, one: Interrupted) -> o.TargetOutcome | None:
    target, client, rec = one.target, ctx.client, ctx.recorder
    # No run id in the text: a run id of digits would read as a phone number to the audit log.
    why = f"recovered: the {one.method or 'call'} an earlier run announced took effect"
    if target.operation == "delete_customer":
        got = rec.call(
            target, "recover", "GET", 200, lambda: client.customers.get(target.target_id)
        )
        if isinstance(got.error, NotFoundError):
            return target.outcome(o.DELETED, http_status=404, detail=why)
        return None
    read = rec.call(target, "recover", "GET", 200, lambda: client.items.get(target.target_id))
    if isinstance(read.error, NotFoundError) and target.operation == "delete":
        return target.outcome(o.ITEM_DELETED, http_status=404, detail=why)
    if read.error is None and target.operation == "redact" and not has_content(read.value):
        return target.outcome(o.REDACTED, detail=why)
    return None
