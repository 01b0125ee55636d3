"""Commit steps 1-3: replace duplicate items, rebuild touched transcripts, update the file index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.folded_keys import FoldedKeys, folded_keys, folded_paths
from gladly_archive.fs import delete_if_exists, join, list_dirs, list_files, rows_by_file
from gladly_archive.layout import (
    INDEX_DIR,
    day_of_partition,
    folded_dir,
    read_layout,
    relative,
)
from gladly_archive.recent_keys import (
    RecentKeys,
    Stamp,
    file_keys,
    keys_of_ids,
    load_recent_keys,
    recent_listing,
    save_recent_keys,
)
from gladly_archive.schemas import CUSTOMER_FILES, DATASETS, ITEMS, TRANSCRIPTS
from gladly_archive.transcripts import (
    RECENT_PARTITION,
    RECENT_TRANSCRIPT_FILE_BYTES,
    SOURCE_COLUMNS,
    build_transcripts,
    continue_transcripts,
    is_recent_partition,
)
from gladly_archive.writer import DatasetWriter, WrittenFile

__all__ = ["KEPT_COLUMNS", "KEPT_DISTINCT", "CommitPlanner", "WriterFactory"]


# (dataset directory, partition directory) -> a writer into the job's staging area.
WriterFactory = Callable[[str, str], DatasetWriter]

# What a commit reads of its staged files, kept by their writers instead: the item ids in row
# order (WrittenFile.columns), the conversations and customers as distinct values (.distinct).
KEPT_COLUMNS = ("item_id",)
KEPT_DISTINCT = ("conversation_id", "customer_id")
# The datasets whose files hold customers' rows, and so are listed in the customer file index.
INDEXED_DATASETS = ("items", "customers", "transcripts")
# Small files of a directory are merged once this many have gathered there, so commits that add
# a little to many directories neither leave them full of tiny files nor rewrite them each time.
COMPACT_MIN_FILES = 8
_READ_BATCH_ROWS = 64 * 1024
# A file this small is read whole, once, when a commit takes old transcript rows out of it (the
# recent tier's files are 512 kB at most); a bigger one is read a batch at a time.
WHOLE_READ_BYTES = 8 << 20
# Old transcript rows taken out of their files are kept whole up to this many bytes (a day's job
# continues a few thousand conversations: a few MB); past it, only their narrow columns, and the
# rows a continued conversation needs are read again (a re-export of a big backfill).
TAKEN_ROWS_BYTES = 64 << 20
# New index rows are written this many at a time (update_index).
INDEX_BATCH_ROWS = 64 * 1024
# A recent transcript file this small is merged with its like (transcripts.writer_limits).
SMALL_RECENT_TRANSCRIPTS = RECENT_TRANSCRIPT_FILE_BYTES // 4
# About this many of a job's items are rebuilt into transcripts at a time (bounded memory): on a
# first export of 306 k items (bench/export_end_to_end.py --phases) 100 k peaked the commit at
# 534 MB RSS, 50 k at 450-456 MB, in the same time (each group reads only its own day files).
TRANSCRIPT_GROUP_ITEMS = 50_000
# What an existing transcript row tells a rebuild: where its conversation's items lie.
_OLD_COLUMNS = ["conversation_id", "customer_id", "first_timestamp", "last_timestamp"]
_OLD_TRANSCRIPTS = pa.schema(
    [
        TRANSCRIPTS.field(n)
        for n in ("conversation_id", "customer_id", "first_timestamp", "last_timestamp")
    ]
)


def _column(fs: pafs.FileSystem, path: str, name: str) -> pa.ChunkedArray:
    return pq.read_table(path, columns=[name], filesystem=fs).column(0)


def _staged_column(fs: pafs.FileSystem, staged: WrittenFile, name: str) -> pa.ChunkedArray:
    """A staged file's column: as its writer kept it (KEPT_COLUMNS), else read from the file."""
    kept = staged.columns.get(name)
    return kept if kept is not None else _column(fs, staged.path, name)


