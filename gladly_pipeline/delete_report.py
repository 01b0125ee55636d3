"""What a contact's erasure left in Gladly, said by ids: the items and attachments kept."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape

from audit_log.outcomes import DRY_RUN, ITEM_DELETED, NOT_ERASABLE, REDACTED, RunReport
from retention_policies.plan import Plan

__all__ = ["print_kept_items"]

# Lines of kept items shown; the audit log and the plan hold every one.
SHOWN = 20


def print_kept_items(console: Console, plan: Plan, report: RunReport) -> None:
    """For a contact's erasure: each item the API cannot erase, by customer, conversation and
    item id (Gladly documents no link into its UI, so the ids are how to find it there), and
    how many attachments went with their items or stay."""
    rows = [r for r in plan.targets.to_pylist() if r["action"] == "erase_contact"]
    if not rows:
        return
    where = {r["target_id"]: r for r in rows}
    attachments = {
        r["target_id"]: json.loads(r["matched_facts_json"] or "{}").get("attachments") or []
        for r in rows
    }
    kept = [o for o in report.outcomes if o.outcome == NOT_ERASABLE and o.target_id in where]
    for one in kept[:SHOWN]:
        row = where[one.target_id]
        count = len(attachments.get(one.target_id, []))
        extra = f", {count} attachment(s) with it" if count else ""
        console.print(
            f"[yellow]not erasable via the API[/yellow] {escape(row['content_type'] or '')} "
            f"item {one.target_id} (customer {row['customer_id']}, conversation "
            f"{row['conversation_id']}{extra}): remove it in Gladly if it must go"
        )
    if len(kept) > SHOWN:
        console.print(f"… and {len(kept) - SHOWN} more kept item(s), listed in the audit log")
    gone = sum(
        len(attachments.get(o.target_id, []))
        for o in report.outcomes
        if o.outcome in (REDACTED, ITEM_DELETED)
    )
    would = sum(
        len(attachments.get(o.target_id, [])) for o in report.outcomes if o.outcome == DRY_RUN
    )
    total = sum(len(a) for a in attachments.values())
    if total:
        verb = (
            f"{would} would go with their items"
            if report.dry_run
            else f"{gone} erased with their items by this run"
        )
        console.print(f"attachments of the contact: {total}; {verb} (ids in the audit log)")
