"""The two entrances to the deletion engine, without Prefect: an approved plan, or a one-off."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from audit_log import AuditLog
from audit_log.outcomes import RunReport, TargetOutcome
from erasure.engine import (
    DEFAULT_WORKERS,
    HoldSource,
    execute_plan,
    identity_from_env,
    load_approved_plan,
)
from erasure.oneoff import OneOffPlan, build_oneoff_plan
from erasure.request import OneOffRequest
from erasure.subjects import Subjects
from gladly_archive import Archive
from gladly_archive.keyed import audit_key
from gladly_archive.purge import Progress
from gladly_client import GladlyClient
from retention_policies.holds import HoldRegistry
from retention_policies.plan import TARGET_SCHEMA, Plan
from retention_policies.planning import plans_dir
from retention_policies.references import References

__all__ = [
    "OneOffRun",
    "execute_delete",
    "plan_delete",
    "run_apply",
    "run_delete",
    "run_recover",
]


def run_apply(
    plan_dir: str | Path,
    approved_hash: str,
    *,
    root: str,
    dry_run: bool = True,
    holds_path: str | Path | None = None,
    approver: str | None = None,
    flow: str = "cli:apply",
    workers: int = DEFAULT_WORKERS,
    client: GladlyClient | None = None,
    on_outcome: Callable[[TargetOutcome], None] | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Execute (or rehearse) the plan in `plan_dir` if and only if its hash was approved.

    Settings come from `env` (default: the process environment). `progress` hears the
    targets done (erasure.engine.TARGETS_PHASE) and the purge of our archive."""
    plan = load_approved_plan(plan_dir, approved_hash)
    return _execute(
        plan,
        root=root,
        dry_run=dry_run,
        holds_path=holds_path,
        flow=flow,
        approver=approver,
        workers=workers,
        client=client,
        on_outcome=on_outcome,
        env=env,
        progress=progress,
    )


@dataclass
class OneOffRun:
    """A one-off deletion: its plan (and where it was written) and what the engine did."""

    oneoff: OneOffPlan
    plan_dir: Path
    report: RunReport

    @property
    def request_id(self) -> str:
        """The request's stable identity (see erasure.oneoff.request_hash)."""
        return str(self.oneoff.plan.policies[0]["version_hash"])


def plan_delete(
    request: OneOffRequest,
    *,
    root: str,
    client: GladlyClient | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[OneOffPlan, Path]:
    """Resolve the request into a plan through read-only calls, and write it."""
    key = audit_key(env=env)
    Archive(root).check_layout()  # an earlier release's archive: upgrade it first
    moment = now or datetime.now(UTC)
    history = AuditLog(root, key=key).events()
    with _client_for(client, env) as gladly:
        oneoff = build_oneoff_plan(request, gladly, key=key, now=moment, history=history)
    target = plans_dir(root) / f"oneoff-{moment:%Y%m%dT%H%M%S%fZ}-{oneoff.plan.hash[:12]}"
    oneoff.plan.write(target)
    return oneoff, target


def execute_delete(
    oneoff: OneOffPlan,
    *,
    root: str,
    dry_run: bool = True,
    holds_path: str | Path | None = None,
    flow: str = "cli:delete",
    approver: str | None = None,
    workers: int = DEFAULT_WORKERS,
    client: GladlyClient | None = None,
    on_outcome: Callable[[TargetOutcome], None] | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Run a one-off plan through the engine (a rehearsal unless `dry_run` is False)."""
    return _execute(
        oneoff.plan,
        root=root,
        dry_run=dry_run,
        holds_path=holds_path,
        flow=flow,
        approver=approver,
        workers=workers,
        client=client,
        on_outcome=on_outcome,
        env=env,
        subjects=_subjects(root, oneoff),
        progress=progress,
    )


def run_delete(
    request: OneOffRequest,
    *,
    root: str,
    dry_run: bool = True,
    holds_path: str | Path | None = None,
    flow: str = "cli:delete",
    workers: int = DEFAULT_WORKERS,
    client: GladlyClient | None = None,
    now: datetime | None = None,
    on_outcome: Callable[[TargetOutcome], None] | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> OneOffRun:
    """Plan the one-off deletion and run it through the engine — only as a rehearsal unless
    `dry_run` is False."""
    # a broken hold file stops us before any call
    HoldSource(holds_path, audit_key(env=env), References.from_archive(root))
    oneoff, target = plan_delete(request, root=root, client=client, now=now, env=env)
    report = execute_delete(
        oneoff,
        root=root,
        dry_run=dry_run,
        holds_path=holds_path,
        flow=flow,
        workers=workers,
        client=client,
        on_outcome=on_outcome,
        env=env,
        progress=progress,
    )
    return OneOffRun(oneoff, target, report)


def run_recover(
    *,
    root: str,
    holds_path: str | Path | None = None,
    client: GladlyClient | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """An audited run with nothing to do but what every real run does first: re-check the
    calls a crash left without an outcome, record what they did, tombstone and purge."""
    key = audit_key(env=env)
    empty = Plan(
        now=datetime.now(UTC),
        targets=TARGET_SCHEMA.empty_table(),
        held=TARGET_SCHEMA.empty_table(),
        policies=[],
        holds_hash=HoldRegistry.empty(key=key).hash,
    )
    return _execute(
        empty,
        root=root,
        dry_run=False,
        holds_path=holds_path,
        flow="cli:recover",
        approver=None,
        workers=1,
        client=client,
        on_outcome=None,
        env=env,
        progress=progress,
    )


@contextmanager
def _client_for(
    client: GladlyClient | None, env: Mapping[str, str] | None
) -> Iterator[GladlyClient]:
    """The caller's client, or one from the settings that is closed afterwards."""
    if client is not None:
        yield client
        return
    with GladlyClient.from_env(env=env) as own:
        yield own


def _execute(
    plan: Plan,
    *,
    root: str,
    dry_run: bool,
    holds_path: str | Path | None,
    flow: str,
    approver: str | None,
    workers: int,
    client: GladlyClient | None,
    on_outcome: Callable[[TargetOutcome], None] | None,
    env: Mapping[str, str] | None,
    subjects: Subjects | None = None,
    progress: Progress | None = None,
) -> RunReport:
    key = audit_key(env=env)
    holds = HoldSource(holds_path, key, References.from_archive(root))
    with _client_for(client, env) as gladly:
        return execute_plan(
            plan,
            root=root,
            client=gladly,
            holds=holds,
            audit_key=key,
            identity=identity_from_env(flow, approver),
            dry_run=dry_run,
            workers=workers,
            subjects=subjects,
            on_outcome=on_outcome,
            progress=progress,
        )


def _subjects(root: str, oneoff: OneOffPlan) -> Subjects:
    """What the archive knows of the customers, with what Gladly just said on top."""
    targets = oneoff.plan.targets
    customers = {c for c in targets.column("customer_id").to_pylist() if c}
    conversations = {c for c in targets.column("conversation_id").to_pylist() if c}
    subjects = Subjects.load(root, customers, conversations)
    for subject in oneoff.subjects.customers.values():
        subjects.merge(subject)
    return subjects
