"""What the archive knows of names when rows are written: agents, inboxes, topics (newest
listing per id) and each conversation's inbox and topics (newest conversation facts)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from gladly_archive.fs import exists, join
from gladly_archive.item_derive import ReferenceNames, name_map, newest_by_id
from gladly_archive.schemas import AGENTS, CONVERSATIONS, INBOXES, TOPICS

__all__ = ["load_names", "read_listing"]


def _read(
    fs: pafs.FileSystem, paths: str | list[str], schema: pa.Schema, columns: list[str]
) -> pa.Table:
    dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=fs)
    return dataset.to_table(columns=columns)


def read_listing(
    fs: pafs.FileSystem, root: str, dataset: str, schema: pa.Schema, key: str
) -> pa.Table:
    """``key``, ``name`` and ``archived_at`` of every row of a listing dataset (none: empty)."""
    base = join(root, dataset)
    columns = [key, "name", "archived_at"]
    if not exists(fs, base):
        return schema.empty_table().select(columns)
    return _read(fs, base, schema, columns)


def _conversations(fs: pafs.FileSystem, root: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    base = join(root, "conversations")
    if not exists(fs, base):
        return {}
    table = _read(
        fs, base, CONVERSATIONS, ["conversation_id", "inbox_id", "topic_ids", "fetched_at"]
    )
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


def load_names(
    fs: pafs.FileSystem,
    root: str,
    *,
    job_agents: Iterable[str] = (),
    job_topics: Iterable[str] = (),
) -> ReferenceNames:
    """The archive's names, overridden by a staged job's own agents and topics files."""
    names = ReferenceNames(
        agents=name_map(read_listing(fs, root, "agents", AGENTS, "agent_id"), "agent_id"),
        inboxes=name_map(read_listing(fs, root, "inboxes", INBOXES, "inbox_id"), "inbox_id"),
        topics=name_map(read_listing(fs, root, "topics", TOPICS, "topic_id"), "topic_id"),
        conversations=_conversations(fs, root),
    )
    agents, topics = list(job_agents), list(job_topics)
    return names.with_listings(
        _read(fs, agents, AGENTS, ["agent_id", "name", "archived_at"]) if agents else None,
        _read(fs, topics, TOPICS, ["topic_id", "name", "archived_at"]) if topics else None,
    )
