"""What the audit log remembers of a one-off contact request whose contact Gladly no longer shows.

Redaction may take away what named the contact (a chat session's id, undocumented either way),
so a rerun of a finished request can find nothing live. The request is the same (its keyed
hash); the items an earlier run of it finished are its targets still, and the engine, seeing
them finished, leaves them alone and says the request is done.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import outcomes as o
from erasure.contact import ContactNotFoundError

__all__ = ["REMEMBERED_OPERATIONS", "remembered_contact_rows"]

# The operation a finished outcome shows was asked for; other final outcomes (held, already
# absent, skipped…) called nothing that names one.
REMEMBERED_OPERATIONS = {
    o.REDACTED: "redact",
    o.ITEM_DELETED: "delete",
    o.NOT_ERASABLE: "not_erasable_via_api",
}
FINISHED_EARLIER = "finished_earlier"


def _item_outcomes(history: pa.Table | None, request_id: str) -> dict[str, dict[str, Any]]:
    """Item targets of the request in runs that acted (rehearsals never count): per item, its
    customer and its final outcome (None while it has none)."""
    if history is None or history.num_rows == 0:
        return {}
    mine = history.filter(
        pc.and_(
            pc.and_(
                pc.equal(history.column("policy_name"), o.ONE_OFF_POLICY),
                pc.equal(history.column("policy_hash"), request_id),
            ),
            pc.equal(history.column("target_type"), "item"),
        )
    )
    dry = o.rehearsal_runs(history)
    found: dict[str, dict[str, Any]] = {}
    for event in mine.to_pylist():
        if event["run_id"] in dry:
            continue
        seen = found.setdefault(event["target_id"], {"customer_id": None, "outcome": None})
        seen["customer_id"] = seen["customer_id"] or event["customer_id"]
        if event["step"] == "outcome" and event["outcome"] in o.FINAL_OUTCOMES:
            seen["outcome"] = seen["outcome"] or event["outcome"]
    return found


def remembered_contact_rows(
    head: dict[str, Any],
    history: pa.Table | None,
    request_id: str,
    contact_id: str,
    not_found: ContactNotFoundError,
    contacts: int,
) -> list[dict[str, Any]]:
    """The request's item targets as earlier runs finished them (TARGET_SCHEMA rows), when
    Gladly no longer shows its one contact; else `not_found` is raised again.

    Only for a request naming one contact (the log does not say which of several an item
    was; `contacts` is how many it names), and only when every item those runs reached has a
    final outcome: the engine calls nothing for them, so nothing is acted on that was not
    resolved live before."""
    items = _item_outcomes(history, request_id)
    if contacts != 1 or not items:
        raise not_found
    unfinished = sorted(i for i, seen in items.items() if seen["outcome"] is None)
    if unfinished:
        raise ContactNotFoundError(
            f"{not_found}; an earlier run of this request reached {len(items)} of its items "
            f"but did not finish {len(unfinished)}: their contact must be found to finish them"
        )
    facts = json.dumps({"contact": contact_id, "remembered": True}, sort_keys=True)
    return [
        {
            **head,
            "target_type": "item",
            "target_id": item_id,
            "customer_id": seen["customer_id"],
            "conversation_id": None,
            "operation": REMEMBERED_OPERATIONS.get(seen["outcome"], FINISHED_EARLIER),
            "erasable": seen["outcome"] in (o.REDACTED, o.ITEM_DELETED),
            "content_type": None,
            "close_open_conversations": False,
            "matched_facts_json": facts,
            "excluded_by_holds": [],
        }
        for item_id, seen in sorted(items.items())
    ]
