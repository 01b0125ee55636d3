"""Make a retention plan from policy files, a hold registry and the archive; write it to disk."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from gladly_archive import Archive
from gladly_archive.keyed import audit_key
from retention_policies.evaluate import evaluate
from retention_policies.facts import Progress, Tables
from retention_policies.facts_cache import facts_tables
from retention_policies.holds import HoldRegistry
from retention_policies.loader import load_policies
from retention_policies.model import Policy
from retention_policies.plan import Plan
from retention_policies.references import References

__all__ = ["load_inputs", "make_plan", "plans_dir"]


def plans_dir(root: str) -> Path:
    """Where plans are written: beside a local archive, else ./gladly-plans."""
    return Path("gladly-plans") if "://" in root else Path(root) / "_plans"


def load_inputs(
    tables: Tables, policies: str | Path, holds_path: str | Path | None, key: bytes
) -> tuple[list[Policy], HoldRegistry]:
    """The policies and the hold registry, checked against the archive's names: every inbox
    and topic they name must exist in its reference data; an unknown name is refused here,
    with the valid names, never matched to nothing."""
    references = References.from_connection(tables.con)
    loaded = load_policies(policies, references=references)
    registry = (
        HoldRegistry.load(holds_path, key=key, references=references)
        if holds_path is not None
        else HoldRegistry.empty(key=key)
    )
    return loaded, registry


def make_plan(
    policies: str | Path,
    *,
    root: str,
    holds_path: str | Path | None = None,
    out: str | Path | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> tuple[Plan, Path]:
    """Evaluate the policies over the archive at `now` and write the plan (default
    `<root>/_plans/<UTC timestamp>`). Raises PolicyValidationError / ValueError on bad input
    before anything is written, OldLayoutError for an archive of an earlier release. `progress`
    hears the fact tables built (or read) and the policies evaluated
    (retention_policies.facts.FACTS_PHASE, evaluate.POLICIES_PHASE)."""
    load_policies(policies)  # the files themselves first: no archive read for a typo
    key = audit_key(required=holds_path is not None, env=env)
    Archive(root).check_layout()  # an earlier release's archive: upgrade it first
    moment = now or datetime.now(UTC)
    tables, _ = facts_tables(root, progress=progress)
    try:
        loaded, registry = load_inputs(tables, policies, holds_path, key)
        plan = evaluate(loaded, tables, registry, moment, progress=progress)
    finally:
        tables.con.close()
    target = Path(out) if out is not None else plans_dir(root) / moment.strftime("%Y%m%dT%H%M%SZ")
    if out is None and target.exists():
        target = target.with_name(f"{target.name}-{plan.hash[:8]}")
    plan.write(target)
    return plan, target
