"""The deletion engine: exactly the approved plan, audited, resumable, our own copy erased too."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_log import AuditLog, verify_chain
from audit_log import outcomes as o
from erasure.context import AuditAppender, Context, Recorder, Target
from erasure.own_archive import detail_json, purge_erased_items, tombstone_and_purge
from erasure.plan_policies import policy_checks
from erasure.recovery import interrupted_targets, plan_history, sweep_interrupted
from erasure.steps import run_target
from erasure.subjects import Subjects
from gladly_archive import Archive
from gladly_archive.purge import Progress
from gladly_client import GladlyClient
from retention_policies.holds import HoldRegistry
from retention_policies.plan import Plan, PlanIntegrityError
from retention_policies.references import References

__all__ = [
    "DEFAULT_WORKERS",
    "TARGETS_PHASE",
    "HoldSource",
    "PlanRefusedError",
    "RunIdentity",
    "contact_items",
    "execute_plan",
    "identity_from_env",
    "load_approved_plan",
    "targets_of",
]

logger = logging.getLogger(__name__)

# The phase of the plan's targets: progress(TARGETS_PHASE, targets finished, targets to run).
TARGETS_PHASE = "targets"

# Enough calls in flight to keep the client's per-method budget (8/s by default) busy at
# ~100 ms latency, with three or four calls per profile in sequence (list, profile when the
# re-check needs it, DELETE, verification); the client's throttle does the pacing, so more
# workers than this only queue.
DEFAULT_WORKERS = 8


class PlanRefusedError(ValueError):
    """The plan may not be executed: wrong hash, changed on disk, or unreadable."""


def load_approved_plan(plan_dir: str | Path, approved_hash: str) -> Plan:
    """The plan in `plan_dir`, verified against its own hash and the approved one.

    Refused before the first call when the directory was changed after planning or when the
    approval names another plan."""
    approved = (approved_hash or "").strip().lower()
    if len(approved) < 12:
        raise PlanRefusedError(
            "the approval must name the plan hash (at least its first 12 characters), "
            "as printed by `gladly-pipeline plan`"
        )
    try:
        plan = Plan.read(plan_dir)
    except PlanIntegrityError as exc:
        raise PlanRefusedError(f"refused: {exc}") from None
    if not plan.hash.startswith(approved):
        raise PlanRefusedError(
            f"refused: {plan_dir} holds plan {plan.hash[:12]}…, but {approved[:12]}… was "
            "approved; plan again or approve the plan you mean"
        )
    return plan


class HoldSource:
    """The hold registry, read again whenever its file changes (a hold added after planning,
    even during the run, wins from the next target on)."""

    def __init__(
        self, path: str | Path | None, key: bytes, references: References | None = None
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._key = key
        # The archive's inboxes and topics: a hold naming one that does not exist is refused
        # (before the first call, or as the file changes), never a hold that protects nothing.
        self._references = references
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._registry = HoldRegistry.empty(key=key)
        self.current()  # a broken file fails here, before the first call

    def current(self) -> HoldRegistry:
        """The registry as the file says now."""
        if self._path is None:
            return self._registry
        stat = os.stat(self._path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._registry = HoldRegistry.load(
                    self._path, key=self._key, references=self._references
                )
                self._stamp = stamp
            return self._registry


@dataclass(frozen=True)
class RunIdentity:
    """Who and what a run is, on every audit event: requester, approver, flow or deployment."""

    actor: str
    approver: str | None
    flow: str


def targets_of(plan: Plan) -> list[Target]:
    """The plan's targets as the engine takes them (one-off subject hashes from the facts)."""
    rows = plan.targets.to_pylist()
    out = []
    for row in rows:
        facts = json.loads(row["matched_facts_json"] or "{}")
        out.append(
            Target(
                target_type=row["target_type"],
                target_id=row["target_id"],
                customer_id=row["customer_id"],
                conversation_id=row["conversation_id"],
                policy_name=row["policy_name"],
                policy_hash=row["policy_hash"],
                action=row["action"],
                operation=row["operation"],
                content_type=row["content_type"],
                last_activity=row["last_activity"],
                close_open_conversations=bool(row["close_open_conversations"]),
                subject_hash=facts.get("subject_hash"),
                attachment_ids=tuple(facts.get("attachments") or ()),
                contact_id=facts.get("contact"),
            )
        )
    return out


