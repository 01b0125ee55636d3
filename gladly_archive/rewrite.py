"""Crash-safe rewrites of archive files in place, and the look-ups that pick the files: shared by
the customer purge (purge.py) and the item redaction and deletion (item_purge.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.fs import (
    delete_if_exists,
    fsync_dirs,
    fsync_file,
    join,
    list_dirs,
    list_files,
    rows_by_file,
    temp_name,
)
from gladly_archive.layout import (
    INDEX_DIR,
    day_of_partition,
    folded_dir,
    read_layout,
    relative,
)
from gladly_archive.schemas import CUSTOMER_FILES, ITEMS, TRANSCRIPTS
from gladly_archive.transcripts import SOURCE_COLUMNS, recent_partitions
from gladly_archive.writer import DatasetWriter, parquet_options

__all__ = [
    "IDS_PER_REGEX",
    "ID_CHARS",
    "ArchiveRewrite",
    "Drop",
    "Edit",
    "dropping",
    "raw_line_matcher",
    "replacing",
]

# A row group -> the rows to drop (a boolean mask; nulls keep the row).
Drop = Callable[[pa.Table], pa.Array]
# A row group -> the row group as it should be, and how many of its rows changed or went.
Edit = Callable[[pa.Table], tuple[pa.Table, int]]

# Ids are Gladly's URL-safe base64; a raw line names an id where it stands between characters
# that cannot be part of an id (quotes, commas, the line's ends).
ID_CHARS = "A-Za-z0-9_-"
IDS_PER_REGEX = 500  # ids per alternation, to keep each regular expression small


def dropping(drop: Drop) -> Edit:
    """The edit that removes the rows ``drop`` marks."""

    def edit(group: pa.Table) -> tuple[pa.Table, int]:
        mask = pc.fill_null(drop(group), False)
        part = group.filter(pc.invert(mask))
        return part, group.num_rows - part.num_rows

    return edit


def replacing(key: str, keys: pa.Array, replacements: pa.Table) -> Edit:
    """The edit that puts the row of ``replacements`` with the same ``key`` in the place of each
    row whose key is in ``keys``, and drops such a row that has no replacement."""

    def edit(group: pa.Table) -> tuple[pa.Table, int]:
        hit = np.asarray(pc.fill_null(pc.is_in(group[key], value_set=keys), False))
        positions = np.flatnonzero(hit)
        if not len(positions):
            return group, 0
        hits = group[key].take(pa.array(positions))
        found = pc.index_in(hits, value_set=replacements[key].combine_chunks())
        valid = np.asarray(pc.is_valid(found))
        pieces = [group.filter(pa.array(~hit))]
        if valid.any():
            new = replacements.take(pc.drop_null(found)).select(group.schema.names)
            pieces.append(new.cast(group.schema))
        combined = pa.concat_tables(pieces).combine_chunks()
        # Back to the file's order: kept rows where they were, replacements where theirs were.
        order = np.concatenate([np.flatnonzero(~hit), positions[valid]])
        return combined.take(pa.array(np.argsort(order, kind="stable"))), len(positions)

    return edit


def raw_line_matcher(ids: list[str]) -> Drop:
    """Marks the quarantined raw lines that name any of ``ids``."""
    escaped = [re.escape(i) for i in ids]
    patterns = [
        f"(?:^|[^{ID_CHARS}])(?:{'|'.join(escaped[n : n + IDS_PER_REGEX])})(?:[^{ID_CHARS}]|$)"
        for n in range(0, len(escaped), IDS_PER_REGEX)
    ]

    def drop(table: pa.Table) -> pa.Array:
        lines = table.column("raw_line")
        mask = pa.array(np.zeros(len(lines), dtype=bool))
        for pattern in patterns:
            mask = pc.or_(mask, pc.match_substring_regex(lines, pattern=pattern))
        return mask

    return drop


def _codec(metadata: pq.FileMetaData) -> str:
    if metadata.num_row_groups == 0 or metadata.num_columns == 0:
        return "zstd"
    return str(metadata.row_group(0).column(0).compression).lower()


class ArchiveRewrite:
    """One run's rewrites: finds files through the customer file index, rewrites each under a
    hidden temporary name and renames it over itself, counts by dataset, and calls the
    archive's crash hook at ``<prefix>:<dataset>:<n>:written`` (the new file complete, not yet
    renamed) and ``<prefix>:<dataset>:<n>`` (renamed or deleted)."""

    def __init__(self, archive: Archive, customers: pa.Array, prefix: str) -> None:
        self.archive, self.fs, self.root = archive, archive.fs, archive.root
        self.ids, self.prefix = customers, prefix
        self.layout = read_layout(self.fs, self.root)
        self.rows_changed: dict[str, int] = {}
        self.files_rewritten: dict[str, int] = {}
        self.files_deleted: dict[str, int] = {}
        self.files_scanned = 0
        self.deleted: list[str] = []  # relative paths of files left empty
        self.renamed_in: set[str] = set()  # directories whose renames are not yet durable
        self._temps_cleared: set[str] = set()  # directories
        self._done = 0

    def is_ours(self, column: pa.ChunkedArray | pa.Array) -> pa.Array:
        """True where a customer id is one of this run's."""
        return pc.fill_null(pc.is_in(column, value_set=self.ids), False)

    # -- finding ----------------------------------------------------------------------------

    def scan(
        self,
        paths: list[str],
        schema: pa.Schema,
        columns: list[str],
        where: pc.Expression | None = None,
    ) -> dict[str, pa.Table]:
        """The rows matching ``where`` (default: of the customers), by file, of the files that
        hold any. Reads only ``columns`` (and the filter's), several files at a time."""
        self.files_scanned += len(paths)
        where = pc.field("customer_id").isin(self.ids) if where is None else where
        return rows_by_file(self.fs, paths, schema, where, columns)

    def index_rows(self, customers: pa.Array) -> tuple[pa.Table, set[str]]:
        """Index rows of these customers (whether or not their file still exists), and the
        index files holding any row of theirs."""
        index_files = list_files(self.fs, self.archive.path(INDEX_DIR))
        where = pc.field("customer_id").isin(customers)
        found = self.scan(index_files, CUSTOMER_FILES, CUSTOMER_FILES.names, where)
        return pa.concat_tables([*found.values(), CUSTOMER_FILES.empty_table()]), set(found)

    def existing(self, index: pa.Table) -> pa.Table:
        """The index rows whose data file exists."""
        paths = sorted(set(index.column("path").to_pylist()))
        infos = self.fs.get_file_info([self.archive.path(p) for p in paths])
        present = [p for p, i in zip(paths, infos, strict=True) if i.type == pafs.FileType.File]
        return index.filter(pc.is_in(index["path"], value_set=pa.array(present, pa.string())))

    def listed(self, index: pa.Table, dataset: str) -> list[str]:
        """The full paths of a dataset's files listed in these index rows."""
        paths = index.filter(pc.equal(index.column("dataset"), dataset)).column("path")
        return sorted(self.archive.path(p) for p in pc.unique(paths).to_pylist())

    def find_transcripts(
        self, indexed: list[str], convs: pa.Array, where: pc.Expression, columns: list[str]
    ) -> dict[str, pa.Table]:
        """Transcript rows matching ``where``, by file: in the ``indexed`` files, then for the
        conversations ``convs`` not found there (indexed under another customer, their latest
        item's) in the rest of the recent tier and, once folded, anywhere in the folded tier."""
        found = self.scan(indexed, TRANSCRIPTS, columns, where)
        wanted = set(convs.to_pylist())
        seen = {c for rows in found.values() for c in rows["conversation_id"].to_pylist()}
        transcripts = self.archive.path("transcripts")
        more = [
            path
            for partition in (
                recent_partitions(list_dirs(self.fs, transcripts)) if wanted - seen else []
            )
            for path in list_files(self.fs, join(transcripts, partition))
            if path not in indexed
        ]
        found.update(self.scan(more, TRANSCRIPTS, columns, where))
        seen = {c for rows in found.values() for c in rows["conversation_id"].to_pylist()}
        if wanted - seen:
            folded = join(transcripts, folded_dir("transcripts"))
            rest = [p for p in list_files(self.fs, folded, recursive=True) if p not in found]
            found.update(self.scan(rest, TRANSCRIPTS, columns, where))
        return found

    def conversation_items(self, spans: pa.Table, where: pc.Expression) -> pa.Table:
        """The items (SOURCE_COLUMNS) matching ``where`` among those dated inside the transcript
        rows' spans (first_timestamp .. last_timestamp): the recent day directories in the spans
        and, when a span reaches back to the folded days, the whole folded tier (the other
        customers' buckets are unknown)."""
        epoch = date(1970, 1, 1)
        first = np.asarray(pc.cast(spans["first_timestamp"], pa.date32()).cast(pa.int32()))
        last = np.asarray(pc.cast(spans["last_timestamp"], pa.date32()).cast(pa.int32()))
        items_dir = self.archive.path("items")
        paths = []
        for name in list_dirs(self.fs, items_dir):
            day = day_of_partition(name)
            if day is not None and np.any(
                (first <= (day - epoch).days) & ((day - epoch).days <= last)
            ):
                paths += list_files(self.fs, join(items_dir, name))
        through = self.layout.folded_through
        if through is not None and len(first) and int(first.min()) <= (through - epoch).days:
            paths += list_files(self.fs, join(items_dir, folded_dir("items")), recursive=True)
        dataset = ds.dataset(paths, schema=ITEMS, format="parquet", filesystem=self.fs)
        return dataset.to_table(columns=SOURCE_COLUMNS, filter=where)

    def index_rebuilt(self, built: pa.Table, found: dict[str, pa.Table]) -> None:
        """List rebuilt transcript rows' customers for their files before the rewrite (a surplus
        index row only costs a read; a missing one would hide a file from a later purge)."""
        where = {c: p for p, t in found.items() for c in t["conversation_id"].to_pylist()}
        both = pa.concat_arrays([self.ids, pc.unique(built["customer_id"])])
        known = self.existing(self.index_rows(both)[0])
        jobs = dict(zip(known["path"].to_pylist(), known["job_id"].to_pylist(), strict=True))
        listed = set(zip(known["customer_id"].to_pylist(), known["path"].to_pylist(), strict=True))
        rows = []
        for conv, customer in zip(
            built["conversation_id"].to_pylist(), built["customer_id"].to_pylist(), strict=True
        ):
            path = relative(self.root, where[conv])
            if (customer, path) not in listed:
                listed.add((customer, path))
                rows.append((customer, "transcripts", path, jobs.get(path, self.prefix)))
        if not rows:
            return
        table = pa.Table.from_pylist(
            [dict(zip(CUSTOMER_FILES.names, row, strict=True)) for row in rows],
            schema=CUSTOMER_FILES,
        )
        prefix = f"part-{self.prefix}-{uuid.uuid4().hex[:12]}"
        with DatasetWriter(
            self.fs, self.archive.path(INDEX_DIR), INDEX_DIR, CUSTOMER_FILES, file_prefix=prefix
        ) as writer:
            writer.write_batches(table.to_batches())

    # -- rewriting --------------------------------------------------------------------------

    def durable(self) -> None:
        """Make the renames so far durable (before the index stops listing what they hold)."""
        fsync_dirs(self.fs, self.renamed_in)
        self.renamed_in.clear()

    def rewrite(self, dataset: str, path: str, edit: Edit, extra: pa.Table | None = None) -> int:
        """Rewrite ``path`` as ``edit`` makes each row group (plus ``extra`` rows), under a
        hidden temporary name renamed over it; delete it if no row is left; leave it untouched
        if nothing changed. Returns the number of rows changed or removed, less ``extra``."""
        fs = self.fs
        self._clear_temps(path)
        tmp = temp_name(path)
        kept = changed = added = 0
        try:
            with fs.open_input_file(path) as handle, fs.open_output_stream(tmp) as sink:
                source = pq.ParquetFile(handle)
                schema = source.schema_arrow
                codec = _codec(source.metadata)
                options = {**parquet_options(schema), "compression": codec}
                with pq.ParquetWriter(sink, schema, **options) as writer:
                    # Row group by row group: bounded memory, and the file keeps its row groups.
                    for number in range(source.num_row_groups):
                        part, count = edit(source.read_row_group(number))
                        changed += count
                        if part.num_rows:
                            writer.write_table(part, row_group_size=part.num_rows)
                            kept += part.num_rows
                    if extra is not None and extra.num_rows:
                        table = extra.select(schema.names).cast(schema)
                        writer.write_table(table, row_group_size=table.num_rows)
                        added = table.num_rows
                        kept += added
            if not changed and not added:
                delete_if_exists(fs, tmp)
                return 0
            self._done += 1
            self._hook(f"{self.prefix}:{dataset}:{self._done}:written")
            if kept:
                fsync_file(fs, tmp)
                fs.move(tmp, path)
                self._count(self.files_rewritten, dataset, 1)
            else:
                delete_if_exists(fs, tmp)
                fs.delete_file(path)
                self.deleted.append(relative(self.root, path))
                self._count(self.files_deleted, dataset, 1)
        except BaseException:
            delete_if_exists(fs, tmp)
            raise
        self.renamed_in.add(path.rsplit("/", 1)[0])
        self._count(self.rows_changed, dataset, max(0, changed - added))
        self._hook(f"{self.prefix}:{dataset}:{self._done}")
        return changed - added

    def _hook(self, point: str) -> None:
        if self.archive.crash_hook is not None:
            self.archive.crash_hook(point)

    @staticmethod
    def _count(counts: dict[str, int], dataset: str, n: int) -> None:
        counts[dataset] = counts.get(dataset, 0) + n

    def _clear_temps(self, path: str) -> None:
        """Delete the hidden temporary files a killed writer left beside ``path`` (only this
        run writes under the lock, so none is in use); once per directory."""
        head = path.rsplit("/", 1)[0]
        if head in self._temps_cleared:
            return
        self._temps_cleared.add(head)
        for info in self.fs.get_file_info(pafs.FileSelector(head, allow_not_found=True)):
            name = info.base_name
            if info.type == pafs.FileType.File and name.startswith(".") and name.endswith(".tmp"):
                delete_if_exists(self.fs, info.path)
