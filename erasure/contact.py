"""One contact of a conversation: which of its items belong to it, read live from Gladly.

Gladly has no endpoint for contacts; items say which contact they belong to only in part. A
chat session, a voice-AI session and a custom-channel session are named by the `sessionId`
their items carry; a phone call or voicemail is its own item (the contact id is the item's id,
as Gladly's redact-calls example uses it). Emails, SMS, WhatsApp, Facebook, Instagram and
Twitter messages carry no contact or thread id at all: named by the id of one of its messages,
such a contact is the run of that channel's messages around it, up to the conversation's next
message on another channel (our reading, not Gladly's: the rehearsal lists every item).

Items that belong to no channel (notes, topic and status changes, customer activities) are the
contact's when they fall inside its span, from its first item to its last (a call: until it
completed). Other contacts' items in the same conversation are never the contact's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gladly_client import GladlyClient
from gladly_client.errors import CustomerMovedError, NotFoundError
from gladly_client.item_models import Item

__all__ = [
    "CALL_TYPES",
    "EXCHANGE_TYPES",
    "TIMELINE_TYPES",
    "Contact",
    "ContactNotFoundError",
    "attachment_ids",
    "contact_of",
    "find_contact",
]

# The contact id of a call or voicemail is the item's own id.
CALL_TYPES = frozenset({"PHONE_CALL", "VOICEMAIL"})
# Message channels whose items carry no contact id: the exchange around the message named.
EXCHANGE_TYPES = frozenset(
    {"EMAIL", "SMS", "WHATSAPP", "FACEBOOK_MESSAGE", "INSTAGRAM_DIRECT", "TWITTER"}
)
# Items of no channel: a contact's when inside its span.
TIMELINE_TYPES = frozenset(
    {"CONVERSATION_NOTE", "TOPIC_CHANGE", "CONVERSATION_STATUS_CHANGE", "CUSTOMER_ACTIVITY"}
)


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


def _end_of(item: Item) -> datetime:
    """When a keyed item ends: a call's completion when Gladly gives it, else its timestamp."""
    content = item.content
    completed = getattr(content, "completed_at", None)
    if isinstance(completed, datetime) and completed > item.timestamp:
        return completed
    return item.timestamp


def _exchange(items: Sequence[Item], at: int) -> list[Item]:
    """The messages of items[at]'s channel around it, up to another channel's message."""
    kind = items[at].content_type
    members = [items[at]]
    for step in (-1, 1):
        n = at + step
        while 0 <= n < len(items):
            other = items[n].content_type
            if other == kind:
                members.append(items[n])
            elif other not in TIMELINE_TYPES:
                break
            n += step
    return sorted(members, key=lambda i: (i.timestamp, i.id))


def contact_of(items: Sequence[Item], contact_id: str) -> tuple[str, list[Item]] | None:
    """(kind, items) of the contact `contact_id` among one conversation's items (in Gladly's
    order), or None when none of them names it. Raises ContactNotFoundError for the id of an
    item that is no contact (a note, a topic change…)."""
    keyed = [i for i in items if _session(i) == contact_id]
    kind = "session"
    if not keyed:
        at = next((n for n, i in enumerate(items) if i.id == contact_id), None)
        if at is None:
            return None
        named = items[at].content_type
        if named in CALL_TYPES:
            keyed, kind = [items[at]], "call"
        elif named in EXCHANGE_TYPES:
            keyed, kind = _exchange(items, at), "exchange"
        else:
            raise ContactNotFoundError(
                f"--contact {contact_id}: names a {named} item, which is no contact (give a "
                "chat session id, a call's id, or the id of a message of the exchange)"
            )
    start = min(i.timestamp for i in keyed)
    end = max(_end_of(i) for i in keyed)
    ids = {i.id for i in keyed}
    members = [
        i
        for i in items
        if i.id in ids or (i.content_type in TIMELINE_TYPES and start <= i.timestamp <= end)
    ]
    return kind, members


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