def contact_items(plan: Plan) -> dict[str, frozenset[str]]:
    """Per contact policy of the plan, the ids of every item it lists (targets and held)."""
    names = {str(p["name"]) for p in plan.policies if p.get("resource") == "contact"}
    found: dict[str, set[str]] = {name: set() for name in names}
    for table in (plan.targets, plan.held):
        for row in table.select(["policy_name", "target_id"]).to_pylist():
            if row["policy_name"] in found:
                found[row["policy_name"]].add(row["target_id"])
    return {name: frozenset(ids) for name, ids in found.items()}


def execute_plan(
    plan: Plan,
    *,
    root: str,
    client: GladlyClient,
    holds: HoldSource,
    audit_key: bytes,
    identity: RunIdentity,
    dry_run: bool = True,
    workers: int = DEFAULT_WORKERS,
    subjects: Subjects | None = None,
    now: Callable[[], datetime] | None = None,
    on_outcome: Callable[[o.TargetOutcome], None] | None = None,
    progress: Progress | None = None,
) -> o.RunReport:
    """Execute `plan` (already verified and approved) against Gladly, or only rehearse it.

    Every step is an audit event, durable before the call it announces. Targets a previous run
    of the same plan finished are skipped, so a rerun after a crash converges. After the
    calls, deleted customers become tombstones and are purged from our own archive (audited).
    Dry runs call nothing and change nothing but the audit log.

    `progress` hears the targets finished of those this run executes (TARGETS_PHASE; those an
    earlier run finished are not counted) and the purge of our archive.
    """
    clock = now or (lambda: datetime.now(UTC))
    archive = Archive(root)
    archive.check_layout()  # before the first audit event: an earlier release's archive
    log = AuditLog(root, key=audit_key)
    report = o.RunReport(run_id=uuid.uuid4().hex, plan_hash=plan.hash, dry_run=dry_run)
    with log.start_run(
        report.run_id,
        actor=identity.actor,
        approver=identity.approver,
        flow=identity.flow,
        plan_hash=plan.hash,
    ) as run:
        all_targets = targets_of(plan)
        run.append(
            target_type="run",
            step="run_started",
            phase="intent",
            outcome=o.DRY_RUN if dry_run else "execute",
            detail=detail_json(
                {
                    "targets": len(all_targets),
                    "reasons": [p["reason"] for p in plan.policies if p.get("reason")],
                }
            ),
        )
        for policy in plan.policies:
            _record_metadata(run, policy)
        recorder = Recorder(run)
        if not dry_run:
            # A crash between a destructive call and its record, in this plan or any other:
            # re-check those in Gladly and record what their calls did; then erase our copy of
            # every customer the log says is gone (a crash before the purge left some).
            found = interrupted_targets(log.events())
            if found:
                sweep = Context(client, recorder, holds.current, Subjects(), clock(), False)
                report.recovered = sweep_interrupted(sweep, found)
            tombstone_and_purge(archive, run, log, root, audit_key, report, progress=progress)
            purge_erased_items(archive, run, log, report)
        history = plan_history(log.events(), plan)
        todo = [
            dataclasses.replace(t, attempt=history.attempts.get(t.key, 0) + 1)
            for t in all_targets
            if t.key not in history.finished
        ]
        report.resumed = len(all_targets) - len(todo)
        # Each policy as the plan defines it (its hash verified), for the live re-check.
        checks = policy_checks(plan.policies)
        if subjects is None:
            # Item rows only for item policies whose filters read something live.
            live_items = {
                name
                for name, check in checks.items()
                if check.policy is not None and check.policy.resource == "item" and check.sources
            }
            subjects = Subjects.load(
                root,
                {t.customer_id for t in todo if t.customer_id},
                {t.conversation_id for t in todo if t.conversation_id},
                {
                    t.target_id
                    for t in todo
                    if t.target_type == "item" and t.policy_name in live_items
                },
            )
        ctx = Context(
            client,
            recorder,
            holds.current,
            subjects,
            clock(),
            dry_run,
            sent=history.sent,
            policies=checks,
            plan_now=plan.now,
            contact_items=contact_items(plan),
        )
        try:
            # Whole customers first: their conversations' items then need no call at all.
            customers = [t for t in todo if t.operation == "delete_customer"]
            rest = [t for t in todo if t.operation != "delete_customer"]
            finished = 0
            if progress is not None:
                progress(TARGETS_PHASE, finished, len(todo))
            for phase in (customers, rest):
                for outcome in _run_all(ctx, phase, workers):
                    report.outcomes.append(outcome)
                    finished += 1
                    if on_outcome is not None:
                        on_outcome(outcome)
                    if progress is not None:
                        progress(TARGETS_PHASE, finished, len(todo))
        finally:
            ctx.rechecker.close()
        report.api_calls = dict(recorder.calls)
        if not dry_run:
            tombstone_and_purge(
                archive, run, log, root, audit_key, report, subjects, ctx.merged, progress
            )
            purge_erased_items(archive, run, log, report)
        run.append(
            target_type="run",
            step="run_finished",
            phase="result",
            outcome="ok" if report.ok else "attention",
            detail=detail_json(
                {
                    "outcomes": report.counts(),
                    "api_calls": report.api_calls,
                    "resumed": report.resumed,
                    "recovered": len(report.recovered),
                }
            ),
        )
    chain = verify_chain(root, key=audit_key)
    report.chain_ok = chain.ok
    report.chain_last_hash = chain.last_hash
    return report


