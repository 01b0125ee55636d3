"""Erase customers from the archive: rewrite only the files holding their rows, the index last."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.catalog import CATALOG_NAME, refresh_catalog
from gladly_archive.commit import recover_staging
from gladly_archive.fs import join, list_dirs, list_files, rows_by_file
from gladly_archive.layout import (
    INDEX_DIR,
    LAYOUT_NAME,
    MANIFEST_DIR,
    QUARANTINE_DIR,
    STAGING_DIR,
    customer_bucket,
    folded_dir,
    folded_partition,
)
from gladly_archive.recent_keys import refresh_recent_keys
from gladly_archive.refill_watch import REFILL_WATCH_DIR
from gladly_archive.rewrite import ArchiveRewrite, Drop, dropping, raw_line_matcher
from gladly_archive.schemas import CUSTOMER_FILES, CUSTOMERS, DATASETS, ITEMS
from gladly_archive.tombstones import TOMBSTONES_DIR
from gladly_archive.transcripts import build_transcripts

__all__ = [
    "PURGED_DATASETS",
    "Progress",
    "PurgeReport",
    "purge_customers",
    "purge_phase",
    "still_listed",
]

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
_KNOWN = {*_INDEXED, *_SCANNED, QUARANTINE_DIR, "_index", MANIFEST_DIR}
_KNOWN.update(("agents", "topics", "inboxes"))  # the organisation's directory: no customer rows
_KNOWN.update((STAGING_DIR, TOMBSTONES_DIR, LAYOUT_NAME))
_KNOWN.add(REFILL_WATCH_DIR)  # unlinked details: ids and keyed hashes, like tombstones
_KNOWN.add("_enrichment")  # enrichment's watermark: times only, no customer rows
_KNOWN.add(CATALOG_NAME)  # DuckDB views over the datasets: their definitions, never a row
# The audit log, the evidence packs built from it and the plans hold ids, keyed hashes and
# counts by design, never an email, phone, name or text: nothing in them to purge, so a purge
# does not warn about them (tombstones keep ids the same way).
_KNOWN.update(("_audit", "_evidence", "_plans"))
_TRANSCRIPT_KEYS = [
    "conversation_id",
    "customer_id",
    "item_count",
    "first_timestamp",
    "last_timestamp",
]
_QUARANTINE_NOTE = (
    "_quarantine: quarantined raw lines are matched by customer id only; a line that holds a "
    "purged customer's email, phone, name or text without the id is kept"
)

_EMPTY_ITEMS = ITEMS.empty_table().select(["customer_id", "conversation_id"])

# progress(phase, done, total): a display's callback; phases name datasets, never a customer.
Progress = Callable[[str, int, int], None]
_LABELS = {QUARANTINE_DIR: "quarantine", INDEX_DIR: "index"}


def purge_phase(dataset: str) -> str:
    """The progress phase of a dataset's files: progress(purge_phase(d), files done, files)."""
    return f"purge: {_LABELS.get(dataset, dataset)} (files)"


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


