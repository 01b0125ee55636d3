"""Items and transcripts as a migration writes them: items re-derived from their raw_json through
this release's converter, transcripts rebuilt from the migrated items."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.convert import QuarantinedLine, convert_items_lines
from gladly_archive.fs import ArchiveError, join, list_dirs, list_files
from gladly_archive.item_derive import ReferenceNames
from gladly_archive.item_derive import derive_items as item_derive
from gladly_archive.layout import customer_bucket, day_of_partition, folded_partition, read_layout
from gladly_archive.schemas import ITEMS, TRANSCRIPTS
from gladly_archive.transcripts import SOURCE_COLUMNS, build_transcripts

__all__ = ["DeriveContext", "MigrationError", "derive_items", "rebuild_transcripts"]

# What must not change when an item is derived again: it stays the same item, in its place.
_IDENTITY = ("item_id", "conversation_id", "customer_id", "timestamp")
_SPANS = ["conversation_id", "customer_id", "first_timestamp", "last_timestamp", "item_count"]
_EPOCH = date(1970, 1, 1)


class MigrationError(ArchiveError):
    """The archive cannot be migrated as it is (nothing of the file that showed it is written)."""


@dataclass(frozen=True)
class DeriveContext:
    """What deriving one file's rows may read besides them: the archive, the file's path
    (relative to the root, for messages) and the names the archive knows (item_derive)."""

    archive: Archive
    path: str
    names: ReferenceNames = field(default_factory=ReferenceNames)


def derive_items(table: pa.Table, context: DeriveContext) -> pa.Table:
    """Every items table a migration writes passes through here, and only here.

    Each row is converted again from its ``raw_json`` (with its ``job_id`` and
    ``archived_at``) by ``gladly_archive.convert.convert_items_lines`` and derived by
    ``gladly_archive.item_derive.derive_items`` with the archive's names, so it holds exactly
    the columns, and the values, this release's writer gives. A redacted row (its
    ``raw_json`` is the stub ``item_purge`` leaves) keeps every value it has, the new columns
    from the converter. Raises MigrationError if the converter refuses a row or the rows would
    change item, conversation, customer or time.
    """
    converted = _converted(table, context.path, context.names)
    converted = _redacted_kept(table, converted)
    for name in _IDENTITY:
        if not converted.column(name).equals(table.column(name).cast(ITEMS.field(name).type)):
            raise MigrationError(
                f"{context.path}: converting raw_json again changes the items' {name}; the file "
                "is left as it is"
            )
    return converted


def _converted(table: pa.Table, where: str, names: ReferenceNames) -> pa.Table:
    """The rows converted again, in their order (one conversion per job and archiving time)."""
    rows = table.num_rows
    if rows == 0:
        return ITEMS.empty_table()
    keys = pa.table(
        {
            "job_id": table.column("job_id"),
            "archived_at": table.column("archived_at"),
            "row": pa.array(np.arange(rows, dtype=np.int64)),
        }
    )
    groups = keys.group_by(["job_id", "archived_at"], use_threads=False).aggregate(
        [("row", "list")]
    )
    raw = table.column("raw_json")
    refused: list[QuarantinedLine] = []
    parts: list[pa.RecordBatch] = []
    order: list[int] = []
    for job_id, archived_at, members in zip(
        groups["job_id"].to_pylist(),
        groups["archived_at"].to_pylist(),
        groups["row_list"].to_pylist(),
        strict=True,
    ):
        lines = [value.encode() for value in raw.take(pa.array(members)).to_pylist()]
        parts += [
            item_derive(batch, names)
            for batch in convert_items_lines(
                lines, job_id=job_id, archived_at=archived_at, on_quarantine=refused.append
            )
        ]
        order += members
    if refused or sum(part.num_rows for part in parts) != rows:
        raise MigrationError(
            f"{where}: this release's converter refuses {max(len(refused), 1)} item(s) of the "
            "file (their raw_json); the file is left as it is"
        )
    converted = pa.Table.from_batches(parts, schema=ITEMS)
    return converted.take(pa.array(np.argsort(np.asarray(order, dtype=np.int64))))


def _redacted(raw: pa.ChunkedArray) -> np.ndarray:
    """Which rows' raw_json is a redaction stub (``"redacted": true`` at its top level)."""
    candidates = pc.fill_null(pc.match_substring(raw, '"redacted"'), False)
    mask = np.zeros(len(raw), dtype=bool)
    for at in np.flatnonzero(np.asarray(candidates)):
        try:
            body = json.loads(raw[int(at)].as_py())
        except ValueError:
            continue
        mask[at] = isinstance(body, dict) and body.get("redacted") is True
    return mask


