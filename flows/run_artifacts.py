"""What a deletion run publishes in Prefect: counts per outcome and where the evidence is."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from audit_log import outcomes as o
from audit_log.outcomes import RunReport
from flows.alerts import ERASURE_FAILED, emit_alert

__all__ = ["publish_run", "summarize_run"]


def summarize_run(report: RunReport) -> dict[str, Any]:
    """The flow's result: ids, counts and flags — no personal data."""
    return {
        "run_id": report.run_id,
        "plan_hash": report.plan_hash,
        "dry_run": report.dry_run,
        "ok": report.ok,
        "needs_attention": report.needs_attention,
        "outcomes": report.counts(),
        "resumed": report.resumed,
        "api_calls": report.api_calls,
        "tombstoned": report.tombstoned,
        "purge": report.purge,
        "audit_chain_ok": report.chain_ok,
        "audit_chain_last_hash": report.chain_last_hash,
    }


def publish_run(report: RunReport, key: str) -> None:
    """A table of outcomes and a short markdown note, under artifact `key`."""
    counts = report.counts()
    failed = counts.get(o.FAILED, 0) + counts.get(o.VERIFY_FAILED, 0)
    if failed:
        emit_alert(
            ERASURE_FAILED,
            report.run_id,
            {"flow": key, "plan_hash": report.plan_hash, "failed": failed, "outcomes": counts},
        )
    rows: list[dict[str, Any]] = [
        {"outcome": outcome, "targets": count} for outcome, count in counts.items()
    ] or [{"outcome": "no targets", "targets": 0}]
    mode = "rehearsal: nothing was changed" if report.dry_run else "executed"
    create_table_artifact(
        table=rows,
        key=key,
        description=f"Run {report.run_id} of plan {report.plan_hash} ({mode}).",
    )
    removed = sum(report.purge.get("rows_removed", {}).values()) if report.purge else 0
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=(
            f"### Deletion run `{report.run_id}` ({mode})\n\n"
            f"- plan hash: `{report.plan_hash}`\n"
            f"- targets finished by an earlier run: {report.resumed}\n"
            f"- API calls: {report.api_calls or 'none'}\n"
            f"- tombstones written: {report.tombstoned}; archive rows purged: {removed}\n"
            f"- audit chain: {'holds' if report.chain_ok else 'BROKEN'}; newest hash "
            f"`{report.chain_last_hash}` (keep it: it proves later that no run was removed)\n"
        ),
        description="Deletion run summary",
    )
