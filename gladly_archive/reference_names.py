"""What the archive knows of names when rows are written: agents, inboxes, topics (newest
listing per id) and each conversation's inbox and topics (newest conversation facts)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from gladly_archive.folded_keys import FoldedKeys, folded_keys, folded_paths
from gladly_archive.fs import exists, join, list_dirs, list_files
from gladly_archive.item_derive import ReferenceNames, name_map, newest_by_id
from gladly_archive.layout import FOLDED
from gladly_archive.schemas import AGENTS, CONVERSATIONS, INBOXES, TOPICS

__all__ = ["ConversationFacts", "load_names", "read_listing"]


def _read(
    fs: pafs.FileSystem,
    paths: str | list[str],
    schema: pa.Schema,
    columns: list[str],
    where: pc.Expression | None = None,
) -> pa.Table:
    dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=fs)
    return dataset.to_table(columns=columns, filter=where)


def read_listing(
    fs: pafs.FileSystem, root: str, dataset: str, schema: pa.Schema, key: str
) -> pa.Table:
    """``key``, ``name`` and ``archived_at`` of every row of a listing dataset (none: empty)."""
    base = join(root, dataset)
    columns = [key, "name", "archived_at"]
    if not exists(fs, base):
        return schema.empty_table().select(columns)
    return _read(fs, base, schema, columns)


_FACT_COLUMNS = ["conversation_id", "inbox_id", "topic_ids", "fetched_at"]


def _facts_map(table: pa.Table) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    table = newest_by_id(table, "conversation_id", "fetched_at")
    return {
        conversation: (inbox, tuple(topics or ()))
        for conversation, inbox, topics in zip(
            table.column("conversation_id").to_pylist(),
            table.column("inbox_id").to_pylist(),
            table.column("topic_ids").to_pylist(),
            strict=True,
        )
    }


def _conversations(fs: pafs.FileSystem, root: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    base = join(root, "conversations")
    if not exists(fs, base):
        return {}
    return _facts_map(_read(fs, base, CONVERSATIONS, _FACT_COLUMNS))


class ConversationFacts:
    """Each conversation's newest facts (inbox, topics), looked up for a batch's conversations
    only: the recent enrichment runs are read once, the folded tier only in the buckets that
    hold the batch's conversations (gladly_archive.folded_keys). A commit's cost so does not
    grow with the archive. Use under the writer lock (a missing key file is rebuilt)."""

    def __init__(self, fs: pafs.FileSystem, root: str) -> None:
        self.fs, self.root = fs, root
        base = join(root, "conversations")
        runs = [join(base, n) for n in list_dirs(fs, base) if n != FOLDED]
        paths = [p for run in runs for p in list_files(fs, run)]
        self._recent = (
            _read(fs, paths, CONVERSATIONS, _FACT_COLUMNS)
            if paths
            else CONVERSATIONS.empty_table().select(_FACT_COLUMNS)
        )
        self._keys: FoldedKeys | None = None
        self._folded = exists(fs, join(base, FOLDED))

    def lookup(self, conversation_ids: pa.Array) -> dict[str, tuple[str | None, tuple[str, ...]]]:
        """The facts of these conversations (those without any are left out)."""
        wanted = pc.unique(conversation_ids.cast(pa.string()).drop_null())
        if not len(wanted):
            return {}
        where = pc.field("conversation_id").isin(wanted)
        found = [self._recent.filter(where)]
        if self._folded:
            if self._keys is None:
                self._keys = folded_keys(self.fs, self.root)
            buckets = self._keys.buckets_of(wanted)
            paths = folded_paths(self.fs, self.root, "conversations", buckets)
            if paths:
                found.append(_read(fs=self.fs, paths=paths, schema=CONVERSATIONS,
                                   columns=_FACT_COLUMNS, where=where))  # fmt: skip
        return _facts_map(pa.concat_tables(found))


def load_names(
    fs: pafs.FileSystem,
    root: str,
    *,
    job_agents: Iterable[str] = (),
    job_topics: Iterable[str] = (),
    conversations: bool = True,
) -> ReferenceNames:
    """The archive's names, overridden by a staged job's own agents and topics files; every
    conversation's facts unless ``conversations`` is False (then look them up per batch with
    ``ConversationFacts``)."""
    names = ReferenceNames(
        agents=name_map(read_listing(fs, root, "agents", AGENTS, "agent_id"), "agent_id"),
        inboxes=name_map(read_listing(fs, root, "inboxes", INBOXES, "inbox_id"), "inbox_id"),
        topics=name_map(read_listing(fs, root, "topics", TOPICS, "topic_id"), "topic_id"),
        conversations=_conversations(fs, root) if conversations else {},
    )
    agents, topics = list(job_agents), list(job_topics)
    return names.with_listings(
        _read(fs, agents, AGENTS, ["agent_id", "name", "archived_at"]) if agents else None,
        _read(fs, topics, TOPICS, ["topic_id", "name", "archived_at"]) if topics else None,
    )