def _redacted_kept(stored: pa.Table, converted: pa.Table) -> pa.Table:
    """``converted``, but with the stored values of redacted rows in every column they have
    (a stub cannot give them again: the attachments' types and sizes, the call's times, …)."""
    mask = _redacted(stored.column("raw_json"))
    if not mask.any():
        return converted
    rows = converted.num_rows
    take = pa.array(np.where(mask, np.arange(rows) + rows, np.arange(rows)))
    columns = []
    for target in converted.schema:
        column = converted.column(target.name)
        if target.name in stored.column_names:
            old = stored.column(target.name).cast(target.type)
            column = pa.chunked_array(column.chunks + old.chunks, target.type).take(take)
        columns.append(column)
    return pa.table(columns, schema=converted.schema)


def rebuild_transcripts(context: DeriveContext, path: str) -> pa.Table:
    """The transcript file at ``path`` built again from the (migrated) items of its
    conversations, rows in the file's order. MigrationError if a conversation has no item."""
    archive = context.archive
    spans = pq.read_table(path, columns=_SPANS, filesystem=archive.fs)
    if spans.num_rows == 0:
        return TRANSCRIPTS.empty_table()
    wanted = spans.column("conversation_id").combine_chunks()
    near = _near_files(archive, spans)
    items = _items(archive, near, wanted)
    # Items are found where their layout puts them; a conversation that has items elsewhere
    # (another customer's bucket, after a merge) is looked for in every file.
    found = pc.value_counts(items.column("conversation_id")).flatten()
    counts = dict(zip(found[0].to_pylist(), found[1].to_pylist(), strict=True))
    short = [
        c
        for c, n in zip(wanted.to_pylist(), spans.column("item_count").to_pylist(), strict=True)
        if counts.get(c, 0) < n
    ]
    if short:
        rest = [
            p
            for p in list_files(archive.fs, archive.path("items"), recursive=True)
            if p not in near
        ]
        items = pa.concat_tables([items, _items(archive, rest, pa.array(short, pa.string()))])
    built = build_transcripts(items, archive.clock())
    at = pc.index_in(wanted, value_set=built.column("conversation_id"))
    if at.null_count:
        raise MigrationError(
            f"{context.path}: {at.null_count} conversation(s) without any item in the archive; "
            "the file is left as it is"
        )
    return built.take(at).cast(TRANSCRIPTS)


def _days(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.date32()).cast(pa.int32()).combine_chunks())


def _near_files(archive: Archive, spans: pa.Table) -> list[str]:
    """The items files the conversations' items are laid out in: the recent days their spans
    cover and, for spans reaching into the folded days, their customers' folded buckets."""
    first, last = _days(spans.column("first_timestamp")), _days(spans.column("last_timestamp"))
    base = archive.path("items")
    paths = []
    for name in list_dirs(archive.fs, base):
        day = day_of_partition(name)
        if day is None:
            continue
        number = (day - _EPOCH).days
        if np.any((first <= number) & (number <= last)):
            paths += list_files(archive.fs, join(base, name))
    layout = read_layout(archive.fs, archive.root)
    if layout.buckets and layout.folded_through is not None:
        early = first <= (layout.folded_through - _EPOCH).days
        customers = spans.column("customer_id").combine_chunks().filter(pa.array(early))
        for bucket in sorted(set(customer_bucket(customers, layout.buckets).tolist())):
            paths += list_files(archive.fs, join(base, folded_partition("items", bucket)))
    return paths


def _items(archive: Archive, paths: list[str], conversations: pa.Array) -> pa.Table:
    if not paths:
        return ITEMS.empty_table().select(SOURCE_COLUMNS)
    dataset = ds.dataset(paths, schema=ITEMS, format="parquet", filesystem=archive.fs)
    where = pc.field("conversation_id").isin(conversations)
    return dataset.to_table(columns=SOURCE_COLUMNS, filter=where)
