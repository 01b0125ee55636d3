"""One conversation's transcript, or a customer's, read from the archive's items for a person."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.archive import Archive
from gladly_archive.keyed import normalise_email
from gladly_archive.transcripts import SOURCE_COLUMNS, line_parts

__all__ = [
    "ConversationTranscript",
    "Line",
    "TranscriptSelection",
    "conversation_transcripts",
    "conversations_of_customers",
    "customers_with_email",
    "read_conversations",
]

# build_transcripts' order within a conversation: time, then item id for simultaneous items.
# What a conversation's header is made of, besides its lines.
_FACT_COLUMNS = [
    "conversation_id",
    "customer_id",
    "initiator_type",
    "agent_id",
    "agent_name",
    "inbox_name",
    "topic_names",
]
_ITEM_ORDER = [
    ("conversation_id", "ascending"),
    ("timestamp", "ascending"),
    ("item_id", "ascending"),
]


class Line(NamedTuple):
    """One transcript line's pieces (gladly_archive.transcripts.line_parts)."""

    stamp: str
    channel: str
    who: str
    body: str
    internal: bool


@dataclass(frozen=True)
class ConversationTranscript:
    """A conversation's lines in time order and what its header says, all from those lines'
    items: the customer of the latest, first and last time, channels and agents in order of
    appearance, inbox and topics from the latest item that has them (None: not known)."""

    conversation_id: str
    customer_id: str
    first: str
    last: str
    channels: tuple[str, ...]
    agents: tuple[str, ...]
    inbox_name: str | None
    topic_names: tuple[str, ...] | None
    lines: tuple[Line, ...]
    notes_left_out: bool


@dataclass(frozen=True)
class TranscriptSelection:
    """The conversations to show, oldest first, and which of those asked for the archive holds
    (a conversation of internal notes only is found but has nothing to show without notes)."""

    conversations: tuple[ConversationTranscript, ...]
    found: frozenset[str]


def customers_with_email(archive: Archive, email: str) -> list[str]:
    """Ids of the customers any of whose archived records lists `email` (both sides compared
    as normalise_email does), sorted. Only the customers' ids and emails are read."""
    wanted = normalise_email(email)
    if not wanted:
        return []
    table = archive.dataset("customers").to_table(columns=["customer_id", "emails"])
    emails = table.column("emails").combine_chunks()
    flat = pc.list_flatten(emails)
    # Python's casefold (normalise_email) on the distinct addresses only: Arrow's lower-casing
    # is not casefolding (ß, ﬁ …), and the same email repeats across export jobs.
    distinct = pc.unique(flat.drop_null()).to_pylist()
    matching = [value for value in distinct if normalise_email(value) == wanted]
    if not matching:
        return []
    rows = pc.list_parent_indices(emails).filter(pc.is_in(flat, value_set=pa.array(matching)))
    ids = pc.take(table.column("customer_id"), rows)
    return sorted(set(ids.to_pylist()))


def conversations_of_customers(archive: Archive, customer_ids: Iterable[str]) -> list[str]:
    """Ids of the conversations holding an item of these customers, sorted."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    table = archive.dataset("items").to_table(
        columns=["conversation_id"],
        filter=pc.field("customer_id").isin(ids) & pc.field("conversation_id").is_valid(),
    )
    return sorted(pc.unique(table.column("conversation_id")).to_pylist())


def read_conversations(
    archive: Archive, conversation_ids: Iterable[str], *, notes: bool = True
) -> TranscriptSelection:
    """The transcripts of these conversations (see conversation_transcripts), read from the
    archive's items with a filter on their ids, and which of them the archive holds."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return TranscriptSelection((), frozenset())
    items = archive.dataset("items").to_table(
        columns=SOURCE_COLUMNS, filter=pc.field("conversation_id").isin(ids)
    )
    found = frozenset(pc.unique(items.column("conversation_id")).to_pylist())
    return TranscriptSelection(conversation_transcripts(items, notes=notes), found)


def conversation_transcripts(
    items: pa.Table, *, notes: bool = True
) -> tuple[ConversationTranscript, ...]:
    """One transcript per conversation of `items` (at least SOURCE_COLUMNS), oldest first (by
    first line, then id), each line made by line_parts so it reads as the `transcripts`
    dataset's line for that item; items without a conversation are left out. Without `notes`,
    internal notes are left out before anything is counted or named, and a conversation of
    notes only is not shown."""
    items = items.filter(pc.is_valid(items.column("conversation_id")))
    if not notes:
        items = items.filter(pc.invert(pc.fill_null(items.column("internal"), False)))
    items = items.sort_by(_ITEM_ORDER).combine_chunks()
    parts = line_parts(items).to_pylist()
    facts = items.select(_FACT_COLUMNS).to_pylist()
    grouped: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for part, fact in zip(parts, facts, strict=True):
        grouped.setdefault(fact["conversation_id"], []).append((part, fact))
    conversations = [
        _conversation(cid, rows, notes_left_out=not notes) for cid, rows in grouped.items()
    ]
    return tuple(sorted(conversations, key=lambda c: (c.first, c.conversation_id)))


def _conversation(
    conversation_id: str,
    rows: list[tuple[dict[str, Any], dict[str, Any]]],
    *,
    notes_left_out: bool,
) -> ConversationTranscript:
    lines = tuple(Line(**part) for part, _ in rows)
    facts = [fact for _, fact in rows]
    agents = (
        fact["agent_name"] or f"Agent {fact['agent_id']}"
        for fact in facts
        if fact["initiator_type"] == "AGENT" and (fact["agent_name"] or fact["agent_id"])
    )
    inbox = _latest(fact["inbox_name"] for fact in facts)
    topics = _latest(fact["topic_names"] for fact in facts)
    return ConversationTranscript(
        conversation_id=conversation_id,
        customer_id=facts[-1]["customer_id"],
        first=lines[0].stamp,
        last=lines[-1].stamp,
        channels=tuple(dict.fromkeys(line.channel for line in lines)),
        agents=tuple(dict.fromkeys(agents)),
        inbox_name=inbox,
        topic_names=None if topics is None else tuple(topics),
        lines=lines,
        notes_left_out=notes_left_out,
    )


def _latest(values: Iterable[Any]) -> Any:
    """The last value that is not None (an empty topic list is known: no topics)."""
    last = None
    for value in values:
        if value is not None:
            last = value
    return last
