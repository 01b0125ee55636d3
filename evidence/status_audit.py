"""What the audit log says for `gladly-pipeline status`: its chain, the engine's runs, and the
plans and requests they left unfinished. Reads only; ids, hashes and counts only."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import AUDIT_DIR, AUDIT_EVENTS, GENESIS, AuditError, read_events, verify_chain
from audit_log import outcomes as o
from audit_log.verify import journal_paths, sealed_runs

__all__ = [
    "AuditRead",
    "ChainState",
    "EngineRun",
    "OpenRequest",
    "RequestsState",
    "read_audit",
    "requests_state",
]

_TARGET_TYPES = ("customer", "conversation", "item")
# The steps status reads; every other event (hold checks, verifications, purges) is detail.
_STEPS = ("run_started", "run_finished", "approval", "act", "outcome")
_NOT_DONE = (o.FAILED, o.VERIFY_FAILED)
# What ends a target: the engine's final outcomes, and an unlink request's one.
_DONE = o.FINAL_OUTCOMES | {o.UNLINKED}


@dataclass(frozen=True)
class ChainState:
    """The audit log's size and head, and whether its keyed chain verifies.

    `verified` is None when it was not checked: no key (GLADLY_AUDIT_KEY), or no log yet.
    `head_hash` is the newest event's hash in chain order (GENESIS for a log of empty runs,
    None without a log); `problem` says why the chain does not verify or cannot be read."""

    exists: bool
    runs: int  # sealed runs
    unsealed: int  # journals of runs not sealed yet (a run in progress, or a crash)
    events: int
    head_hash: str | None
    verified: bool | None
    problem: str | None

    @property
    def head(self) -> str | None:
        """`<events>-<hash>` as `gladly-pipeline audit head` prints it (when it verifies)."""
        return None if self.head_hash is None else f"{self.events}-{self.head_hash}"


@dataclass(frozen=True)
class EngineRun:
    """One run of the deletion engine, as its `run_started` and `run_finished` events say."""

    run_id: str
    plan_hash: str
    started_at: datetime
    dry_run: bool
    targets: int | None  # the plan's targets, as the run counted them when it started
    finished: bool
    outcomes: int  # target outcomes this run recorded


@dataclass(frozen=True)
class AuditRead:
    """The chain's state, the engine's runs in chain order, and the plans' decisions."""

    chain: ChainState
    runs: tuple[EngineRun, ...] = ()
    # Plan hash → the last approval decision recorded for it (approved, rejected, …).
    approvals: dict[str, str] = field(default_factory=dict)
    events: pa.Table = field(default_factory=AUDIT_EVENTS.empty_table)

    @property
    def executed(self) -> set[str]:
        """Plan hashes a real run (not a rehearsal) started to execute."""
        return {run.plan_hash for run in self.runs if not run.dry_run}

    @property
    def rehearsals(self) -> Counter[str]:
        """Rehearsals (dry runs) per plan hash."""
        return Counter(run.plan_hash for run in self.runs if run.dry_run)


def read_audit(root: str, key: bytes | None) -> AuditRead:
    """Read `<root>/_audit` (never written here); with `key`, verify its keyed chain."""
    if "://" in root:
        # The audit log lives only under a local root (audit_log.AuditLog).
        return AuditRead(ChainState(False, 0, 0, 0, None, None, None))
    audit_dir = Path(root).expanduser().resolve() / AUDIT_DIR
    sealed = sealed_runs(audit_dir)
    sealed_ids = {run.run_id for run in sealed}
    unsealed = [path for path in journal_paths(audit_dir) if path.stem not in sealed_ids]
    if not sealed and not unsealed:
        return AuditRead(ChainState(False, 0, 0, 0, None, None, None))
    try:
        events = read_events(audit_dir)
    except (AuditError, OSError, pa.ArrowException) as exc:
        unreadable = f"the audit log cannot be read: {exc}"
        return AuditRead(ChainState(True, len(sealed), len(unsealed), 0, None, False, unreadable))
    head = str(events.column("hash")[-1].as_py()) if events.num_rows else GENESIS
    verified: bool | None = None
    problem: str | None = None
    if key is not None:
        report = verify_chain(root, key=key)
        verified, problem = report.ok, report.problem
    chain = ChainState(True, len(sealed), len(unsealed), events.num_rows, head, verified, problem)
    wanted = events.filter(pc.is_in(events.column("step"), pa.array(_STEPS)))
    runs, approvals = _runs(wanted)
    return AuditRead(chain, runs, approvals, wanted)