def purge_customers(
    archive: Archive, customer_ids: Iterable[str], *, progress: Progress | None = None
) -> PurgeReport:
    """Remove every row of these customers from the archive; safe to run again after a crash.

    Under the writer lock, after finishing any interrupted commit: transcripts (conversations
    shared with other customers are rebuilt from the items left), items and customers (files
    found through ``_index/customer_files``), enrichment snapshots and quarantined raw lines
    (searched), then the index rows. Each file is rewritten without the rows under a hidden
    temporary name and renamed over itself (same schema, metadata, compression and row groups),
    or deleted if nothing is left; files without such rows are not touched. Killed at any point,
    a rerun with the same ids finishes the job: the index, updated last, still lists what is
    left. Purging unknown or already purged ids is a no-op. Logs and errors carry ids and
    counts only. `progress` hears, per dataset with files to visit, the files done
    (`purge_phase`).
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
            _Purge(archive, pa.array(ids, pa.string()), report, progress).run()
            refresh_recent_keys(archive.fs, archive.root, archive.crash_hook)
        report.not_purged = _not_purged(archive)
    finally:
        lock.release()
    refresh_catalog(archive.fs, archive.root)  # a dataset may have lost its last file
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


class _Purge(ArchiveRewrite):
    """One purge's state: the ids, the report, and the shared rewriting machinery."""

    def __init__(
        self, archive: Archive, ids: pa.Array, report: PurgeReport, progress: Progress | None
    ) -> None:
        super().__init__(archive, ids, "purge")
        self.rows_changed, self.files_rewritten = report.rows_removed, report.files_rewritten
        self.files_deleted, self.report = report.files_deleted, report
        self.progress = progress

    def _files(self, dataset: str, paths: Iterable[str]) -> Iterator[str]:
        """`paths`, in their order, the progress told of each one done."""
        todo = list(paths)
        if self.progress is None or not todo:
            yield from todo
            return
        phase = purge_phase(dataset)
        self.progress(phase, 0, len(todo))
        for done, path in enumerate(todo, 1):
            yield path
            self.progress(phase, done, len(todo))

    def _by_customer(self, table: pa.Table) -> pa.Array:
        return self.is_ours(table.column("customer_id"))

    def _rewrite(self, dataset: str, path: str, drop: Drop, extra: pa.Table | None = None) -> None:
        self.rewrite(dataset, path, dropping(drop), extra)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.report.files_scanned += self.files_scanned

    def _run(self) -> None:
        index, index_files = self.index_rows(self.ids)
        index = self.existing(index)
        files = {name: self.listed(index, name) for name in _INDEXED}
        items = self.scan(files["items"], ITEMS, ["customer_id", "conversation_id"])
        convs = pa.concat_tables([*items.values(), _EMPTY_ITEMS]).column("conversation_id")
        counts = pa.table({"conversation_id": convs.drop_null()}).group_by("conversation_id")
        counts = counts.aggregate([("conversation_id", "count")])
        # Transcripts first: they are rebuilt from the items, which must still be there on a
        # rerun that follows a crash in this step.
        self._transcripts(files["transcripts"], counts.rename_columns(["conversation_id", "n"]))
        for path in self._files("items", sorted(items)):
            self._rewrite("items", path, self._by_customer)
        customers = self.scan(files["customers"], CUSTOMERS, ["customer_id"])
        for path in self._files("customers", sorted(customers)):
            self._rewrite("customers", path, self._by_customer)
        for name in _SCANNED:
            found = self.scan(self._snapshots(name), DATASETS[name], ["customer_id"])
            for path in self._files(name, sorted(found)):
                self._rewrite(name, path, self._by_customer)
        raw_match = raw_line_matcher(self.ids.to_pylist())
        quarantined = list_files(self.fs, self.archive.path(QUARANTINE_DIR), recursive=True)
        for path in self._files(QUARANTINE_DIR, quarantined):
            table = pq.read_table(path, columns=["raw_line"], filesystem=self.fs)
            self.files_scanned += 1
            if pc.any(raw_match(table)).as_py():
                self._rewrite(QUARANTINE_DIR, path, raw_match)
        # The index last, once the renames are durable: until then a rerun (even after a power
        # loss) finds every file still holding the customers.
        self.durable()
        gone = pa.array(self.deleted, pa.string())

        def stale(table: pa.Table) -> pa.Array:
            in_gone = pc.fill_null(pc.is_in(table.column("path"), value_set=gone), False)
            return pc.or_(self._by_customer(table), in_gone)

        for path in self._files(INDEX_DIR, sorted(index_files)):
            self._rewrite(INDEX_DIR, path, stale)
        self.durable()

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

    def _transcripts(self, indexed: list[str], counts: pa.Table) -> None:
        """Drop the customers' transcript rows; rebuild conversations shared with others."""
        convs = counts.column("conversation_id").combine_chunks()
        mine = pc.field("customer_id").isin(self.ids) | pc.field("conversation_id").isin(convs)
        found = self.find_transcripts(indexed, convs, mine, _TRANSCRIPT_KEYS)
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
            self.index_rebuilt(built, found)
        for path in self._files("transcripts", found):
            drop_ids = found[path].column("conversation_id")
            extra = None
            if built is not None:
                extra = built.filter(pc.is_in(built["conversation_id"], value_set=drop_ids))

            def drop(batch: pa.Table, drop_ids: pa.ChunkedArray = drop_ids) -> pa.Array:
                return pc.is_in(batch.column("conversation_id"), value_set=drop_ids)

            self._rewrite("transcripts", path, drop, extra=extra)

    def _rebuild(self, shared: pa.Table) -> pa.Table:
        """Transcripts of the shared conversations from the other customers' items."""
        wanted = shared["conversation_id"].combine_chunks()
        where = pc.field("conversation_id").isin(wanted) & ~pc.field("customer_id").isin(self.ids)
        return build_transcripts(self.conversation_items(shared, where), self.archive.clock())
