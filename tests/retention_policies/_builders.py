"""Small fact tables and policies for the evaluate / plan tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from retention_policies.facts import (
    CONVERSATION_FACTS,
    CUSTOMER_FACTS,
    ITEM_FACTS,
    LOOKUP,
    Tables,
)
from retention_policies.holds import Hold, HoldRegistry
from retention_policies.model import Policy

NOW = datetime(2025, 6, 1, tzinfo=UTC)
KEY = b"test-audit-key"
REDACTABLE = {"CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "VOICEMAIL", "WHATSAPP", "TWITTER"}


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def customer(cid: str, last: float, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "customer_id": cid,
        "last_activity": days_ago(last),
        "first_activity": days_ago(last + 10),
        "conversation_count": 1,
        "item_count": 2,
        "has_open_conversation": False,
        "emails": [],
        "phones": [],
        "custom_attributes": None,
        "channels": [],
        "inbox_ids": [],
        "topic_ids": [],
        "conversation_statuses": [],
    }
    row.update(kw)
    return row


def conversation(vid: str, cid: str, closed: float | None, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "conversation_id": vid,
        "customer_id": cid,
        "created_at": days_ago(1000),
        "last_activity": days_ago(closed if closed is not None else 1),
        "closed_at": days_ago(closed) if closed is not None else None,
        "status": "CLOSED" if closed is not None else "OPEN",
        "inbox_id": "inbox-1",
        "topic_ids": [],
        "channels": ["EMAIL"],
        "item_count": 1,
        "custom_attributes": None,
    }
    row.update(kw)
    return row


def item(iid: str, vid: str | None, cid: str, age: float, ctype: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "item_id": iid,
        "conversation_id": vid,
        "customer_id": cid,
        "timestamp": days_ago(age),
        "content_type": ctype,
        "initiator_type": "CUSTOMER",
        "has_attachments": False,
        "recording_status": None,
        "redactable": ctype in REDACTABLE,
        "deletable": ctype == "CUSTOMER_ACTIVITY",
    }
    row.update(kw)
    return row


def tables(
    customers: list[dict[str, Any]],
    conversations: list[dict[str, Any]] | None = None,
    items: list[dict[str, Any]] | None = None,
    inboxes: list[dict[str, Any]] | None = None,
    topics: list[dict[str, Any]] | None = None,
) -> Tables:
    return Tables.from_arrow(
        customers=pa.Table.from_pylist(customers, schema=CUSTOMER_FACTS),
        conversations=pa.Table.from_pylist(conversations or [], schema=CONVERSATION_FACTS),
        items=pa.Table.from_pylist(items or [], schema=ITEM_FACTS),
        inboxes=pa.Table.from_pylist(inboxes or [], schema=LOOKUP),
        topics=pa.Table.from_pylist(topics or [], schema=LOOKUP),
    )


_ACTIONS = {
    "customer": {"type": "delete_customer"},
    "conversation": {"type": "erase_conversation"},
    "contact": {"type": "erase_contact"},
    "item": {"type": "redact_items"},
}


def policy(
    resource: str, filters: list[dict[str, Any]], name: str = "test-policy", **kw: Any
) -> Policy:
    data: dict[str, Any] = {
        "name": name,
        "description": "test",
        "resource": resource,
        "filters": filters,
        "actions": [kw.pop("action", _ACTIONS[resource])],
        # Filter tests are about what matches: the default limits (tested on their own) stay off.
        "limits": {"max_percent": 100, "max_targets": 10_000_000},
    }
    data.update(kw)
    return Policy.model_validate(data)


def registry(*holds: tuple[str, str], ends_on: Any = None) -> HoldRegistry:
    return HoldRegistry(
        tuple(
            Hold(kind=k, value=v, reason="litigation", reference=f"LEGAL-{i}", ends_on=ends_on)
            for i, (k, v) in enumerate(holds)
        ),
        KEY,
    )