def _started_targets(detail: str | None) -> int | None:
    """The target count a `run_started` event's detail holds (JSON), if it holds one."""
    try:
        value = json.loads(detail or "")
    except ValueError:
        return None
    count = value.get("targets") if isinstance(value, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _runs(events: pa.Table) -> tuple[tuple[EngineRun, ...], dict[str, str]]:
    started: dict[str, dict[str, object]] = {}
    finished: set[str] = set()
    outcomes: Counter[str] = Counter()
    approvals: dict[str, str] = {}
    for row in events.to_pylist():
        step, run_id = row["step"], row["run_id"]
        if step == "run_started":
            started[run_id] = row
        elif step == "run_finished":
            finished.add(run_id)
        elif step == "outcome" and row["target_type"] in _TARGET_TYPES:
            outcomes[run_id] += 1
        elif step == "approval" and row["plan_hash"]:
            approvals[row["plan_hash"]] = str(row["outcome"])
    runs = tuple(
        EngineRun(
            run_id=run_id,
            plan_hash=str(row["plan_hash"]),
            started_at=row["time"],  # type: ignore[arg-type]
            dry_run=row["outcome"] == o.DRY_RUN,
            targets=_started_targets(row["detail"]),  # type: ignore[arg-type]
            finished=run_id in finished,
            outcomes=outcomes[run_id],
        )
        for run_id, row in started.items()
    )
    return runs, approvals


@dataclass(frozen=True)
class OpenRequest:
    """A plan or one-off erasure request whose real runs left targets without a final outcome.

    `hash` is the plan's hash, or for a one-off request its keyed request hash (stable over
    reruns; no personal data). `failed`: the latest outcome is failed or verify_failed (a rerun
    tries again); `interrupted`: a destructive call was announced and no outcome recorded
    since (a crash; the next real run's recovery sweep re-checks it); `not_reached`: targets
    the latest run counted that have no outcome at all (it stopped before them)."""

    kind: Literal["plan", "request"]
    hash: str
    last_run_id: str
    last_run_at: datetime
    targets: int | None
    finished: int
    failed: int
    interrupted: int
    not_reached: int


@dataclass(frozen=True)
class RequestsState:
    """Runs that started and did not finish (with no real run since: nothing has swept up
    after them yet), and every plan or request with targets failed, interrupted or not
    reached."""

    unfinished_runs: tuple[EngineRun, ...]
    open: tuple[OpenRequest, ...]

    @property
    def failed_targets(self) -> int:
        """Targets whose latest outcome is failed or verify_failed."""
        return sum(r.failed for r in self.open)

    @property
    def interrupted_targets(self) -> int:
        """Targets with an announced call and no outcome since."""
        return sum(r.interrupted for r in self.open)


def requests_state(audit: AuditRead, plan_keys: dict[str, str]) -> RequestsState:
    """Fold the real runs' target events, in chain order, into each target's latest state.

    `plan_keys` maps a plan hash to what its targets belong to (`plan:<hash>`, or for a
    one-off plan `request:<request hash>`), as the plan files say; a run whose plan file is
    gone is attributed by its own targets' events."""
    real = [run for run in audit.runs if not run.dry_run]
    dry = {run.run_id for run in audit.runs if run.dry_run}
    states: dict[str, dict[tuple[str, str, str], str]] = {}
    last_touch: dict[str, tuple[str, datetime]] = {}
    own_keys: dict[str, set[str]] = {}
    plan_of = {run.run_id: run.plan_hash for run in real}
    for row in audit.events.to_pylist():
        if row["target_type"] not in _TARGET_TYPES or row["run_id"] in dry:
            continue
        key = o.request_key(row)
        target = (str(row["policy_name"]), str(row["target_type"]), str(row["target_id"]))
        if row["step"] == "act" and row["phase"] == "intent":
            states.setdefault(key, {})[target] = "announced"
        elif row["step"] == "outcome" and row["outcome"] in _DONE:
            states.setdefault(key, {})[target] = "done"
        elif row["step"] == "outcome" and row["outcome"] in _NOT_DONE:
            states.setdefault(key, {})[target] = "failed"
        else:
            continue
        last_touch[key] = (row["run_id"], row["time"])
        if plan_of.get(row["run_id"]) == row["plan_hash"]:
            # The run's own plan (a sweep records other plans' targets under their plans).
            own_keys.setdefault(row["run_id"], set()).add(key)
    latest: dict[str, EngineRun] = {}
    for run in real:
        mine = own_keys.get(run.run_id, set())
        key = plan_keys.get(run.plan_hash) or (
            next(iter(mine)) if len(mine) == 1 else f"plan:{run.plan_hash}"
        )
        latest[key] = run
    found = [
        _open(key, states.get(key, {}), latest.get(key), last_touch.get(key))
        for key in sorted(set(states) | set(latest))
    ]
    unfinished = (real[-1],) if real and not real[-1].finished else ()
    return RequestsState(unfinished, tuple(r for r in found if r is not None))


def _open(
    key: str,
    targets: dict[tuple[str, str, str], str],
    run: EngineRun | None,
    touched: tuple[str, datetime] | None,
) -> OpenRequest | None:
    """The plan's or request's open work, or None when every target it counts is done."""
    counts = Counter(targets.values())
    expected = run.targets if run is not None else None
    not_reached = max(0, expected - len(targets)) if expected is not None else 0
    if not (counts["failed"] or counts["announced"] or not_reached):
        return None
    moments = [touched] if touched is not None else []
    if run is not None:
        moments.append((run.run_id, run.started_at))
    last_run_id, last_run_at = max(moments, key=lambda m: m[1])
    kind, _, value = key.partition(":")
    return OpenRequest(
        kind="request" if kind == "request" else "plan",
        hash=value,
        last_run_id=last_run_id,
        last_run_at=last_run_at,
        targets=expected,
        finished=counts["done"],
        failed=counts["failed"],
        interrupted=counts["announced"],
        not_reached=not_reached,
    )
