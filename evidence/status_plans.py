"""Plans on disk for `gladly-pipeline status`: which were executed, which await approval."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from audit_log.outcomes import ONE_OFF_POLICY
from evidence.status_audit import AuditRead
from retention_policies.plan import Plan, PlanIntegrityError
from retention_policies.planning import plans_dir

__all__ = [
    "APPROVAL_OVERDUE",
    "AwaitingPlan",
    "PlanFile",
    "PlansState",
    "UnreadablePlan",
    "list_plans",
    "plans_state",
]

# A plan nobody approved or rejected within this long needs a person.
APPROVAL_OVERDUE = timedelta(hours=72)


@dataclass(frozen=True)
class PlanFile:
    """A plan directory's `plan.json` as written (not yet verified against its content)."""

    directory: Path
    hash: str | None
    one_off_request: str | None  # the request hash of a one-off plan (`delete`)
    problem: str | None  # why plan.json cannot be read

    @property
    def key(self) -> str | None:
        """What the plan's targets belong to in the audit log (`audit_log.outcomes.request_key`)."""
        if self.hash is None:
            return None
        if self.one_off_request is not None:
            return f"request:{self.one_off_request}"
        return f"plan:{self.hash}"


def _plan_file(directory: Path) -> PlanFile:
    try:
        manifest: Any = json.loads((directory / "plan.json").read_text())
        plan_hash = str(manifest["hash"])
        policies = list(manifest["policies"])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        return PlanFile(directory, None, None, f"plan.json cannot be read ({type(exc).__name__})")
    names = {str(p.get("name")) for p in policies if isinstance(p, dict)}
    one_off = None
    if policies and names == {ONE_OFF_POLICY}:
        one_off = str(policies[0].get("version_hash"))
    return PlanFile(directory, plan_hash, one_off, None)


def list_plans(root: str) -> list[PlanFile]:
    """Every plan directory under the root's plans directory, by name (hidden ones, such as a
    plan still being written, are left out)."""
    base = plans_dir(root)
    if not base.is_dir():
        return []
    return [
        _plan_file(path)
        for path in sorted(base.iterdir())
        if path.is_dir() and not path.name.startswith(".")
    ]


@dataclass(frozen=True)
class AwaitingPlan:
    """A retention plan no real run executed and no approver rejected."""

    directory: str
    hash: str
    planned_at: datetime
    age: timedelta
    targets: int
    held: int
    blocked_policies: tuple[str, ...]
    rehearsals: int

    @property
    def overdue(self) -> bool:
        """Older than APPROVAL_OVERDUE without a decision."""
        return self.age > APPROVAL_OVERDUE


@dataclass(frozen=True)
class UnreadablePlan:
    """A plan directory that cannot be read, or whose content no longer matches its hash."""

    directory: str
    problem: str


@dataclass(frozen=True)
class PlansState:
    """The plans under the plans directory, by what became of them."""

    directory: str
    total: int
    executed: int
    rejected: int
    one_off: int  # one-off requests' plans never executed (rehearsals of `delete`)
    awaiting: tuple[AwaitingPlan, ...]
    unreadable: tuple[UnreadablePlan, ...]


def plans_state(root: str, plans: list[PlanFile], audit: AuditRead, now: datetime) -> PlansState:
    """Match each plan by hash against the audit log: executed by a real run, rejected by an
    approver, a one-off request's (not an approval matter), or awaiting approval (verified
    with `Plan.read`, so a plan changed on disk is reported, not counted)."""
    executed = audit.executed
    rehearsals = audit.rehearsals
    done = rejected = one_off = 0
    awaiting: list[AwaitingPlan] = []
    unreadable: list[UnreadablePlan] = []
    for found in plans:
        name = found.directory.name
        if found.hash is None:
            unreadable.append(UnreadablePlan(name, found.problem or "unreadable"))
        elif found.hash in executed:
            done += 1
        elif found.one_off_request is not None:
            one_off += 1
        elif audit.approvals.get(found.hash) == "rejected":
            rejected += 1
        else:
            try:
                plan = Plan.read(found.directory)
            except PlanIntegrityError as exc:
                unreadable.append(UnreadablePlan(name, _problem(exc, found.directory)))
                continue
            awaiting.append(
                AwaitingPlan(
                    directory=name,
                    hash=plan.hash,
                    planned_at=plan.now,
                    age=now - plan.now,
                    targets=plan.targets.num_rows,
                    held=plan.held.num_rows,
                    blocked_policies=tuple(str(p["name"]) for p in plan.blocked),
                    rehearsals=rehearsals[plan.hash],
                )
            )
    awaiting.sort(key=lambda p: p.planned_at)
    return PlansState(
        str(plans_dir(root)),
        len(plans),
        done,
        rejected,
        one_off,
        tuple(awaiting),
        tuple(unreadable),
    )


def _problem(exc: PlanIntegrityError, directory: Path) -> str:
    """The integrity error without the directory's path (the caller names the plan)."""
    text = str(exc)
    prefix = f"{directory}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
