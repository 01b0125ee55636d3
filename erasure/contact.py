"""One contact of a conversation: which of its items belong to it, read live from Gladly.

The rule is retention_policies.contacts' (the planner applies the same one to the archive):
a chat, voice-AI or custom-channel session is named by its `sessionId`; a phone call or
voicemail is its own item; an email, SMS, WhatsApp, Facebook, Instagram or Twitter exchange is
that channel's run of messages around the one named, up to another channel's message (our
reading, not Gladly's: the rehearsal lists every item); notes, topic and status changes and
customer activities inside a contact's span are its too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gladly_client import GladlyClient
from gladly_client.errors import CustomerMovedError, NotFoundError
from gladly_client.item_models import Item
from retention_policies.contacts import (
    CALL_TYPES,
    EXCHANGE_TYPES,
    TIMELINE_TYPES,
    ContactItem,
    NotAContactError,
)
from retention_policies.contacts import contact_of as group_of

__all__ = [
    "CALL_TYPES",
    "EXCHANGE_TYPES",
    "TIMELINE_TYPES",
    "Contact",
    "ContactNotFoundError",
    "attachment_ids",
    "contact_item",
    "contact_of",
    "find_contact",
]


class ContactNotFoundError(ValueError):
    """A contact id that resolves to no contact of the customers named; nothing was changed."""


@dataclass(frozen=True)
class Contact:
    """A resolved contact: how it was named (session, call, exchange) and its items, in order."""

    contact_id: str
    conversation_id: str
    customer_id: str
    kind: str  # session | call | exchange
    items: tuple[Item, ...]


def _session(item: Item) -> str | None:
    content = item.raw.get("content") or {}
    found = item.session_id or item.raw.get("sessionId") or content.get("sessionId")
    return str(found) if found else None


def attachment_ids(item: Item) -> list[str]:
    """The ids of the item's attachments, as Gladly lists them now."""
    content = item.raw.get("content") or {}
    listed: list[Any] = content.get("attachments") or []
    return [str(a["id"]) for a in listed if isinstance(a, dict) and a.get("id")]


def contact_item(item: Item) -> ContactItem:
    """What the contact rule reads of a live item."""
    completed = getattr(item.content, "completed_at", None)
    return ContactItem(
        item.id,
        item.content_type,
        item.timestamp,
        _session(item),
        completed if isinstance(completed, datetime) else None,
    )


def contact_of(items: Sequence[Item], contact_id: str) -> tuple[str, list[Item]] | None:
    """(kind, items) of the contact `contact_id` among one conversation's items, or None when
    none of them names it. Raises ContactNotFoundError for the id of an item that is no
    contact (a note, a topic change…)."""
    try:
        group = group_of([contact_item(i) for i in items], contact_id)
    except NotAContactError as exc:
        raise ContactNotFoundError(
            f"--contact {contact_id}: names a {exc.content_type} item, which is no contact (give "
            "a chat session id, a call's id, or the id of a message of the exchange)"
        ) from None
    if group is None:
        return None
    by_id = {i.id: i for i in items}
    return group.kind, [by_id[m.item_id] for m in group.members]


def find_contact(client: GladlyClient, customer_ids: Iterable[str], contact_id: str) -> Contact:
    """The contact among the live conversations of the customers named (read-only calls).

    Stops with ContactNotFoundError when no conversation of theirs holds it, or when Gladly
    cut a list short (the contact could be in the part not sent: not provable)."""
    for customer_id in sorted(set(customer_ids)):
        try:
            listed = client.conversations.list_for_customer(customer_id)
        except (NotFoundError, CustomerMovedError):
            continue
        for conversation in listed.conversations:
            items = client.items.list_for_conversation(conversation.id)
            found = contact_of(items.items, contact_id)
            if found is None:
                if items.truncated:
                    raise ContactNotFoundError(
                        f"--contact {contact_id}: conversation {conversation.id} has more "
                        "than 1000 items and Gladly sent only 1000; the contact cannot be proven"
                    )
                continue
            kind, members = found
            if items.truncated:
                raise ContactNotFoundError(
                    f"--contact {contact_id}: conversation {conversation.id} has more than "
                    "1000 items; the contact's items cannot all be listed"
                )
            return Contact(contact_id, conversation.id, customer_id, kind, tuple(members))
        if listed.truncated:
            raise ContactNotFoundError(
                f"--contact {contact_id}: customer {customer_id} has more than 100 "
                "conversations and Gladly sent only 100; the contact cannot be proven"
            )
    raise ContactNotFoundError(
        f"--contact {contact_id}: no conversation of the customer(s) named holds this contact; "
        "nothing was changed (check the id, and that --customer-id/--email names its customer)"
    )
