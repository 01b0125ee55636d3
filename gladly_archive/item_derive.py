"""The item columns derived from what Gladly sent and what the archive knows: readable channel,
internal flag, the agent and the names of agent, inbox and topics, plain text.

Converters (convert_fast, convert_fallback) read Gladly's JSON into CONVERTED_ITEMS; this module
turns such batches into ITEMS. Names come from a ``ReferenceNames`` snapshot taken when the rows
are written: the export job's own agents and topics files first, else the archive's newest
listings; a conversation's inbox and topics from the conversation facts enrichment fetched
(NULL until it has). Gladly keeps no history of names, so names are as known at writing time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.item_text import plain_text_rows, replace_rows
from gladly_archive.schemas import CONVERTED_ITEMS, ITEMS

__all__ = [
    "CHANNELS",
    "ReferenceNames",
    "derive_items",
    "name_map",
    "newest_by_id",
]

CHANNELS: dict[str, str] = {
    "CHAT_MESSAGE": "Chat",
    "EMAIL": "Email",
    "SMS": "SMS",
    "PHONE_CALL": "Phone call",
    "VOICEMAIL": "Voicemail",
    "WHATSAPP": "WhatsApp",
    "FACEBOOK_MESSAGE": "Facebook Messenger",
    "INSTAGRAM_DIRECT": "Instagram Direct",
    "TWITTER": "Twitter",
    "CUSTOM_CHANNEL_MESSAGE": "Custom channel",
    "VOICE_AI_MESSAGE": "Voice AI",
    "CONVERSATION_NOTE": "Note",
    "CUSTOMER_ACTIVITY": "Customer activity",
    "TOPIC_CHANGE": "Topic change",
    "CONVERSATION_STATUS_CHANGE": "Status change",
}
_NAMES = pa.list_(pa.string())


@dataclass(frozen=True)
class ReferenceNames:
    """Id → name maps, and each conversation's inbox id and topic ids, as known now."""

    agents: Mapping[str, str] = field(default_factory=dict)
    inboxes: Mapping[str, str] = field(default_factory=dict)
    topics: Mapping[str, str] = field(default_factory=dict)
    conversations: Mapping[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)

    def with_listings(self, agents: pa.Table | None, topics: pa.Table | None) -> ReferenceNames:
        """These names, overridden by an export job's own agents and topics (its snapshot)."""
        return ReferenceNames(
            agents={**self.agents, **name_map(agents, "agent_id")},
            inboxes=self.inboxes,
            topics={**self.topics, **name_map(topics, "topic_id")},
            conversations=self.conversations,
        )


def name_map(table: pa.Table | None, key: str) -> dict[str, str]:
    """{id: name} from a listing's rows, the newest ``archived_at`` winning; no NULL names."""
    if table is None or table.num_rows == 0:
        return {}
    table = newest_by_id(table, key, "archived_at")
    ids, names = table.column(key).to_pylist(), table.column("name").to_pylist()
    return {i: n for i, n in zip(ids, names, strict=True) if i is not None and n}


def newest_by_id(table: pa.Table, key: str, time_column: str) -> pa.Table:
    """One row per ``key``: the one with the newest ``time_column`` (ties: the last row)."""
    if table.num_rows == 0:
        return table
    ordered = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    ordered = ordered.sort_by(
        [(key, "ascending"), (time_column, "ascending"), ("_row", "ascending")]
    )
    keys = ordered.column(key).combine_chunks()
    if len(keys) > 1:
        nxt = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
        last = pa.concat_arrays([pc.fill_null(nxt, True), pa.array([True])])
    else:
        last = pa.array([True])
    return ordered.filter(last).drop_columns(["_row"])


def _lookup(ids: pa.Array, names: Mapping[str, str]) -> pa.Array:
    if not names:
        return pa.nulls(len(ids), pa.string())
    keys = pa.array(list(names), pa.string())
    values = pa.array(list(names.values()), pa.string())
    return pc.take(values, pc.index_in(ids.cast(pa.string()), value_set=keys))


