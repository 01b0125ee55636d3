"""Erase customers from the archive: rewrite only the files holding their rows, the index last."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.commit import recover_staging
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
    LAYOUT_NAME,
    MANIFEST_DIR,
    QUARANTINE_DIR,
    STAGING_DIR,
    customer_bucket,
    day_of_partition,
    folded_dir,
    folded_partition,
    read_layout,
    relative,
)
from gladly_archive.schemas import CUSTOMER_FILES, CUSTOMERS, DATASETS, ITEMS, TRANSCRIPTS
from gladly_archive.tombstones import TOMBSTONES_DIR
from gladly_archive.transcripts import (
    SOURCE_COLUMNS,
    bucket_of,
    bucket_partition,
    build_transcripts,
)
from gladly_archive.writer import DatasetWriter

__all__ = ["PURGED_DATASETS", "PurgeReport", "purge_customers", "still_listed"]

log = logging.getLogger(__name__)

# Found through the customer file index (merge.update_index lists exactly these).
_INDEXED = ("transcripts", "items", "customers")
# Enrichment snapshots have no index: one run's file holds thousands of customers in fetch order,
# so min/max statistics cannot prune them; their customer_id column is read whole (it is small
# next to items), and only files that hold a purged customer are rewritten.
_SCANNED = ("conversations", "customer_profiles")
PURGED_DATASETS = (*_INDEXED, *_SCANNED, QUARANTINE_DIR, INDEX_DIR)
# Top-level entries the purge searches, or that hold no customer rows (tombstones keep ids and
# digests by design), or that recover_staging empties first.
_KNOWN = {*_INDEXED, *_SCANNED, QUARANTINE_DIR, "_index", "agents", "topics", MANIFEST_DIR}
_KNOWN.update((STAGING_DIR, TOMBSTONES_DIR, LAYOUT_NAME))
_TRANSCRIPT_KEYS = [
    "conversation_id",
    "customer_id",
    "item_count",
    "first_timestamp",
    "last_timestamp",
]
# Ids are Gladly's URL-safe base64; a quarantined line names a customer where the id stands
# between characters that cannot be part of an id (quotes, commas, the line's ends).
_ID_CHARS = "A-Za-z0-9_-"
_REGEX_IDS = 500  # ids per alternation, to keep each regular expression small
_QUARANTINE_NOTE = (
    "_quarantine: quarantined raw lines are matched by customer id only; a line that holds a "
    "purged customer's email, phone, name or text without the id is kept"
)

Drop = Callable[[pa.Table], pa.Array]
_EMPTY_ITEMS = ITEMS.empty_table().select(["customer_id", "conversation_id"])


@dataclass
class PurgeReport:
    """What one purge did, per dataset (every dataset of PURGED_DATASETS is a key).

    ``customers`` counts the distinct ids asked for (present or not); ``rows_removed`` counts
    transcript rows dropped (conversations shared with other customers are rebuilt, not
    counted); ``files_scanned`` counts files whose ids were read to decide; ``not_purged`` says
    in words which places the purge could not search or clean.
    """

    customers: int
    rows_removed: dict[str, int] = field(default_factory=dict)
    files_rewritten: dict[str, int] = field(default_factory=dict)
    files_deleted: dict[str, int] = field(default_factory=dict)
    files_scanned: int = 0
    seconds: float = 0.0
    not_purged: list[str] = field(default_factory=list)


def purge_customers(archive: Archive, customer_ids: Iterable[str]) -> PurgeReport:
    """Remove every row of these customers from the archive; safe to run again after a crash.

    Under the writer lock, after finishing any interrupted commit: transcripts (conversations
    shared with other customers are rebuilt from the items left), items and customers (files
    found through ``_index/customer_files``), enrichment snapshots and quarantined raw lines
    (searched), then the index rows. Each file is rewritten without the rows under a hidden
    temporary name and renamed over itself (same schema, metadata, compression and row groups),
    or deleted if nothing is left; files without such rows are not touched. Killed at any point,
    a rerun with the same ids finishes the job: the index, updated last, still lists what is
    left. Purging unknown or already purged ids is a no-op. Logs and errors carry ids and
    counts only.
    """
    started = time.perf_counter()
    ids = sorted({str(c) for c in customer_ids if c})
    report = PurgeReport(customers=len(ids))
    for name in PURGED_DATASETS:
        report.rows_removed[name] = report.files_rewritten[name] = report.files_deleted[name] = 0
    lock = archive.lock()
    lock.acquire()
    try:
        # A commit left half-done holds staged rows of these customers: finish it first.
        recover_staging(archive.fs, archive.root, archive.crash_hook)
        if ids:
            _Purge(archive, pa.array(ids, pa.string()), report).run()
        report.not_purged = _not_purged(archive)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - started
    log.info(
        "purge: %d customer(s); rows removed %s; files rewritten %s, deleted %s; %d scanned",
        report.customers,
        {k: v for k, v in report.rows_removed.items() if v},
        {k: v for k, v in report.files_rewritten.items() if v},
        {k: v for k, v in report.files_deleted.items() if v},
        report.files_scanned,
    )
    return report


def still_listed(archive: Archive, customer_ids: Iterable[str]) -> set[str]:
    """The customers among ``customer_ids`` that the customer-file index still lists. A purge
    updates the index last, so a customer listed there was not (completely) purged yet."""
    ids = sorted({str(c) for c in customer_ids if c})
    if not ids:
        return set()
    paths = list_files(archive.fs, archive.path(INDEX_DIR))
    where = pc.field("customer_id").isin(pa.array(ids, pa.string()))
    found = rows_by_file(archive.fs, paths, CUSTOMER_FILES, where, ["customer_id"])
    return {c for table in found.values() for c in table.column("customer_id").to_pylist()}


def _not_purged(archive: Archive) -> list[str]:
    notes = [_QUARANTINE_NOTE]
    selector = pafs.FileSelector(archive.root, allow_not_found=True)
    for info in archive.fs.get_file_info(selector):
        if info.base_name not in _KNOWN and not info.base_name.startswith("."):
            notes.append(
                f"{info.base_name}: not an archive dataset, not searched (a derived copy such "
                "as a cache may still hold the customers: rebuild or delete it)"
            )
    return sorted(notes)


def _paths(archive: Archive, index: pa.Table, dataset: str) -> list[str]:
    """The full paths of a dataset's files listed in these index rows."""
    listed = index.filter(pc.equal(index.column("dataset"), dataset)).column("path")
    return sorted(archive.path(p) for p in pc.unique(listed).to_pylist())


