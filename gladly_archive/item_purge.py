"""Redact or delete single items in the archive, as Gladly's deletion engine did in Gladly: the
item rows, the transcripts built from them, and quarantined raw lines naming them."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.catalog import refresh_catalog
from gladly_archive.commit import recover_staging
from gladly_archive.fs import list_files
from gladly_archive.layout import INDEX_DIR, QUARANTINE_DIR, check_layout
from gladly_archive.recent_keys import refresh_recent_keys
from gladly_archive.rewrite import (
    ID_CHARS,
    IDS_PER_REGEX,
    ArchiveRewrite,
    dropping,
    raw_line_matcher,
    replacing,
)
from gladly_archive.schemas import CUSTOMER_FILES, ITEMS, TRANSCRIPTS
from gladly_archive.transcripts import build_transcripts

__all__ = [
    "ITEM_PURGED_DATASETS",
    "REDACTED_COLUMNS",
    "ItemPurgeReport",
    "delete_items",
    "items_still_holding_text",
    "items_still_present",
    "redact_items",
]

log = logging.getLogger(__name__)

ITEM_PURGED_DATASETS = ("transcripts", "items", QUARANTINE_DIR, INDEX_DIR)
# What a person wrote or said, or their contact data: null in a redacted item. Attachments keep
# their count, content types and sizes (ids and file names go); raw_json becomes a stub.
REDACTED_COLUMNS = (
    "text",
    "subject",
    "from_address",
    "to_addresses",
    "cc_addresses",
    "bcc_addresses",
    "recording_summary",
)
_LOOKUP = ["item_id", "customer_id", "conversation_id"]
_COMPARED = [name for name in TRANSCRIPTS.names if name != "built_at"]
_QUARANTINE_NOTE = (
    "_quarantine: quarantined raw lines are matched by item id only; a line that holds the "
    "item's text without its id is kept"
)
_MERGE_NOTE = (
    "items are found through the customer file index under the customer given; an item the "
    "archive holds under another customer (a Gladly merge not yet exported) is not found"
)


@dataclass
class ItemPurgeReport:
    """What one redact_items or delete_items run did.

    ``items`` counts the distinct item ids asked for; ``items_changed`` the item rows redacted
    or deleted by this run; ``items_already_done`` the rows found already redacted (a
    redaction only: deleted rows cannot be told from unknown ones); ``not_found`` the ids found
    in no file the index lists for their customer (unknown, or already deleted).
    ``transcripts_rebuilt`` and ``transcripts_removed`` count conversations whose transcript was
    rewritten, or dropped because no item is left. Per dataset of ITEM_PURGED_DATASETS:
    ``rows_changed`` (items redacted or deleted, transcripts replaced or dropped, quarantined
    lines and index rows dropped), ``files_rewritten``, ``files_deleted`` (left empty).
    """

    action: str  # "redact" | "delete"
    items: int
    items_changed: int = 0
    items_already_done: int = 0
    not_found: list[str] = field(default_factory=list)
    transcripts_rebuilt: int = 0
    transcripts_removed: int = 0
    rows_changed: dict[str, int] = field(default_factory=dict)
    files_rewritten: dict[str, int] = field(default_factory=dict)
    files_deleted: dict[str, int] = field(default_factory=dict)
    files_scanned: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=lambda: [_QUARANTINE_NOTE, _MERGE_NOTE])


def redact_items(archive: Archive, items: Mapping[str, str]) -> ItemPurgeReport:
    """Redact these items (item id -> customer id) where the archive keeps them.

    Each item row keeps its ids, times, content type, channel and call timing columns; the
    REDACTED_COLUMNS become null, attachments keep only content types and sizes, and raw_json
    becomes ``{"id", "conversationId", "customerId", "timestamp", "content": {"type"},
    "redacted": true}``. The transcripts of their conversations are rebuilt first (a redacted
    line reads ``[<content type>]``), then the item files rewritten, then quarantined raw
    lines naming the items dropped. Under the writer lock, after finishing any interrupted
    commit; each file is rewritten under a hidden temporary name and renamed over itself;
    files without such rows are not touched. Killed at any point, a rerun with the same
    mapping finishes the job; a rerun after it is a no-op. Logs carry counts only.
    """
    return _run(archive, items, redact=True)


def delete_items(archive: Archive, items: Mapping[str, str]) -> ItemPurgeReport:
    """Remove these items' rows (item id -> customer id) from the archive, as redact_items does
    its work: transcripts rebuilt from the items left (dropped when none is left), item files
    rewritten (deleted when empty, their index rows dropped last), quarantined lines dropped."""
    return _run(archive, items, redact=False)


def items_still_holding_text(archive: Archive, items: Mapping[str, str]) -> set[str]:
    """The items among ``items`` a rerun of redact_items would still redact: rows not yet
    redacted, or quarantined lines naming them. (Transcripts are rebuilt before the rows are
    redacted, so a redacted row's transcript is too.)"""
    return _still(archive, items, redact=True)


def items_still_present(archive: Archive, items: Mapping[str, str]) -> set[str]:
    """The items among ``items`` a rerun of delete_items would still delete."""
    return _still(archive, items, redact=False)


def _wanted(items: Mapping[str, str]) -> dict[str, str]:
    return {str(i): str(c) for i, c in items.items() if i and c}


def _still(archive: Archive, items: Mapping[str, str], *, redact: bool) -> set[str]:
    wanted = _wanted(items)
    if not wanted:
        return set()
    check_layout(archive.fs, archive.root)
    job = _ItemPurge(archive, wanted, redact)
    pending, _ = job.pending(job.existing(job.index_rows(job.ids)[0]))
    left = {i for table in pending.values() for i in table["item_id"].to_pylist()}
    for named in job.quarantined().values():
        left |= named
    return left


def _run(archive: Archive, items: Mapping[str, str], *, redact: bool) -> ItemPurgeReport:
    started = time.perf_counter()
    wanted = _wanted(items)
    report = ItemPurgeReport(action="redact" if redact else "delete", items=len(wanted))
    lock = archive.lock()
    lock.acquire()
    try:
        recover_staging(archive.fs, archive.root, archive.crash_hook)
        job = _ItemPurge(archive, wanted, redact)
        try:
            if wanted:
                job.run(report)
                refresh_recent_keys(archive.fs, archive.root, archive.crash_hook)
        finally:
            report.files_scanned = job.files_scanned
            for name in ITEM_PURGED_DATASETS:
                report.rows_changed[name] = job.rows_changed.get(name, 0)
                report.files_rewritten[name] = job.files_rewritten.get(name, 0)
                report.files_deleted[name] = job.files_deleted.get(name, 0)
    finally:
        lock.release()
    if any(report.files_deleted.values()):
        refresh_catalog(archive.fs, archive.root)  # a dataset may have lost its last file
    report.seconds = time.perf_counter() - started
    log.info(
        "%s_items: %d item(s); %d changed, %d already done, %d not found; transcripts rebuilt "
        "%d, removed %d; rows changed %s; files rewritten %s, deleted %s; %d scanned",
        report.action,
        report.items,
        report.items_changed,
        report.items_already_done,
        len(report.not_found),
        report.transcripts_rebuilt,
        report.transcripts_removed,
        {k: v for k, v in report.rows_changed.items() if v},
        {k: v for k, v in report.files_rewritten.items() if v},
        {k: v for k, v in report.files_deleted.items() if v},
        report.files_scanned,
    )
    return report


def _timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``: milliseconds, or microseconds when the time has them."""
    value = value.astimezone(UTC)
    micros = value.microsecond
    fraction = f"{micros:06d}" if micros % 1000 else f"{micros // 1000:03d}"
    return f"{value:%Y-%m-%dT%H:%M:%S}.{fraction}Z"


def _stub(row: dict[str, Any]) -> str:
    """The raw_json of a redacted item: its non-personal envelope only."""
    body: dict[str, Any] = {"id": row["item_id"]}
    if row["conversation_id"] is not None:
        body["conversationId"] = row["conversation_id"]
    body["customerId"] = row["customer_id"]
    body["timestamp"] = _timestamp(row["timestamp"])
    body["content"] = {"type": row["content_type"]}
    body["redacted"] = True
    return json.dumps(body, separators=(",", ":"))


def _redacted(row: dict[str, Any]) -> dict[str, Any]:
    """An ITEMS row as redacted (the same row again if it already is)."""
    out = dict(row)
    for name in REDACTED_COLUMNS:
        if name in out:
            out[name] = None
    if row["attachments"] is not None:
        out["attachments"] = [
            None
            if a is None
            else {
                "id": None,
                "content_type": a["content_type"],
                "filename": None,
                "file_size": a["file_size"],
            }
            for a in row["attachments"]
        ]
    if "raw_json" in out:
        out["raw_json"] = _stub(row)
    return out


class _ItemPurge(ArchiveRewrite):
    """One run: the items and their customers, redaction or deletion."""

    def __init__(self, archive: Archive, items: dict[str, str], redact: bool) -> None:
        customers = pa.array(sorted(set(items.values())), pa.string())
        super().__init__(archive, customers, "redact" if redact else "delete")
        self.item_ids = pa.array(sorted(items), pa.string())
        self.redact = redact

    def _targets(self, column: pa.ChunkedArray | pa.Array) -> pa.Array:
        return pc.fill_null(pc.is_in(column, value_set=self.item_ids), False)

    # -- finding ----------------------------------------------------------------------------

    def pending(self, index: pa.Table) -> tuple[dict[str, pa.Table], set[str]]:
        """By item file, the rows still to change (as they will be once redacted; for a
        deletion, their ids); and every item id found."""
        columns = ITEMS.names if self.redact else _LOOKUP
        where = pc.field("item_id").isin(self.item_ids)
        found = self.scan(self.listed(index, "items"), ITEMS, columns, where)
        seen = {i for table in found.values() for i in table["item_id"].to_pylist()}
        if not self.redact:
            return found, seen
        pending = {}
        for path, table in found.items():
            rows = table.to_pylist()
            changed = [new for row in rows if (new := _redacted(row)) != row]
            if changed:
                pending[path] = pa.Table.from_pylist(changed, schema=ITEMS)
        return pending, seen

    def quarantined(self) -> dict[str, set[str]]:
        """By quarantine file, the item ids its raw lines name."""
        ids = [re.escape(i).encode() for i in self.item_ids.to_pylist()]
        edge = ID_CHARS.encode()
        patterns = [
            re.compile(
                rb"(?<![%s])(%s)(?![%s])" % (edge, b"|".join(ids[n : n + IDS_PER_REGEX]), edge)
            )
            for n in range(0, len(ids), IDS_PER_REGEX)
        ]
        match = raw_line_matcher(self.item_ids.to_pylist())
        named: dict[str, set[str]] = {}
        for path in list_files(self.fs, self.archive.path(QUARANTINE_DIR), recursive=True):
            lines = pq.read_table(path, columns=["raw_line"], filesystem=self.fs)["raw_line"]
            self.files_scanned += 1
            hits = lines.filter(pc.fill_null(match(pa.table({"raw_line": lines})), False))
            for line in hits.to_pylist():
                for pattern in patterns:
                    named.setdefault(path, set()).update(m.decode() for m in pattern.findall(line))
        return named

    # -- doing ------------------------------------------------------------------------------

    def run(self, report: ItemPurgeReport) -> None:
        index = self.index_rows(self.ids)[0]
        live = self.existing(index)
        pending, seen = self.pending(live)
        report.not_found = sorted(set(self.item_ids.to_pylist()) - seen)
        changing = sum(table.num_rows for table in pending.values())
        report.items_already_done = max(0, len(seen) - changing) if self.redact else 0
        convs = pa.concat_tables(
            [t.select(["conversation_id"]) for t in pending.values()]
            + [ITEMS.empty_table().select(["conversation_id"])]
        ).column("conversation_id")
        convs = pc.unique(convs.drop_null())
        # Transcripts first: they are rebuilt from the items as they will be, and on a rerun
        # that follows a crash the rows still to change name their conversations again.
        if len(convs):
            self._transcripts(convs, self.listed(live, "transcripts"), report)
        for path in sorted(pending):
            table = pending[path]
            keep = table if self.redact else table.slice(0, 0)
            report.items_changed += self.rewrite(
                "items", path, replacing("item_id", table["item_id"].combine_chunks(), keep)
            )
        match = raw_line_matcher(self.item_ids.to_pylist())
        for path in sorted(self.quarantined()):
            self.rewrite(QUARANTINE_DIR, path, dropping(match))
        # The index last, once the renames are durable: rows naming files left empty go (and
        # those a killed run left naming its deleted files).
        self.durable()
        missing = set(index["path"].to_pylist()) - set(live["path"].to_pylist())
        gone = pa.array(sorted(missing | set(self.deleted)), pa.string())
        if len(gone):
            paths = list_files(self.fs, self.archive.path(INDEX_DIR))
            where = pc.field("path").isin(gone)
            for path in sorted(self.scan(paths, CUSTOMER_FILES, ["path"], where)):
                self.rewrite(
                    INDEX_DIR, path, dropping(lambda t: pc.is_in(t["path"], value_set=gone))
                )
            self.durable()

    def _after(self, items: pa.Table) -> pa.Table:
        """Conversation items (SOURCE_COLUMNS) as they will be once this run is done."""
        targets = self._targets(items["item_id"])
        if not self.redact:
            return items.filter(pc.invert(targets))
        position = items.schema.get_field_index("text")
        text = pc.if_else(targets, pa.scalar(None, items.schema.field("text").type), items["text"])
        items = items.set_column(position, items.schema.field("text"), text)
        # Transcript lines name attachments by file name: a redacted item's names go too.
        position = items.schema.get_field_index("attachments")
        attachments = items["attachments"].to_pylist()
        for row in pc.indices_nonzero(pc.fill_null(targets, False)).to_pylist():
            attachments[row] = _redacted({"attachments": attachments[row]})["attachments"]
        field = items.schema.field("attachments")
        return items.set_column(position, field, pa.array(attachments, field.type))

    def _transcripts(self, convs: pa.Array, indexed: list[str], report: ItemPurgeReport) -> None:
        """Rewrite the transcript rows of these conversations that the change alters."""
        where = pc.field("conversation_id").isin(convs)
        found = self.find_transcripts(indexed, convs, where, TRANSCRIPTS.names)
        if not found:
            return
        rows = pa.concat_tables(list(found.values()))
        items = self._after(self.conversation_items(rows, where))
        built = build_transcripts(items, self.archive.clock())
        new = {r["conversation_id"]: r for r in built.select(_COMPARED).to_pylist()}
        changed: set[str] = set()
        removed: set[str] = set()
        for row in rows.select(_COMPARED).to_pylist():
            conv = row["conversation_id"]
            if conv not in new:
                removed.add(conv)
            elif new[conv] != row:
                changed.add(conv)
        if not changed and not removed:
            return
        rebuilt = pa.array(sorted(changed), pa.string())  # typed: it may be empty
        replacements = built.filter(pc.is_in(built["conversation_id"], rebuilt))
        if replacements.num_rows:
            self.index_rebuilt(replacements, found)
        keys = pa.array(sorted(changed | removed), pa.string())
        for path in sorted(found):
            if pc.any(pc.is_in(found[path]["conversation_id"], keys)).as_py():
                self.rewrite("transcripts", path, replacing("conversation_id", keys, replacements))
        report.transcripts_rebuilt += len(changed)
        report.transcripts_removed += len(removed)
