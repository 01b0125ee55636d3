"""Legal holds over the sweep's findings: which found items a hold protects, as plans say it."""

# The SQL here is a constant; every value is a bound parameter.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from retention_policies.facts import Progress
from retention_policies.facts_cache import facts_tables
from retention_policies.hold_tables import hold_rows, prepare_holds
from retention_policies.holds import UNEVALUABLE, HoldRegistry
from retention_policies.references import References

__all__ = ["SweepHolds", "sweep_holds"]

_FOUND = pa.schema(
    [
        ("item_id", pa.string()),
        ("customer_id", pa.string()),
        ("conversation_id", pa.string()),
    ]
)

# The planner's rule for an item (evaluate._HOLD_JOIN["item"]): its conversation's holds
# (the conversation's id, inbox, topics, and its customer's), else its customer's. Here also
# its customer's when it has a conversation, and the customer and conversation as the item
# names them (a merged or not-yet-known id): for a finding, holding too much costs nothing.
_LABELS_SQL = """
SELECT f.item_id, list_sort(list_distinct(flatten([
        coalesce(hc.labels, []), coalesce(hd.labels, []), coalesce(hr.labels, []),
        coalesce(hv.labels, []),
        CASE WHEN i.item_id IS NULL OR (v.conversation_id IS NULL
            AND f.conversation_id IS NOT NULL) THEN coalesce(hu.labels, []) ELSE [] END
    ]))) AS labels
FROM _found f
LEFT JOIN items i ON i.item_id = f.item_id
LEFT JOIN conversations v ON v.conversation_id = f.conversation_id
LEFT JOIN _held_conversation hc ON hc.id = f.conversation_id
LEFT JOIN _held_customer_direct hd ON hd.id = coalesce(i.customer_id, f.customer_id)
LEFT JOIN (SELECT value AS id, list(label) AS labels FROM _holds
           WHERE kind = 'customer_id' GROUP BY value) hr ON hr.id = f.customer_id
LEFT JOIN (SELECT value AS id, list(label) AS labels FROM _holds
           WHERE kind = 'conversation_id' GROUP BY value) hv ON hv.id = f.conversation_id
CROSS JOIN (SELECT list(label || ?) AS labels FROM _holds WHERE kind = 'inbox') hu
"""


@dataclass(frozen=True)
class SweepHolds:
    """The hold registry a sweep planned with, and the found items its holds protect."""

    registry: HoldRegistry
    held: Mapping[str, list[str]]  # item id → labels (`kind=value [reference]`)


def sweep_holds(
    root: str,
    holds_path: str | Path,
    key: bytes,
    found: pa.Table,
    now: datetime,
    *,
    progress: Progress | None = None,
) -> SweepHolds:
    """Load the holds (inbox and topic names checked against the archive's, as `plan` checks
    them: an unknown name is refused with the valid ones) and find which items of `found`
    (item_id, customer_id, conversation_id) an active hold protects.

    Decided on the planner's fact tables, as a retention plan's holds are. A hold that cannot
    be evaluated holds (labelled UNEVALUABLE), and so does an inbox hold over an item whose
    conversation the fact tables do not know: when unsure, the item stays."""
    tables, _ = facts_tables(root, progress=progress)
    con = tables.con.cursor()
    try:
        references = References.from_connection(con)
        registry = HoldRegistry.load(holds_path, key=key, references=references)
        active = registry.active(now)
        if not active or not found.num_rows:
            return SweepHolds(registry, {})
        con.execute("SET TimeZone='UTC'")
        prepare_holds(con, hold_rows(active, references.lookups()), registry.key)
        con.register("_found", found.select(_FOUND.names).cast(_FOUND))
        rows = con.execute(_LABELS_SQL, [UNEVALUABLE]).fetchall()
    finally:
        con.close()
        tables.con.close()
    return SweepHolds(registry, {str(item): list(labels) for item, labels in rows if labels})
