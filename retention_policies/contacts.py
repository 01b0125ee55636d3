"""Contacts: which items of one conversation make up each contact, by one rule for all callers.

Gladly has no endpoint for contacts and its items say which contact they belong to only in
part. The planner applies this rule to the archive's item rows, the deletion engine to
Gladly's live list, `delete --contact` to resolve the id it is given; one rule, so what a
policy selects is what the engine finds again.

- A chat, voice-AI or custom-channel session is named by the `sessionId` its items carry.
- A phone call or voicemail is its own item: the contact id is the item's id (as Gladly's
  redact-calls example uses it).
- Emails, SMS, WhatsApp, Facebook, Instagram and Twitter messages carry no contact or thread
  id: a contact of theirs is the run of that channel's messages, up to the conversation's next
  message on another channel (our reading, not Gladly's). Named by the id of any of its
  messages; its canonical id is its first message's.
- Items of no channel (notes, topic and status changes, customer activities) are a contact's
  when they fall inside its span, from its first item to its last (a call: until it
  completed); two contacts' spans may share one. Other contacts' items are never its own.

Items are taken in time order (then by id), whatever order the caller had them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "CALL_TYPES",
    "EXCHANGE_TYPES",
    "TIMELINE_TYPES",
    "ContactGroup",
    "ContactItem",
    "NotAContactError",
    "contact_of",
    "contacts_in",
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


class NotAContactError(ValueError):
    """An item id that names no contact (a note, a topic change, a message of no session)."""

    def __init__(self, item_id: str, content_type: str) -> None:
        self.item_id = item_id
        self.content_type = content_type
        super().__init__(f"item {item_id} is a {content_type} item, which is no contact")


@dataclass(frozen=True)
class ContactItem:
    """What the rule reads of one item: its id, type, time, session and (a call's) end."""

    item_id: str
    content_type: str
    timestamp: datetime
    session_id: str | None = None
    ended_at: datetime | None = None  # a call's completion, when known

    @property
    def end(self) -> datetime:
        """When the item ends: a call's completion when later than its start, else its time."""
        if self.ended_at is not None and self.ended_at > self.timestamp:
            return self.ended_at
        return self.timestamp


@dataclass(frozen=True)
class ContactGroup:
    """One contact: its canonical id, how it is named, the items naming it and all its items.

    ```python
    group = contact_of(items, "BHJUE3Xc_8qmr9d9mUyWXA")
    [i.item_id for i in group.members]
    ```
    """

    contact_id: str
    kind: str  # session | call | exchange
    keyed: tuple[ContactItem, ...]  # the messages, call or session items that make it up
    members: tuple[ContactItem, ...]  # keyed + the timeline items inside its span, in order

    @property
    def channels(self) -> list[str]:
        """The content types of its keyed items, sorted."""
        return sorted({i.content_type for i in self.keyed})

    @property
    def started_at(self) -> datetime:
        """Its first item's time."""
        return min(i.timestamp for i in self.members)

    @property
    def last_activity(self) -> datetime:
        """Its last item's time."""
        return max(i.timestamp for i in self.members)


def _ordered(items: Sequence[ContactItem]) -> list[ContactItem]:
    return sorted(items, key=lambda i: (i.timestamp, i.item_id))


def _exchange(items: Sequence[ContactItem], at: int) -> list[ContactItem]:
    """The messages of items[at]'s channel around it, up to another channel's message (a
    message carrying a session belongs to that session: it ends the run too)."""
    kind = items[at].content_type
    members = [items[at]]
    for step in (-1, 1):
        n = at + step
        while 0 <= n < len(items):
            other = items[n]
            if other.content_type == kind and other.session_id is None:
                members.append(other)
            elif other.content_type not in TIMELINE_TYPES or other.session_id is not None:
                break
            n += step
    return _ordered(members)


def _group(
    items: Sequence[ContactItem], contact_id: str, kind: str, keyed: Sequence[ContactItem]
) -> ContactGroup:
    start = min(i.timestamp for i in keyed)
    end = max(i.end for i in keyed)
    ids = {i.item_id for i in keyed}
    members = [
        i
        for i in items
        if i.item_id in ids or (i.content_type in TIMELINE_TYPES and start <= i.timestamp <= end)
    ]
    return ContactGroup(contact_id, kind, tuple(_ordered(keyed)), tuple(members))


def contact_of(items: Sequence[ContactItem], contact_id: str) -> ContactGroup | None:
    """The contact `contact_id` among one conversation's items, or None when none of them
    names it. A session is named by its session id; a call by its id; an exchange by the id
    of any of its messages (the group carries its canonical id, its first message's).

    Raises NotAContactError for the id of an item that is no contact."""
    ordered = _ordered(items)
    keyed = [i for i in ordered if i.session_id == contact_id]
    if keyed:
        return _group(ordered, contact_id, "session", keyed)
    at = next((n for n, i in enumerate(ordered) if i.item_id == contact_id), None)
    if at is None:
        return None
    named = ordered[at]
    if named.session_id is None and named.content_type in CALL_TYPES:
        return _group(ordered, named.item_id, "call", [named])
    if named.session_id is None and named.content_type in EXCHANGE_TYPES:
        run = _exchange(ordered, at)
        return _group(ordered, run[0].item_id, "exchange", run)
    raise NotAContactError(named.item_id, named.content_type)


def contacts_in(items: Sequence[ContactItem]) -> list[ContactGroup]:
    """Every contact of one conversation's items, each once, in order of its first item.

    `contact_of(items, group.contact_id)` gives each of them back (the rule is the same)."""
    ordered = _ordered(items)
    found: list[ContactGroup] = []
    seen_sessions: set[str] = set()
    in_run: set[str] = set()
    for at, item in enumerate(ordered):
        if item.session_id is not None:
            if item.session_id not in seen_sessions:
                seen_sessions.add(item.session_id)
                keyed = [i for i in ordered if i.session_id == item.session_id]
                found.append(_group(ordered, item.session_id, "session", keyed))
        elif item.content_type in CALL_TYPES:
            found.append(_group(ordered, item.item_id, "call", [item]))
        elif item.content_type in EXCHANGE_TYPES and item.item_id not in in_run:
            run = _exchange(ordered, at)
            in_run.update(i.item_id for i in run)
            found.append(_group(ordered, run[0].item_id, "exchange", run))
    return found