def _staged_distinct(fs: pafs.FileSystem, staged: WrittenFile, name: str) -> pa.Array:
    """A staged file's distinct non-NULL values of a column: as its writer kept them
    (KEPT_DISTINCT), else read from the file."""
    kept = staged.distinct.get(name)
    if kept is not None:
        return kept
    return pc.unique(_column(fs, staged.path, name).drop_null())


def _batches(fs: pafs.FileSystem, path: str) -> Iterator[pa.RecordBatch]:
    """A file's rows in bounded batches (never the whole file in memory)."""
    with fs.open_input_file(path) as handle:
        yield from pq.ParquetFile(handle).iter_batches(batch_size=_READ_BATCH_ROWS)


def _read_whole(fs: pafs.FileSystem, path: str) -> pa.Table:
    """A (small) file's rows, all at once."""
    with fs.open_input_file(path) as handle:
        return pq.ParquetFile(handle).read()


@dataclass(frozen=True)
class _Recent:
    """The recent transcript files a commit found (full path -> stamp), the key file, the
    files it covers (full path -> its number there) and the keys read from the others."""

    listing: dict[str, Stamp]
    index: RecentKeys
    covered: dict[str, int]
    learned: dict[str, tuple[Stamp, np.ndarray]]


@dataclass
class CommitPlanner:
    """Computes a job's replacements into its staging area and collects the files they supersede.

    ``staged`` maps dataset directory -> the job's staged files (updated in place as files are
    rewritten); ``deletes`` collects final files that this commit replaces.
    """

    fs: pafs.FileSystem
    root: str
    staging_root: str
    job_id: str
    staged: dict[str, list[WrittenFile]]
    make_writer: WriterFactory
    compact_below_bytes: int
    compact_min_files: int = COMPACT_MIN_FILES
    deletes: list[str] = field(default_factory=list)
    duplicates_replaced: int = 0  # within the job and in the archive
    duplicates_within_job: int = 0
    conversations_rebuilt: int = 0
    _removed_conversations: set[str] = field(default_factory=set)
    # Files written by rewriting existing ones (their rows are not the job's).
    _rewritten: set[str] = field(default_factory=set)
    _keys: FoldedKeys | None = None
    _recent: _Recent | None = None
    # The old transcript rows of the touched conversations, by the file they were taken out of
    # (whole, or their narrow columns past TAKEN_ROWS_BYTES).
    _taken: dict[str, pa.Table] = field(default_factory=dict)
    _taken_bytes: int = 0
    hook: Callable[[str], None] | None = None  # the archive's crash hook (tests)

    def _folded_keys(self) -> FoldedKeys:
        """The folded tier's conversation keys (read, or rebuilt if missing, once a commit)."""
        if self._keys is None:
            self._keys = folded_keys(self.fs, self.root, self.hook)
        return self._keys

    def _to_fold(self, paths: list[str], below: int | None = None) -> set[str]:
        """The small files among ``paths``, if there are enough of them to be worth merging."""
        if not paths:
            return set()
        below = self.compact_below_bytes if below is None else below
        infos = self.fs.get_file_info(paths)
        small = {i.path for i in infos if i.size is not None and i.size < below}
        return small if len(small) >= self.compact_min_files else set()

    # -- step 1: dedupe, latest wins ------------------------------------------------------

    def dedupe_items(self) -> None:
        """Drop earlier copies of an item within the job, then replace existing copies: in the
        item's day directory and, for days already folded, anywhere in the folded tier (an item
        keeps its day, but its customer id changes when Gladly merges customers)."""
        through = read_layout(self.fs, self.root).folded_through
        early: list[pa.Array] = []
        by_partition: dict[str, list[WrittenFile]] = {}
        for staged in self.staged.get("items", []):
            by_partition.setdefault(staged.partition, []).append(staged)
        for partition in sorted(by_partition):
            ids = self._dedupe_within_job(partition, by_partition[partition])
            self._replace_existing(partition, ids)
            day = day_of_partition(partition)
            if through is not None and day is not None and day <= through:
                early.append(ids)
        if early:
            ids = pa.concat_arrays(early)
            for path in sorted(self._folded_hits("items", pc.field("item_id").isin(ids))):
                partition = relative(join(self.root, "items"), path).rsplit("/", 1)[0]
                self._rewrite_without(path, partition, ids)

    def _folded_hits(
        self, dataset: str, where: pc.Expression, columns: list[str] | None = None
    ) -> dict[str, pa.Table]:
        """The rows matching ``where`` in the dataset's folded tier, by file (files with any)."""
        paths = list_files(self.fs, join(self.root, dataset, folded_dir(dataset)), recursive=True)
        return rows_by_file(self.fs, paths, DATASETS[dataset], where, columns or [])

    def _dedupe_within_job(self, partition: str, files: list[WrittenFile]) -> pa.Array:
        """Keep the last row of every item id in this partition's staged ``files``; return the
        ids."""
        columns = [_staged_column(self.fs, f, "item_id") for f in files]
        ids = pa.chunked_array(
            [chunk for column in columns for chunk in column.chunks], pa.string()
        ).combine_chunks()
        rows = len(ids)
        if pc.count_distinct(ids, mode="all").as_py() == rows:
            return ids  # the common case, found without a grouping (a backfill's 1,083 days)
        last = (
            pa.table({"item_id": ids, "seq": pa.array(np.arange(rows, dtype=np.int64))})
            .group_by("item_id")
            .aggregate([("seq", "max")])
        )
        if last.num_rows == rows:
            return ids
        keep = np.zeros(rows, dtype=bool)
        keep[np.asarray(last.column("seq_max"))] = True
        self.duplicates_replaced += rows - last.num_rows
        self.duplicates_within_job += rows - last.num_rows
        writer = self.make_writer("items", partition)
        offset = 0
        for staged, column in zip(files, columns, strict=True):
            mask = keep[offset : offset + len(column)]
            offset += len(column)
            if mask.all():
                continue
            start = 0
            for batch in _batches(self.fs, staged.path):
                part = mask[start : start + batch.num_rows]
                start += batch.num_rows
                writer.write_batch(batch.filter(pa.array(part)))
            self.staged["items"].remove(staged)
            delete_if_exists(self.fs, staged.path)
        writer.close()
        return pc.filter(ids, pa.array(keep))

    def _replace_existing(self, partition: str, ids: pa.Array) -> None:
        """Rewrite existing files of the partition without the rows this job replaces.

        Small files of the partition are folded into the same rewrite, so per-customer runs
        that add a few rows to many partitions don't leave them full of tiny files.
        """
        writer: DatasetWriter | None = None
        paths = list_files(self.fs, join(self.root, "items", partition))
        fold = self._to_fold(paths)
        for path in paths:
            hits = pc.is_in(_column(self.fs, path, "item_id"), value_set=ids)
            if not pc.any(hits).as_py() and path not in fold:
                continue
            writer = writer or self.make_writer("items", partition)
            self._rewrite_without(path, partition, ids, writer)
        if writer is not None:
            writer.close()
            self._rewritten.update(f.path for f in writer.written)

    def _rewrite_without(
        self, path: str, partition: str, ids: pa.Array, writer: DatasetWriter | None = None
    ) -> None:
        """Copy an existing items file without the rows of ``ids`` (replaced by this job)."""
        own = writer is None
        writer = writer or self.make_writer("items", partition)
        for batch in _batches(self.fs, path):
            replaced = pc.is_in(batch.column("item_id"), value_set=ids)
            gone = batch.filter(replaced)
            self._removed_conversations.update(
                gone.column("conversation_id").drop_null().to_pylist()
            )
            self.duplicates_replaced += gone.num_rows
            writer.write_batch(batch.filter(pc.invert(replaced)))
        self.deletes.append(path)
        if own:
            writer.close()
            self._rewritten.update(f.path for f in writer.written)

    # -- step 2: transcripts --------------------------------------------------------------

    def rebuild_transcripts(self, built_at: datetime) -> None:
        """Rebuild the row of every conversation this job touched: continued, or built from
        all of its items (``_rebuild_group``).

        Existing rows are looked for in the recent tier, then in the folded tier; rebuilt rows
        go to the recent tier (a later fold moves them back once old).
        """
        touched_set = set(self._removed_conversations)
        for staged in self.staged.get("items", []):
            if staged.path in self._rewritten:
                continue  # rows already in the archive, not the job's
            touched_set.update(_staged_distinct(self.fs, staged, "conversation_id").to_pylist())
        if not touched_set:
            return
        touched = pa.array(sorted(touched_set), pa.string())
        base = join(self.root, "transcripts")
        recent = sorted(self._recent_state().listing)
        small = min(self.compact_below_bytes, SMALL_RECENT_TRANSCRIPTS)
        merged = self._to_fold(recent, small)
        # One read of each recent file that may hold old rows (the key file says which) or is
        # merged on the way: its other rows are carried to the writer, its old rows taken out.
        writer = self.make_writer("transcripts", RECENT_PARTITION)
        holding = self._holding(keys_of_ids(touched))
        self._take_out(writer, sorted(holding | merged), touched, touched, merged)
        carried = [p for p in recent if p in self._taken or p in merged]
        sizes = self.fs.get_file_info(carried) if carried else []
        if sum(i.size or 0 for i in sizes) >= small:
            # Big files lose a few rows; the rebuilt rows (the conversations the next commits
            # continue) go to a small file of their own, so that those commits rewrite it
            # rather than the big ones again (FRESH_TRANSCRIPT_DAYS).
            writer.close()
            writer = self.make_writer("transcripts", RECENT_PARTITION)
        seen = {c for t in self._taken.values() for c in t["conversation_id"].to_pylist()}
        unseen = sorted(touched_set - seen)
        buckets = self._folded_keys().buckets_of(unseen)
        if len(buckets):
            # Old rows found in the folded tier: their files lose them (rebuilt below).
            wanted = pa.array(unseen, pa.string())
            by_partition: dict[str, list[str]] = {}
            for path in folded_paths(self.fs, self.root, "transcripts", buckets):
                by_partition.setdefault(relative(base, path).rsplit("/", 1)[0], []).append(path)
            for partition, paths in sorted(by_partition.items()):
                folded_writer = self.make_writer("transcripts", partition)
                self._take_out(folded_writer, paths, touched, wanted, set())
                folded_writer.close()
        old = pa.concat_tables(
            [
                *(t.select(_OLD_COLUMNS).cast(_OLD_TRANSCRIPTS) for t in self._taken.values()),
                _OLD_TRANSCRIPTS.empty_table(),
            ]
        )
        # A big job's conversations are rebuilt a group at a time, so memory holds about
        # TRANSCRIPT_GROUP_ITEMS items whatever the job's size (a day's job: one group).
        for group, job_files in self._groups(touched):
            self._rebuild_group(group, old, job_files, writer, built_at)
        writer.close()

    def _take_out(
        self,
        writer: DatasetWriter,
        paths: list[str],
        dropped: pa.Array,
        wanted: pa.Array,
        always: set[str],
    ) -> None:
        """Read each file once: if it holds rows of ``wanted`` conversations (or is in
        ``always``), copy its rows but those of ``dropped`` to ``writer``, keep its rows of
        ``wanted`` (whole while they fit TAKEN_ROWS_BYTES, else their narrow columns) and
        replace it; other files are left as they are."""
        infos = self.fs.get_file_info(paths) if paths else []
        for path, info in zip(paths, infos, strict=True):
            # A small file (the recent tier's) is read whole, once; a big one (a folded
            # bucket's) its ids first, then its rows a batch at a time if it holds any.
            whole = _read_whole(self.fs, path) if (info.size or 0) <= WHOLE_READ_BYTES else None
            ids = (
                whole["conversation_id"]
                if whole is not None
                else _column(self.fs, path, "conversation_id")
            )
            if not pc.any(pc.is_in(ids, value_set=wanted)).as_py() and path not in always:
                continue
            # A whole file's kept rows are written at once, not as its row groups came: the
            # writer makes each batch a row group, and many small ones cost twice the time.
            batches = (
                whole.combine_chunks().to_batches()
                if whole is not None
                else _batches(self.fs, path)
            )
            rows: list[pa.RecordBatch] = []
            for batch in batches:
                kept = pc.invert(pc.is_in(batch["conversation_id"], value_set=dropped))
                writer.write_batch(batch.filter(kept))
                found = batch.filter(pc.is_in(batch["conversation_id"], value_set=wanted))
                if found.num_rows:
                    rows.append(found)
            self.deletes.append(path)
            if not rows:
                continue
            taken = pa.Table.from_batches(rows)
            if self._taken_bytes + taken.nbytes > TAKEN_ROWS_BYTES:
                taken = taken.select(_OLD_COLUMNS)  # _old_rows reads the rest again
            self._taken_bytes += taken.nbytes
            self._taken[path] = taken

    def _recent_state(self) -> _Recent:
        """The recent transcript files, their keys known: from the key file for the files it
        covers, read from the others (recent_keys); found once a commit."""
        if self._recent is None:
            listing = recent_listing(self.fs, self.root)
            index = load_recent_keys(self.fs, self.root)
            covered = index.covered(self.root, listing)
            learned = {
                path: (stamp, file_keys(self.fs, path))
                for path, stamp in listing.items()
                if path not in covered
            }
            self._recent = _Recent(listing, index, covered, learned)
        return self._recent

    def _holding(self, wanted: np.ndarray) -> set[str]:
        """The recent transcript files that may hold any of the ``wanted`` keys."""
        recent = self._recent_state()
        found = recent.index.holding(recent.covered, wanted)
        for path, (_, keys) in recent.learned.items():
            if np.isin(wanted, keys, assume_unique=True).any():
                found.add(path)
        return found

    def save_recent_keys(self) -> None:
        """After the renames: save the recent tier's key file, covering the files it covered
        that are still there, those whose keys this commit read, and those it wrote (their keys
        from their writers). Files it cannot vouch for are left for the next commit to read."""
        listing = recent_listing(self.fs, self.root)
        if self._recent is None:
            index, learned = load_recent_keys(self.fs, self.root), {}
        else:
            index, learned = self._recent.index, self._recent.learned
        keep = index.covered(self.root, listing)
        added = {p: v for p, v in learned.items() if listing.get(p) == v[0]}
        for staged in self.staged.get("transcripts", []):
            ids = staged.distinct.get("conversation_id")
            path = join(self.root, relative(self.staging_root, staged.path))
            if ids is not None and is_recent_partition(staged.partition) and path in listing:
                added[path] = (listing[path], keys_of_ids(ids))
        keep = {p: n for p, n in keep.items() if p not in added}
        save_recent_keys(self.fs, self.root, index.updated(self.root, keep, added), self.hook)

    def _groups(self, touched: pa.Array) -> list[tuple[pa.Array, set[str] | None]]:
        """The touched conversations in groups of about TRANSCRIPT_GROUP_ITEMS of the job's
        items, each with the staged item files holding any of its conversations (None: all).

        Conversations are grouped by where they first appear in the staged items, day by day,
        so that a group's items lie in a few of a backfill's day files, and each file is read
        about once, not once a group. Conversations not among the staged items (another
        conversation now holds their replaced items) join the first group.
        """
        files = sorted(self.staged.get("items", []), key=lambda f: (f.partition, f.path))
        if sum(f.rows for f in files) <= TRANSCRIPT_GROUP_ITEMS:
            return [(touched, None)]
        # Each file's conversations (in the order they first appear in it), and about where
        # each first appears among the job's items: the file's start, plus its share of the
        # file's rows (so that one big file is split too).
        each = [_staged_distinct(self.fs, f, "conversation_id") for f in files]
        places = [
            start + np.arange(len(ids), dtype=np.int64) * f.rows // max(1, len(ids))
            for start, f, ids in zip(
                np.cumsum([0] + [f.rows for f in files[:-1]]), files, each, strict=True
            )
        ]
        ids = pa.chunked_array(each, pa.string())
        first = (
            pa.table({"conversation_id": ids, "start": pa.array(np.concatenate(places))})
            .group_by("conversation_id")
            .aggregate([("start", "min")])
        )
        at = pc.take(first["start_min"], pc.index_in(touched, value_set=first["conversation_id"]))
        group_of = np.asarray(pc.fill_null(at, 0), dtype=np.int64) // TRANSCRIPT_GROUP_ITEMS
        numbers = np.unique(group_of)
        # Each file's conversations' groups (-1: not touched), then each group's files.
        where = pc.index_in(ids, value_set=touched)
        entry_group = np.asarray(
            pc.fill_null(pc.take(pa.array(group_of), where), -1), dtype=np.int64
        )
        holding: dict[int, set[str]] = {int(n): set() for n in numbers}
        offset = 0
        for staged, conversations in zip(files, each, strict=True):
            for number in np.unique(entry_group[offset : offset + len(conversations)]):
                if number >= 0:
                    holding[int(number)].add(staged.path)
            offset += len(conversations)
        return [(touched.filter(pa.array(group_of == n)), holding[int(n)]) for n in numbers]

    def _rebuild_group(
        self,
        group: pa.Array,
        old: pa.Table,
        job_files: set[str] | None,
        writer: DatasetWriter,
        built_at: datetime,
    ) -> None:
        """Rebuild a ``group`` of touched conversations and write their rows to ``writer``.

        A conversation the job only continues (its row found once, none of its items replaced,
        every new item later than its last) is its old row and the new lines
        (``continue_transcripts``): none of its old items is read, however long ago it began.
        The others are built from all their items (the job's and the archive's)."""
        group_old = old.filter(pc.is_in(old["conversation_id"], value_set=group))
        own = self._job_items(group, job_files)
        extend = self._continued(group_old, own)
        rest = group.filter(pc.invert(pc.is_in(group, value_set=extend)))
        items = [own.filter(pc.is_in(own["conversation_id"], value_set=extend))]
        if len(rest):
            rest_old = group_old.filter(pc.is_in(group_old["conversation_id"], value_set=rest))
            mine = own.filter(pc.is_in(own["conversation_id"], value_set=rest))
            items.append(self._items_of(rest, rest_old, job_files, mine))
        # Built in one call (and written as one batch): the continued conversations' rows
        # from their new items alone, the others' from all their items.
        built = build_transcripts(pa.concat_tables(items), built_at)
        if len(extend):
            continued = pc.is_in(built["conversation_id"], value_set=extend)
            built = pa.concat_tables(
                [
                    continue_transcripts(self._old_rows(extend), built.filter(continued)),
                    built.filter(pc.invert(continued)),
                ]
            )
        self._write_rows(writer, built)

    def _write_rows(self, writer: DatasetWriter, built: pa.Table) -> None:
        self.conversations_rebuilt += built.num_rows
        for batch in built.combine_chunks().to_batches():
            writer.write_batch(batch)

    def _job_items(self, group: pa.Array, job_files: set[str] | None) -> pa.Table:
        """The group's items among the job's own staged files (not the archive's files it
        rewrote): ``job_files`` of them (None: all)."""
        paths = [
            f.path
            for f in self.staged.get("items", [])
            if f.path not in self._rewritten and (job_files is None or f.path in job_files)
        ]
        dataset = ds.dataset(paths, schema=ITEMS, format="parquet", filesystem=self.fs)
        return dataset.to_table(
            columns=SOURCE_COLUMNS, filter=pc.field("conversation_id").isin(group)
        )

    def _continued(self, old: pa.Table, own: pa.Table) -> pa.Array:
        """The conversations whose rows can be continued with the job's items ``own``: one
        old row, no item replaced, and every new item later than the row's last."""
        none = pa.array([], pa.string())
        if not old.num_rows or not own.num_rows:
            return none
        counts = old.group_by("conversation_id").aggregate([("last_timestamp", "count")])
        single = counts.filter(pc.equal(counts["last_timestamp_count"], 1))["conversation_id"]
        if self._removed_conversations:
            removed = pa.array(sorted(self._removed_conversations), pa.string())
            single = single.filter(pc.invert(pc.is_in(single, value_set=removed)))
        firsts = own.group_by("conversation_id").aggregate([("timestamp", "min")])
        at = pc.index_in(firsts["conversation_id"], value_set=old["conversation_id"])
        last = pc.take(old["last_timestamp"], at)
        later = pc.fill_null(pc.greater(firsts["timestamp_min"], last), False)
        ok = pc.and_(later, pc.is_in(firsts["conversation_id"], value_set=single))
        return firsts["conversation_id"].filter(ok).combine_chunks()

    def _old_rows(self, conversations: pa.Array) -> pa.Table:
        """The whole old rows of these conversations: as taken out of their files, or read
        again from the files whose rows were kept narrow (TAKEN_ROWS_BYTES)."""
        found: list[pa.Table] = []
        again: list[str] = []
        for path, taken in self._taken.items():
            if not pc.any(pc.is_in(taken["conversation_id"], value_set=conversations)).as_py():
                continue
            if taken.num_columns == len(TRANSCRIPTS):
                found.append(
                    taken.filter(pc.is_in(taken["conversation_id"], value_set=conversations))
                )
            else:
                again.append(path)
        where = pc.field("conversation_id").isin(conversations)
        found += rows_by_file(self.fs, again, TRANSCRIPTS, where, TRANSCRIPTS.names).values()
        return pa.concat_tables([*(t.cast(TRANSCRIPTS) for t in found), TRANSCRIPTS.empty_table()])

    def _day_partitions(self, old: pa.Table, job_files: set[str] | None) -> set[str]:
        """Existing item day directories that may hold items of the touched conversations.

        An existing transcript row spans its conversation's items (first..last timestamp), so
        only days inside those spans need reading; the days of the job's files holding them
        (``job_files``; None: all the job's) always do.
        """
        partitions = {
            f.partition
            for f in self.staged.get("items", [])
            if job_files is None or f.path in job_files
        }
        if not old.num_rows:
            return partitions
        starts = np.asarray(pc.cast(old["first_timestamp"], pa.date32()).cast(pa.int32()))
        ends = np.asarray(pc.cast(old["last_timestamp"], pa.date32()).cast(pa.int32()))
        order = np.argsort(starts, kind="stable")
        merged: list[list[int]] = []
        for start, end in zip(starts[order], ends[order], strict=True):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], int(end))
            else:
                merged.append([int(start), int(end)])
        epoch = date(1970, 1, 1)
        for name in list_dirs(self.fs, join(self.root, "items")):
            day = day_of_partition(name)
            if day is not None and any(lo <= (day - epoch).days <= hi for lo, hi in merged):
                partitions.add(name)
        return partitions

    def _items_of(
        self, touched: pa.Array, old: pa.Table, job_files: set[str] | None, own: pa.Table
    ) -> pa.Table:
        """The touched conversations' items as they will be after this commit: ``own`` (the
        job's, read from its ``job_files``; None: all its files), those of the archive's files
        the job rewrote, the day directories inside their spans and, for conversations that
        began on or before the day folded through, the folded tier."""
        partitions = sorted(self._day_partitions(old, job_files))
        deleted = set(self.deletes)
        paths = [
            path
            for partition in partitions
            for path in list_files(self.fs, join(self.root, "items", partition))
            if path not in deleted
        ]
        staged = self.staged.get("items", [])
        paths += [
            f.path
            for f in staged
            if f.path in self._rewritten and (job_files is None or f.path in job_files)
        ]
        through = read_layout(self.fs, self.root).folded_through
        if through is not None and old.num_rows:
            first = pc.min(pc.cast(old["first_timestamp"], pa.date32())).as_py()
            if first <= through:
                # Only the buckets holding these conversations' folded items (folded_keys).
                buckets = self._folded_keys().buckets_of(touched.to_pylist())
                folded = folded_paths(self.fs, self.root, "items", buckets)
                paths += [p for p in folded if p not in deleted]
        dataset = ds.dataset(paths, schema=ITEMS, format="parquet", filesystem=self.fs)
        archived = dataset.to_table(
            columns=SOURCE_COLUMNS, filter=pc.field("conversation_id").isin(touched)
        )
        return pa.concat_tables([own, archived])

    # -- step 3: the customer file index --------------------------------------------------

    def update_index(self, *, clean: bool = False) -> None:
        """List every new data file's customers in a new index file.

        Rows naming files that this commit deletes are left where they are unless their index
        file is rewritten anyway: readers of the index skip rows whose file is gone (a surplus
        row costs a look, a missing one would hide a file from a purge), and no path is ever
        used again once deleted. So a commit reads and rewrites no index file but the small
        ones it merges (dropping their rows of deleted files as it goes), and its cost does not
        grow with the archive. ``clean`` (a fold, which moves most files) rewrites every index
        file holding rows of deleted or missing files.
        """
        customers: list[pa.Array] = []
        owners: list[np.ndarray] = []  # each row's file, a number into `files`
        files: list[tuple[str, str]] = []  # (dataset, path relative to the archive)
        for dataset in INDEXED_DATASETS:
            for staged in self.staged.get(dataset, []):
                ids = _staged_distinct(self.fs, staged, "customer_id")
                customers.append(ids)
                owners.append(np.full(len(ids), len(files), dtype=np.int32))
                files.append((dataset, relative(self.staging_root, staged.path)))
        gone = {relative(self.root, p) for p in self.deletes}
        if not files and not gone:
            return
        existing = list_files(self.fs, join(self.root, INDEX_DIR))
        fold = self._to_fold(existing)
        writer = self.make_writer(INDEX_DIR, "")
        for path in existing:
            paths = _column(self.fs, path, "path") if clean or path in fold else None
            if paths is None:
                continue
            stale = self._stale_paths(pc.unique(paths).to_pylist(), gone)
            if not stale and path not in fold:
                continue
            drop = pa.array(sorted(stale), pa.string())
            for batch in _batches(self.fs, path):
                writer.write_batch(batch.filter(pc.invert(pc.is_in(batch["path"], value_set=drop))))
            self.deletes.append(path)
        for batch in self._index_rows(customers, owners, files):
            writer.write_batch(batch)
        writer.close()

    def _index_rows(
        self, customers: list[pa.Array], owners: list[np.ndarray], files: list[tuple[str, str]]
    ) -> Iterator[pa.RecordBatch]:
        """The new files' index rows sorted by customer, INDEX_BATCH_ROWS at a time: only the
        customer ids and a file number a row are held whole (a backfill of a thousand day
        files lists some 600 k (customer, file) pairs; as whole rows, sorted, 200 MB)."""
        if not files:
            return
        ids = pa.chunked_array(customers, pa.string()).combine_chunks()
        numbers = np.concatenate(owners)
        datasets = pa.array([dataset for dataset, _ in files], pa.string())
        paths = pa.array([path for _, path in files], pa.string())
        job = pa.scalar(self.job_id, pa.string())
        order = pc.sort_indices(ids)  # stable: a customer's files keep their order
        for start in range(0, len(order), INDEX_BATCH_ROWS):
            rows = order.slice(start, INDEX_BATCH_ROWS)
            owner = pa.array(numbers[np.asarray(rows)])
            yield pa.record_batch(
                [
                    pc.take(ids, rows),
                    pc.take(datasets, owner),
                    pc.take(paths, owner),
                    pa.repeat(job, len(rows)),
                ],
                schema=CUSTOMER_FILES,
            )

    def _stale_paths(self, paths: list[str], gone: set[str]) -> set[str]:
        """Those of ``paths`` (relative) that this commit deletes or that no longer exist."""
        stale = {p for p in paths if p in gone}
        rest = [p for p in paths if p not in gone]
        infos = self.fs.get_file_info([join(self.root, p) for p in rest]) if rest else []
        stale.update(p for p, i in zip(rest, infos, strict=True) if i.type != pafs.FileType.File)
        return stale
