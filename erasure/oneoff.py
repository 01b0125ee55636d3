"""One-off deletions resolved into a plan: a data subject's erasure request, an item, a contact.

A checked request (erasure.request) is resolved read-only through the API — and through the
audit log's memory of earlier attempts of the same request — into a plan of the same shape
policies produce, which the same engine executes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audit_log.outcomes import ONE_OFF_POLICY
from erasure.contact import ContactNotFoundError, attachment_ids, find_contact
from erasure.remembered import remembered_contact_rows
from erasure.request import Identifier, OneOffRequest, request_hash
from erasure.request_metadata import audited_metadata
from erasure.subjects import Subjects
from gladly_client import GladlyClient
from gladly_client.errors import CustomerMovedError, NotFoundError
from gladly_client.item_models import Item
from retention_policies.holds import HoldRegistry
from retention_policies.plan import TARGET_SCHEMA, Plan
from retention_policies.vocab import DELETABLE_TYPES, REDACTABLE_TYPES

__all__ = ["OneOffPlan", "build_oneoff_plan", "earlier_customers"]

POLICY_NAME = ONE_OFF_POLICY
UNMATCHED = "not_found"  # the operation of a target that names an identifier matching no one
_ACTIONS = {"profile": "delete_customer", "conversations": "erase_conversation"}
_ACTIONS["items"] = "redact_items"
_ACTIONS["contact"] = "erase_contact"


@dataclass
class OneOffPlan:
    """The plan, plus what could not be resolved and the live profiles seen (for holds)."""

    plan: Plan
    not_found: list[str]
    subjects: Subjects


def _subject_hash(registry: HoldRegistry, subject: Identifier) -> str | None:
    if subject.kind == "email":
        return registry.hash_email(subject.value)
    if subject.kind == "phone":
        return registry.hash_phone(subject.value)
    return None


def earlier_customers(history: pa.Table, request_id: str) -> dict[str, str | None]:
    """Customers earlier runs of this request targeted (rehearsals too: they resolved the same
    identifiers), with the subject hash of the identifier that named each. After a deletion
    Gladly finds nobody by that email any more: this is how a rerun still knows whom it meant."""
    if history.num_rows == 0:
        return {}
    rows = history.filter(
        pc.and_(
            pc.and_(
                pc.equal(history.column("policy_name"), POLICY_NAME),
                pc.equal(history.column("policy_hash"), request_id),
            ),
            pc.equal(history.column("target_type"), "customer"),
        )
    ).select(["target_id", "subject_hash"])
    found: dict[str, str | None] = {}
    for row in rows.to_pylist():
        if row["target_id"] and not str(row["target_id"]).startswith(_UNMATCHED_PREFIX):
            found[row["target_id"]] = found.get(row["target_id"]) or row["subject_hash"]
    return found


_UNMATCHED_PREFIX = "unmatched-"


def build_oneoff_plan(
    request: OneOffRequest,
    client: GladlyClient,
    *,
    key: bytes,
    now: datetime,
    history: pa.Table | None = None,
) -> OneOffPlan:
    """Resolve the request through the API (read-only) into a plan for the engine.

    Its identity is `request_hash`: with the audit log's `history`, customers an earlier run
    of the same request targeted stay targets even when Gladly no longer finds them by email
    or phone (deleted by that run). An identifier that matches no one now and never did is a
    target of its own whose outcome is `not_found`. A contact that does not resolve among the
    customers' conversations stops here (erasure.contact.ContactNotFoundError), unless an
    earlier run of the same request finished every item of it (erasure.remembered)."""
    registry = HoldRegistry.empty(key=key)
    request_id = request_hash(request, key)
    earlier = (
        earlier_customers(history, request_id)
        if history is not None and request.scope == "profile"
        else {}
    )
    subjects = Subjects()
    not_found: list[str] = []
    customers: dict[str, str | None] = {}  # customer id → subject hash of who asked
    unmatched: dict[str, str] = {}  # subject hash → where the identifier was given
    for subject in request.subjects:
        shash = _subject_hash(registry, subject)
        if subject.kind == "customer_id":
            customers.setdefault(subject.value, None)
            continue
        email = subject.value if subject.kind == "email" else None
        phone = subject.value if subject.kind == "phone" else None
        found = client.customers.find(email=email, phone=phone)
        for profile in found:
            subjects.add_profile(profile)
            customers[profile.id] = shash
        before = [cid for cid, h in earlier.items() if h == shash]
        for cid in before:
            customers.setdefault(cid, shash)
        if not found and not before and shash is not None:
            unmatched[shash] = subject.where
            not_found.append(f"{subject.where}: no Gladly profile, now or for an earlier attempt")
    rows: list[dict[str, Any]] = []
    action = _ACTIONS[request.scope]
    head = {"policy_name": POLICY_NAME, "policy_hash": request_id, "action": action}
    for shash in sorted(unmatched):
        pseudo = f"{_UNMATCHED_PREFIX}{shash[:24]}"
        rows.append(_row(head, "customer", pseudo, None, None, UNMATCHED, False, shash))
    if request.scope == "profile":
        for cid, shash in sorted(customers.items()):
            rows.append(_row(head, "customer", cid, cid, None, "delete_customer", True, shash))
            rows[-1]["close_open_conversations"] = request.close_open_conversations
    elif request.scope == "conversations":
        for cid, shash in sorted(customers.items()):
            rows.extend(_conversation_rows(client, head, cid, shash, not_found))
    elif request.scope == "contact":
        for contact_id in request.contact_ids:
            try:
                contact = find_contact(client, customers, contact_id)
            except ContactNotFoundError as exc:
                # Gone from Gladly's view (a session id dropped by the redaction of an earlier
                # run of this request): what that run finished is still the request's.
                rows.extend(
                    remembered_contact_rows(
                        head, history, request_id, contact_id, exc, len(request.contact_ids)
                    )
                )
                continue
            shash = customers.get(contact.customer_id)
            facts = {"contact": contact.contact_id, "contact_kind": contact.kind}
            rows.extend(_item_row(head, item, shash, facts) for item in contact.items)
    else:
        for item_id in request.item_ids:
            rows.extend(_item_rows(client, head, item_id, customers, not_found))
    targets = pa.Table.from_pylist(rows, schema=TARGET_SCHEMA)
    policy = {
        "name": POLICY_NAME,
        "version_hash": request_id,
        "resource": {"profile": "customer", "conversations": "conversation"}.get(
            request.scope, "item"
        ),
        "action": action,
        "enabled": True,
        "status": "planned",
        "reason": request.reason or None,
        "population": len(customers),
        "matched": targets.num_rows,
        "held": 0,
        "eligible": targets.num_rows,
    }
    if request.metadata:
        # The request file's other columns, as keyed hashes (the reason as given when kept):
        # the engine audits them with the request's identity; they are not part of it.
        policy["metadata"] = audited_metadata(request.metadata, key)
    plan = Plan(
        now=now,
        targets=targets,
        held=TARGET_SCHEMA.empty_table(),
        policies=[policy],
        holds_hash=registry.hash,
    )
    return OneOffPlan(plan, not_found, subjects)


def _row(
    head: dict[str, Any],
    target_type: str,
    target_id: str,
    customer_id: str | None,
    conversation_id: str | None,
    operation: str,
    erasable: bool,
    subject_hash: str | None,
    content_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    facts: dict[str, Any] = {"subject_hash": subject_hash} if subject_hash else {}
    facts.update(extra or {})
    return {
        **head,
        "target_type": target_type,
        "target_id": target_id,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "operation": operation,
        "erasable": erasable,
        "content_type": content_type,
        "close_open_conversations": False,
        "matched_facts_json": json.dumps(facts, sort_keys=True),
        "excluded_by_holds": [],
    }


def _operation(content_type: str) -> str:
    if content_type in REDACTABLE_TYPES:
        return "redact"
    if content_type in DELETABLE_TYPES:
        return "delete"
    return "not_erasable_via_api"


def _item_row(
    head: dict[str, Any], item: Item, shash: str | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The item's row; its attachments' ids ride in its facts (they go with the item)."""
    op = _operation(item.content_type)
    facts = dict(extra or {})
    attachments = attachment_ids(item)
    if attachments:
        facts["attachments"] = attachments
    return _row(
        head,
        "item",
        item.id,
        item.customer_id,
        item.conversation_id,
        op,
        op != "not_erasable_via_api",
        shash,
        item.content_type,
        facts,
    )