def _record_metadata(run: AuditAppender, policy: dict[str, Any]) -> None:
    """A one-off request's metadata (keyed hashes; a kept reason), with the request's identity:
    one event per ~1,500 characters, so any header fits the audit log's bound on a field."""
    metadata: dict[str, str | None] = policy.get("metadata") or {}
    parts: list[dict[str, str | None]] = [{}]
    for name, value in metadata.items():
        if parts[-1] and len(detail_json({"metadata": {**parts[-1], name: value}})) > 1500:
            parts.append({})
        parts[-1][name] = value
    for part in parts if metadata else []:
        run.append(
            target_type="run",
            step="request_metadata",
            phase="intent",
            policy_name=policy["name"],
            policy_hash=policy["version_hash"],
            detail=detail_json({"metadata": part}),
        )


def _run_all(ctx: Context, targets: list[Target], workers: int) -> Iterator[o.TargetOutcome]:
    """Targets through a bounded pool (a few per worker in flight, never the whole plan);
    each target's terminal outcome is an audit event before it is yielded."""
    pending: set[Future[o.TargetOutcome]] = set()
    queue = iter(targets)
    limit = max(1, workers) * 4

    def finish(target: Target, outcome: o.TargetOutcome) -> o.TargetOutcome:
        ctx.recorder.event(
            target,
            step="outcome",
            phase="result",
            outcome=outcome.outcome,
            http_status=outcome.http_status,
            error_code=outcome.error_code,
            detail=outcome.detail,
        )
        return outcome

    def one(target: Target) -> o.TargetOutcome:
        try:
            outcome = run_target(ctx, target)
        except Exception as exc:  # a bug or an audit failure: recorded, never silent
            logger.exception("target %s %s failed unexpectedly", target.target_type, target.key)
            outcome = target.outcome(o.FAILED, detail=f"internal error: {type(exc).__name__}")
        return finish(target, outcome)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for target in queue:
            pending.add(pool.submit(one, target))
            if len(pending) >= limit:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)


def identity_from_env(flow: str, approver: str | None = None) -> RunIdentity:
    """The requester from GLADLY_PIPELINE_ACTOR (else the OS user), the approver as given."""
    actor = os.environ.get("GLADLY_PIPELINE_ACTOR") or _os_user()
    return RunIdentity(actor=actor, approver=approver, flow=flow)


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