def _agent_ids(batch: pa.RecordBatch) -> pa.Array:
    def agent(side: str) -> pa.Array:
        is_agent = pc.fill_null(pc.equal(batch.column(f"{side}_type"), "AGENT"), False)
        return pc.if_else(is_agent, batch.column(f"{side}_id"), pa.scalar(None, pa.string()))

    return pc.coalesce(agent("initiator"), agent("responder"))


def conversation_names(
    conversation_ids: pa.Array, names: ReferenceNames
) -> tuple[pa.Array, pa.Array]:
    """Each row's inbox name and topic names (sorted), from its conversation's facts; NULL
    for a conversation without facts. Looked up once per distinct conversation."""
    encoded = pc.dictionary_encode(conversation_ids.cast(pa.string()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    inbox: list[str | None] = []
    topics: list[list[str] | None] = []
    for conversation in encoded.dictionary.to_pylist():
        facts = names.conversations.get(conversation)
        if facts is None:
            inbox.append(None)
            topics.append(None)
            continue
        inbox_id, topic_ids = facts
        inbox.append(names.inboxes.get(inbox_id) if inbox_id is not None else None)
        topics.append(sorted(names.topics.get(t, f"topic {t}") for t in topic_ids))
    indices = encoded.indices
    return (
        pc.take(pa.array(inbox, pa.string()), indices),
        pc.take(pa.array(topics, _NAMES), indices),
    )


_STATUS = r'"status"\s*:\s*"(?P<status>[A-Za-z_]*)"'
_ADDED = r'"addedTopicIds"\s*:\s*\[(?P<added>[^\]]*)\]'
_REMOVED = r'"removedTopicIds"\s*:\s*\[(?P<removed>[^\]]*)\]'
# (pattern, the content key its match stands for) of each type of change
_STATUS_FIELDS = ((_STATUS, "status"),)
_TOPIC_FIELDS = ((_ADDED, "addedTopicIds"), (_REMOVED, "removedTopicIds"))
_EVENT_TYPES = pa.array(["TOPIC_CHANGE", "CONVERSATION_STATUS_CHANGE"])


def _ids(listed: str | None) -> list[str] | None:
    """The ids of a JSON array's inside (``"a","b"``), or None when it is not that simple."""
    if listed is None:
        return []
    ids = [part.strip() for part in listed.split(",") if part.strip()]
    if not all(len(i) > 1 and i[0] == i[-1] == '"' and "\\" not in i for i in ids):
        return None
    return [i[1:-1] for i in ids]


def _event_rows(
    batch: pa.RecordBatch, text: pa.Array, names: ReferenceNames
) -> list[tuple[np.ndarray, pa.Array]]:
    """Topic and status changes carry no text: say what changed, topics by name. Returns
    (rows, their texts) per type of change. The few fields are cut out of raw_json by
    pattern, each distinct one worded once a batch; a line they do not fit is parsed whole."""
    kinds = batch.column("content_type")
    events = pc.and_(pc.is_in(kinds, value_set=_EVENT_TYPES), pc.is_null(text))
    rows = pc.indices_nonzero(pc.fill_null(events, False)).to_numpy()
    if not len(rows):
        return []
    raw_json = batch.column("raw_json")
    status = pc.equal(kinds.take(rows), "CONVERSATION_STATUS_CHANGE")
    status_rows = status.to_numpy(zero_copy_only=False)
    changes = []
    for kind_rows, fields in (
        (rows[status_rows], _STATUS_FIELDS),
        (rows[~status_rows], _TOPIC_FIELDS),
    ):
        if len(kind_rows):
            raw = raw_json.take(pa.array(kind_rows))
            changes.append((kind_rows, _event_values(raw, fields, names)))
    return changes


def _event_values(
    raw: pa.Array, fields: tuple[tuple[str, str], ...], names: ReferenceNames
) -> pa.Array:
    """The texts of events of one type (its fields cut out by pattern): each distinct match
    worded once, each distinct combination joined once."""
    codes, parts = [], []
    for pattern, key in fields:
        encoded = pc.dictionary_encode(pc.struct_field(pc.extract_regex(raw, pattern), [0]))
        # Positions in the distinct matches, counted from 1; 0 where the pattern found none.
        codes.append(pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64) + 1)
        matches = [None, *encoded.dictionary.to_pylist()]
        parts.append([_event_part(key, match, names) for match in matches])
    distinct, where = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    where = where.reshape(-1)
    values: list[str | None] = []
    whole: list[int] = []  # the distinct combinations the patterns do not fit
    for n, combination in enumerate(distinct.tolist()):
        chosen = [parts[i][code] for i, code in enumerate(combination)]
        if all(fits for fits, _ in chosen):
            values.append("; ".join(part for _, part in chosen if part) or None)
        else:
            whole.append(n)
            values.append(None)
    if whole:
        where = where.copy()
        for row in np.flatnonzero(np.isin(where, whole)).tolist():
            where[row] = len(values)
            values.append(_parsed_event_text(raw[row].as_py(), names))
    return pa.array(values, pa.large_string()).take(pa.array(where))


def _event_part(key: str, match: str | None, names: ReferenceNames) -> tuple[bool, str | None]:
    """Whether a field's match fits its pattern's reading, and what _event_text says of that
    field alone (it words each field on its own and joins them with "; ")."""
    if key == "status":
        if match is None:
            return False, None
        return True, _event_text({"type": "CONVERSATION_STATUS_CHANGE", "status": match}, names)
    ids = _ids(match)  # no match: no such key, no ids
    if ids is None:
        return False, None
    return True, _event_text({"type": "TOPIC_CHANGE", key: ids}, names)


def _parsed_event_text(line: str, names: ReferenceNames) -> str | None:
    """The text of an event whose line the patterns do not fit: the line parsed whole."""
    try:
        parsed = json.loads(line).get("content")
    except (ValueError, AttributeError):
        return None
    return _event_text(parsed, names) if isinstance(parsed, dict) else None


def _event_text(content: dict[str, object], names: ReferenceNames) -> str | None:
    if content.get("type") == "CONVERSATION_STATUS_CHANGE":
        status = content.get("status")
        return f"Status changed to {status}" if isinstance(status, str) else None
    parts = []
    for key, verb in (("addedTopicIds", "Topics added"), ("removedTopicIds", "Topics removed")):
        ids = content.get(key)
        if isinstance(ids, list) and ids:
            labels = [names.topics.get(t, f"topic {t}") for t in ids if isinstance(t, str)]
            parts.append(f"{verb}: {', '.join(labels)}")
    return "; ".join(parts) or None


def derive_items(batch: pa.RecordBatch, names: ReferenceNames) -> pa.RecordBatch:
    """A CONVERTED_ITEMS batch (or an ITEMS one, re-derived) as ITEMS; a batch missing a
    converted column is returned as it is, for the writer's schema check to name."""
    if not set(CONVERTED_ITEMS.names) <= set(batch.schema.names):
        return batch
    kinds = batch.column("content_type")
    agent_id = _agent_ids(batch)
    inbox_name, topic_names = conversation_names(batch.column("conversation_id"), names)
    text = batch.column("text")
    changes = _event_rows(batch, text, names)
    if (plain := plain_text_rows(kinds, text)) is not None:
        changes.append(plain)
    text = replace_rows(text, changes)  # one copy of the column for both
    channel = pc.coalesce(_lookup(kinds, CHANNELS), kinds.cast(pa.string()))
    derived = {
        "channel": channel,
        "internal": pc.fill_null(pc.equal(kinds, "CONVERSATION_NOTE"), False),
        "agent_id": agent_id,
        "agent_name": _lookup(agent_id, names.agents),
        "inbox_name": inbox_name,
        "topic_names": topic_names,
        "text": text,
    }
    arrays = [derived[name] if name in derived else batch.column(name) for name in ITEMS.names]
    return pa.RecordBatch.from_arrays(arrays, schema=ITEMS)