def _conversation_rows(
    client: GladlyClient,
    head: dict[str, Any],
    customer_id: str,
    shash: str | None,
    not_found: list[str],
) -> list[dict[str, Any]]:
    try:
        listed = client.conversations.list_for_customer(customer_id)
    except (NotFoundError, CustomerMovedError):
        not_found.append(f"customer {customer_id}: no Gladly profile under this id")
        return []
    rows = []
    if listed.truncated:
        not_found.append(f"customer {customer_id}: more than 100 conversations; only 100 planned")
    for conversation in listed.conversations:
        rows.append(
            _row(
                head,
                "conversation",
                conversation.id,
                customer_id,
                conversation.id,
                "not_erasable_via_api",
                False,
                shash,
            )
        )
        items = client.items.list_for_conversation(conversation.id)
        if items.truncated:
            not_found.append(f"conversation {conversation.id}: more than 1000 items listed")
        rows.extend(_item_row(head, item, shash) for item in items)
    return rows


def _item_rows(
    client: GladlyClient,
    head: dict[str, Any],
    item_id: str,
    customers: dict[str, str | None],
    not_found: list[str],
) -> list[dict[str, Any]]:
    try:
        item = client.items.get(item_id)
    except NotFoundError:
        not_found.append(f"item {item_id}: not found in Gladly")
        return []
    if customers and item.customer_id not in customers:
        not_found.append(f"item {item_id}: belongs to none of the customers named; left alone")
        return []
    return [_item_row(head, item, customers.get(item.customer_id))]
