"""Bring the inbox and topic names of conversations up to date in the rows already archived.

An export job's items are written before enrichment has fetched their conversations' facts,
so their ``inbox_name`` and ``topic_names`` start out NULL (item_derive). Once enrichment has
written new facts, ``refresh_conversation_names`` rewrites the item and transcript rows of
those conversations with the names the archive now knows. Files are found through the customer
file index, rewritten row group by row group under a hidden temporary name renamed over
themselves (gladly_archive.rewrite), and files whose rows already hold these names are not
touched, so a rerun after a crash finishes the work and a rerun after that changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.archive import Archive
from gladly_archive.commit import recover_staging
from gladly_archive.item_derive import ReferenceNames, conversation_names
from gladly_archive.recent_keys import refresh_recent_keys
from gladly_archive.reference_names import load_names
from gladly_archive.rewrite import ArchiveRewrite, Edit
from gladly_archive.schemas import ITEMS

__all__ = ["NameRefreshReport", "refresh_conversation_names"]

log = logging.getLogger(__name__)
_DATASETS = ("items", "transcripts")


@dataclass
class NameRefreshReport:
    """What one refresh changed (counts only)."""

    conversations: int = 0
    rows_changed: dict[str, int] = field(default_factory=dict)
    files_rewritten: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _renaming(conversations: pa.Array, names: ReferenceNames) -> Edit:
    """The edit that gives rows of ``conversations`` their current inbox and topic names."""

    def edit(group: pa.Table) -> tuple[pa.Table, int]:
        hit = pc.fill_null(pc.is_in(group["conversation_id"], value_set=conversations), False)
        rows = pc.indices_nonzero(hit)
        if not len(rows):
            return group, 0
        ids = group["conversation_id"].take(rows).combine_chunks()
        inbox, topics = conversation_names(ids, names)
        old_inbox = group["inbox_name"].take(rows).to_pylist()
        old_topics = group["topic_names"].take(rows).to_pylist()
        new_inbox, new_topics = inbox.to_pylist(), topics.to_pylist()
        changed = sum(
            1
            for a, b, c, d in zip(old_inbox, new_inbox, old_topics, new_topics, strict=True)
            if a != b or c != d
        )
        if not changed:
            return group, 0
        positions = rows.to_pylist()
        inbox_all = group["inbox_name"].to_pylist()
        topics_all = group["topic_names"].to_pylist()
        for n, row in enumerate(positions):
            inbox_all[row], topics_all[row] = new_inbox[n], new_topics[n]
        for name, values in (("inbox_name", inbox_all), ("topic_names", topics_all)):
            position = group.schema.get_field_index(name)
            column = pa.array(values, group.schema.field(name).type)
            group = group.set_column(position, group.schema.field(name), column)
        return group, changed

    return edit


def refresh_conversation_names(
    archive: Archive, conversations: Mapping[str, str]
) -> NameRefreshReport:
    """Rewrite the item and transcript rows of these conversations (conversation id -> customer
    id) with the inbox and topic names the archive knows now. Under the writer lock, after
    finishing any interrupted commit. Logs carry counts only."""
    started = time.perf_counter()
    wanted = {str(c): str(u) for c, u in conversations.items() if c and u}
    report = NameRefreshReport(conversations=len(wanted))
    if not wanted:
        return report
    lock = archive.lock()
    lock.acquire()
    try:
        recover_staging(archive.fs, archive.root, archive.crash_hook)
        names = load_names(archive.fs, archive.root)
        convs = pa.array(sorted(wanted), pa.string())
        customers = pa.array(sorted(set(wanted.values())), pa.string())
        job = ArchiveRewrite(archive, customers, prefix="names")
        edit = _renaming(convs, names)
        existing = job.existing(job.index_rows(customers)[0])
        where = pc.field("conversation_id").isin(convs)
        for path in sorted(job.scan(job.listed(existing, "items"), ITEMS, ["item_id"], where)):
            job.rewrite("items", path, edit)
        found = job.find_transcripts(
            job.listed(existing, "transcripts"), convs, where, ["conversation_id"]
        )
        for path in sorted(found):
            job.rewrite("transcripts", path, edit)
        job.durable()
        # The rewritten files' keys are read now, under the lock, not by the next commit (and
        # by the rerun of a refresh killed before its key file, which rewrites nothing).
        refresh_recent_keys(archive.fs, archive.root, archive.crash_hook)
        for name in _DATASETS:
            report.rows_changed[name] = job.rows_changed.get(name, 0)
            report.files_rewritten[name] = job.files_rewritten.get(name, 0)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    log.info(
        "conversation names refreshed: %d conversation(s); rows changed %s; files rewritten %s",
        report.conversations,
        report.rows_changed,
        report.files_rewritten,
    )
    return report
