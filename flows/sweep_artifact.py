"""What the hourly export publishes when its sweep finds card numbers, SSNs or IBANs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect.artifacts import create_markdown_artifact

from flows.alerts import SWEEP_FOUND, emit_alert
from retention_policies.sweep_plan import SweepResult

__all__ = ["SWEEP_ARTIFACT", "apply_command", "found_line", "publish_sweep", "summarize_sweep"]

SWEEP_ARTIFACT = "sensitive-data-sweep"


def found_line(result: SweepResult) -> str:
    """Counts per kind, for a log line: `card 2, ssn 1, iban 0` (never a number found)."""
    return ", ".join(f"{kind} {n:,}" for kind, n in result.scan.items_by_kind().items())


def apply_command(result: SweepResult) -> str:
    """The command that executes the plan once a person has reviewed it."""
    if result.plan is None or result.path is None:
        raise ValueError("the sweep found nothing: there is no plan to apply")
    return f"gladly-pipeline apply {result.path} --approve {result.plan.hash} --execute"


def summarize_sweep(result: SweepResult) -> dict[str, Any]:
    """The flow's result for its sweep: counts, the plan's hash and directory — no data."""
    plan = result.plan
    return {
        "items_scanned": result.scan.items_scanned,
        "items_by_kind": result.scan.items_by_kind(),
        "plan_hash": plan.hash if plan is not None else None,
        "plan_dir": str(result.path) if result.path is not None else None,
        "targets": plan.targets.num_rows if plan is not None else 0,
        "held": result.held,
    }


def publish_sweep(result: SweepResult) -> None:
    """A markdown artifact (counts, plan hash and directory, the command to apply it) and the
    `gladly.sweep.found` event about the plan's hash. Only for a sweep that wrote a plan."""
    plan = result.plan
    if plan is None or result.path is None:
        return
    outcomes = Counter(plan.targets.column("operation").to_pylist())
    by_outcome = ", ".join(f"{op} {n:,}" for op, n in sorted(outcomes.items())) or "none"
    create_markdown_artifact(
        key=SWEEP_ARTIFACT,
        markdown=(
            "# Sensitive data in newly archived items\n\n"
            f"- items scanned: {result.scan.items_scanned:,}\n"
            f"- items found: {found_line(result)}\n"
            f"- by outcome: {by_outcome}\n"
            f"- held by a legal hold (not in the targets): {result.held:,}\n"
            f"- plan hash: `{plan.hash}`\n"
            f"- plan directory: `{result.path}`\n\n"
            "Nothing was changed. Review the plan, then apply it:\n\n"
            f"```\n{apply_command(result)}\n```\n\n"
            "or run the `apply-retention` deployment with `plan_dir` and `approved_plan_hash` "
            "(and `dry_run: false`). Items Gladly's API cannot erase (notes, among others) are "
            "the targets with operation `not_erasable_via_api` in the plan's targets.parquet: "
            "erase those in Gladly; apply erases our archive's copy of every item found.\n"
        ),
        description=f"Sweep plan {plan.hash[:12]}: {found_line(result)}",
    )
    emit_alert(
        SWEEP_FOUND,
        plan.hash,
        {
            "items_by_kind": result.scan.items_by_kind(),
            "targets": plan.targets.num_rows,
            "held": result.held,
            "plan_dir": str(result.path),
        },
    )