def _codec(metadata: pq.FileMetaData) -> str:
    if metadata.num_row_groups == 0 or metadata.num_columns == 0:
        return "zstd"
    return str(metadata.row_group(0).column(0).compression).lower()


class _Purge:
    """One purge's state: the ids, the report, the files deleted (for the index step)."""

    def __init__(self, archive: Archive, ids: pa.Array, report: PurgeReport) -> None:
        self.archive, self.fs, self.root = archive, archive.fs, archive.root
        self.ids, self.report = ids, report
        self.layout = read_layout(self.fs, self.root)
        self.deleted: list[str] = []  # relative paths of files left empty
        self.renamed_in: set[str] = set()  # directories whose renames are not yet durable
        self._done = 0

    def _is_purged(self, column: pa.ChunkedArray | pa.Array) -> pa.Array:
        return pc.fill_null(pc.is_in(column, value_set=self.ids), False)

    def _by_customer(self, table: pa.Table) -> pa.Array:
        return self._is_purged(table.column("customer_id"))

    def run(self) -> None:
        index, index_files = self._index_rows(self.ids)
        files = {name: _paths(self.archive, index, name) for name in _INDEXED}
        items = self._scan(files["items"], ITEMS, ["customer_id", "conversation_id"])
        convs = pa.concat_tables([*items.values(), _EMPTY_ITEMS]).column("conversation_id")
        counts = pa.table({"conversation_id": convs.drop_null()}).group_by("conversation_id")
        counts = counts.aggregate([("conversation_id", "count")])
        # Transcripts first: they are rebuilt from the items, which must still be there on a
        # rerun that follows a crash in this step.
        self._transcripts(files["transcripts"], counts.rename_columns(["conversation_id", "n"]))
        for path in sorted(items):
            self._rewrite("items", path, self._by_customer)
        for path in sorted(self._scan(files["customers"], CUSTOMERS, ["customer_id"])):
            self._rewrite("customers", path, self._by_customer)
        for name in _SCANNED:
            for path in sorted(self._scan(self._snapshots(name), DATASETS[name], ["customer_id"])):
                self._rewrite(name, path, self._by_customer)
        raw_match = self._raw_line_matcher()
        for path in list_files(self.fs, self.archive.path(QUARANTINE_DIR), recursive=True):
            table = pq.read_table(path, columns=["raw_line"], filesystem=self.fs)
            self.report.files_scanned += 1
            if pc.any(raw_match(table)).as_py():
                self._rewrite(QUARANTINE_DIR, path, raw_match)
        # The index last, once the renames are durable: until then a rerun (even after a power
        # loss) finds every file still holding the customers.
        fsync_dirs(self.fs, self.renamed_in)
        self.renamed_in.clear()
        gone = pa.array(self.deleted, pa.string())

        def stale(table: pa.Table) -> pa.Array:
            in_gone = pc.fill_null(pc.is_in(table.column("path"), value_set=gone), False)
            return pc.or_(self._by_customer(table), in_gone)

        for path in sorted(index_files):
            self._rewrite(INDEX_DIR, path, stale)
        fsync_dirs(self.fs, self.renamed_in)

    # -- finding ----------------------------------------------------------------------------

    def _snapshots(self, dataset: str) -> list[str]:
        """The enrichment files that may hold the customers: every recent run's, and in the
        folded tier only their buckets' (a folded row's bucket is its customer's)."""
        base = self.archive.path(dataset)
        folded = folded_dir(dataset)
        paths = [
            path
            for name in list_dirs(self.fs, base)
            if name != folded
            for path in list_files(self.fs, join(base, name))
        ]
        buckets = self.layout.buckets
        if buckets:
            mine = sorted(set(customer_bucket(self.ids, buckets).tolist()))
            for bucket in mine:
                paths += list_files(self.fs, join(base, folded_partition(dataset, bucket)))
        return paths

    def _scan(
        self,
        paths: list[str],
        schema: pa.Schema,
        columns: list[str],
        where: pc.Expression | None = None,
    ) -> dict[str, pa.Table]:
        """The rows matching ``where`` (default: of the customers), by file, of the files that
        hold any. Reads only ``columns`` (and the filter's), several files at a time."""
        self.report.files_scanned += len(paths)
        where = pc.field("customer_id").isin(self.ids) if where is None else where
        return rows_by_file(self.fs, paths, schema, where, columns)

    def _index_rows(self, customers: pa.Array) -> tuple[pa.Table, set[str]]:
        """Index rows of these customers whose data file exists, and the index files holding
        any row of theirs."""
        index_files = list_files(self.fs, self.archive.path(INDEX_DIR))
        where = pc.field("customer_id").isin(customers)
        found = self._scan(index_files, CUSTOMER_FILES, CUSTOMER_FILES.names, where)
        table = pa.concat_tables([*found.values(), CUSTOMER_FILES.empty_table()])
        paths = sorted(set(table.column("path").to_pylist()))
        infos = self.fs.get_file_info([self.archive.path(p) for p in paths])
        present = [p for p, i in zip(paths, infos, strict=True) if i.type == pafs.FileType.File]
        exists = pc.is_in(table.column("path"), value_set=pa.array(present, pa.string()))
        return table.filter(exists), set(found)

    def _transcripts(self, indexed: list[str], counts: pa.Table) -> None:
        """Drop the customers' transcript rows; rebuild conversations shared with others."""
        convs = counts.column("conversation_id").combine_chunks()
        mine = pc.field("customer_id").isin(self.ids) | pc.field("conversation_id").isin(convs)
        found = self._scan(indexed, TRANSCRIPTS, _TRANSCRIPT_KEYS, mine)
        seen = {c for rows in found.values() for c in rows["conversation_id"].to_pylist()}
        # A conversation whose latest item is another customer's is indexed under that
        # customer only: look for it in its bucket.
        buckets = {bucket_of(c) for c in set(convs.to_pylist()) - seen}
        transcripts = self.archive.path("transcripts")
        more = [
            path
            for bucket in sorted(buckets)
            for path in list_files(self.fs, join(transcripts, bucket_partition(bucket)))
            if path not in indexed
        ]
        found.update(self._scan(more, TRANSCRIPTS, _TRANSCRIPT_KEYS, mine))
        seen = {c for rows in found.values() for c in rows["conversation_id"].to_pylist()}
        if set(convs.to_pylist()) - seen:
            # ... or, once folded, in that customer's bucket: search the folded tier.
            folded = join(transcripts, folded_dir("transcripts"))
            rest = [p for p in list_files(self.fs, folded, recursive=True) if p not in found]
            found.update(self._scan(rest, TRANSCRIPTS, _TRANSCRIPT_KEYS, mine))
        if not found:
            return
        rows = pa.concat_tables(list(found.values()))
        ours = pc.index_in(rows["conversation_id"], value_set=convs)
        theirs = pc.fill_null(pc.take(counts["n"], ours), 0)
        # A row is wholly theirs when its customer is purged and it counts only their items;
        # anything else also holds other customers' items and is rebuilt from those.
        whole = pc.and_(self._by_customer(rows), pc.equal(rows["item_count"], theirs))
        shared = rows.filter(pc.invert(whole))
        built = self._rebuild(shared) if shared.num_rows else None
        if built is not None and built.num_rows:
            self._index_rebuilt(built, found)
        for path, table in found.items():
            drop_ids = table.column("conversation_id")
            extra = None
            if built is not None:
                extra = built.filter(pc.is_in(built["conversation_id"], value_set=drop_ids))

            def drop(batch: pa.Table, drop_ids: pa.ChunkedArray = drop_ids) -> pa.Array:
                return pc.is_in(batch.column("conversation_id"), value_set=drop_ids)

            self._rewrite("transcripts", path, drop, extra=extra)

    def _rebuild(self, shared: pa.Table) -> pa.Table:
        """Transcripts of the shared conversations from the other customers' items."""
        epoch = date(1970, 1, 1)
        first = np.asarray(pc.cast(shared["first_timestamp"], pa.date32()).cast(pa.int32()))
        last = np.asarray(pc.cast(shared["last_timestamp"], pa.date32()).cast(pa.int32()))
        items_dir = self.archive.path("items")
        paths = []
        for name in list_dirs(self.fs, items_dir):
            day = day_of_partition(name)
            if day is not None and np.any(
                (first <= (day - epoch).days) & ((day - epoch).days <= last)
            ):
                paths += list_files(self.fs, join(items_dir, name))
        through = self.layout.folded_through
        if through is not None and int(first.min()) <= (through - epoch).days:
            # The other customers' folded items: their buckets are unknown, search them all.
            paths += list_files(self.fs, join(items_dir, folded_dir("items")), recursive=True)
        dataset = ds.dataset(paths, schema=ITEMS, format="parquet", filesystem=self.fs)
        wanted = shared["conversation_id"].combine_chunks()
        items = dataset.to_table(
            columns=SOURCE_COLUMNS,
            filter=pc.field("conversation_id").isin(wanted)
            & ~pc.field("customer_id").isin(self.ids),
        )
        return build_transcripts(items, self.archive.clock())

    def _index_rebuilt(self, built: pa.Table, found: dict[str, pa.Table]) -> None:
        """List rebuilt rows' customers for their files before the rewrite (a surplus index row
        only costs a read; a missing one would hide a file from a later purge)."""
        where = {c: p for p, t in found.items() for c in t["conversation_id"].to_pylist()}
        both = pa.concat_arrays([self.ids, pc.unique(built["customer_id"])])
        known, _ = self._index_rows(both)
        jobs = dict(zip(known["path"].to_pylist(), known["job_id"].to_pylist(), strict=True))
        listed = set(zip(known["customer_id"].to_pylist(), known["path"].to_pylist(), strict=True))
        rows = []
        for conv, customer in zip(
            built["conversation_id"].to_pylist(), built["customer_id"].to_pylist(), strict=True
        ):
            path = relative(self.root, where[conv])
            if (customer, path) not in listed:
                listed.add((customer, path))
                rows.append((customer, "transcripts", path, jobs.get(path, "purge")))
        if not rows:
            return
        table = pa.Table.from_pylist(
            [dict(zip(CUSTOMER_FILES.names, row, strict=True)) for row in rows],
            schema=CUSTOMER_FILES,
        )
        prefix = f"part-purge-{uuid.uuid4().hex[:12]}"
        with DatasetWriter(
            self.fs, self.archive.path(INDEX_DIR), INDEX_DIR, CUSTOMER_FILES, file_prefix=prefix
        ) as writer:
            writer.write_batches(table.to_batches())

    def _raw_line_matcher(self) -> Drop:
        ids = [re.escape(i) for i in self.ids.to_pylist()]
        patterns = [
            f"(?:^|[^{_ID_CHARS}])(?:{'|'.join(ids[n : n + _REGEX_IDS])})(?:[^{_ID_CHARS}]|$)"
            for n in range(0, len(ids), _REGEX_IDS)
        ]

        def drop(table: pa.Table) -> pa.Array:
            lines = table.column("raw_line")
            mask = pa.array(np.zeros(len(lines), dtype=bool))
            for pattern in patterns:
                mask = pc.or_(mask, pc.match_substring_regex(lines, pattern=pattern))
            return mask

        return drop

    # -- rewriting --------------------------------------------------------------------------

    def _rewrite(self, dataset: str, path: str, drop: Drop, extra: pa.Table | None = None) -> None:
        """Rewrite ``path`` without the rows ``drop`` marks (plus ``extra``), or delete it."""
        fs = self.fs
        tmp = temp_name(path)
        kept = removed = 0
        try:
            with fs.open_input_file(path) as handle, fs.open_output_stream(tmp) as sink:
                source = pq.ParquetFile(handle)
                schema = source.schema_arrow
                writer = pq.ParquetWriter(sink, schema, compression=_codec(source.metadata))
                # Row group by row group: bounded memory, and the file keeps its row groups.
                for number in range(source.num_row_groups):
                    group = source.read_row_group(number)
                    mask = pc.fill_null(drop(group), False)
                    part = group.filter(pc.invert(mask))
                    removed += group.num_rows - part.num_rows
                    if part.num_rows:
                        writer.write_table(part, row_group_size=part.num_rows)
                        kept += part.num_rows
                if extra is not None and extra.num_rows:
                    table = extra.select(schema.names).cast(schema)
                    writer.write_table(table, row_group_size=table.num_rows)
                    kept += table.num_rows
                    removed -= table.num_rows
                writer.close()
            if kept:
                fsync_file(fs, tmp)
                fs.move(tmp, path)
                self.report.files_rewritten[dataset] += 1
            else:
                delete_if_exists(fs, tmp)
                fs.delete_file(path)
                self.deleted.append(relative(self.root, path))
                self.report.files_deleted[dataset] += 1
        except BaseException:
            delete_if_exists(fs, tmp)
            raise
        self.renamed_in.add(path.rsplit("/", 1)[0])
        self.report.rows_removed[dataset] += max(0, removed)
        self._done += 1
        if self.archive.crash_hook is not None:
            self.archive.crash_hook(f"purge:{dataset}:{self._done}")
