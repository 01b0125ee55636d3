"""Upgrade an archive written by an earlier release to this release's schema version, in place.

Under the writer lock, after finishing any commit an earlier release left half done:

1. Hidden temporary files a killed migration left are removed.
2. Hive-style directories (``customers/job=<id>/``, ``conversations/run=folded/``, …) are
   renamed file by file (``layout.upgraded_directory``); the customer file index gets the new
   paths.
3. Every items file older than this version is re-derived from its ``raw_json`` (with its
   ``job_id`` and ``archived_at``) through this release's converter (``_derive``), then every
   older transcript file is rebuilt from the migrated items.
4. Every other older file (customers, agents, …, manifests, tombstones) is written again with
   this release's schema (the same columns; its footer names the version).
5. ``_layout.json`` records the version, last: until then every writer refuses the archive.

Each file is replaced whole (a hidden temporary name, fsynced, renamed) and a file whose footer
already names this version is skipped, so a run killed at any point is finished by the next,
and a run on a migrated archive changes nothing. ``plan_migration`` says what a run would do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.catalog import refresh_catalog
from gladly_archive.commit import recover_staging
from gladly_archive.fs import (
    delete_if_exists,
    fsync_dirs,
    fsync_file,
    join,
    list_files,
    move_idempotent,
    remove_dir,
    temp_name,
)
from gladly_archive.item_derive import ReferenceNames
from gladly_archive.layout import (
    INDEX_DIR,
    REFILL_WATCH_DIR,
    TOMBSTONES_DIR,
    OldLayoutError,
    archive_version,
    check_readable,
    hive_directories,
    read_layout,
    relative,
    upgraded_directory,
    upgraded_path,
    write_layout,
)
from gladly_archive.migrate_items import (
    DeriveContext,
    MigrationError,
    derive_items,
    rebuild_transcripts,
)
from gladly_archive.reference_names import load_names
from gladly_archive.schemas import DATASETS, REFILL_WATCH, SCHEMA_VERSION, TOMBSTONES
from gladly_archive.writer import parquet_options

__all__ = [
    "MIGRATE_PHASE",
    "MigrationError",
    "MigrationPlan",
    "migrate_archive",
    "plan_migration",
]

log = logging.getLogger(__name__)

# progress(MIGRATE_PHASE, steps done, steps): one step per directory renamed and file written.
MIGRATE_PHASE = "migrate (steps)"
_VERSION_KEY = b"gladly_pipeline.schema_version"
# Every dataset a migration looks at, with this release's schema.
_SCHEMAS: dict[str, pa.Schema] = {
    **DATASETS,
    TOMBSTONES_DIR: TOMBSTONES,
    REFILL_WATCH_DIR: REFILL_WATCH,
}
# Items before transcripts (rebuilt from the migrated items), the index after the renames.
_ORDER = (
    "items",
    "transcripts",
    INDEX_DIR,
    *(d for d in _SCHEMAS if d not in ("items", "transcripts", INDEX_DIR)),
)
Progress = Callable[[str, int, int], None]


@dataclass
class MigrationPlan:
    """What a migration of one archive does (or did): directories renamed, files written."""

    root: str
    version: int  # the archive's schema version before
    renames: list[tuple[str, str]] = field(default_factory=list)  # relative directories
    files: dict[str, int] = field(default_factory=dict)  # dataset -> files to write again
    stamp: bool = False  # _layout.json is to record this release's version

    @property
    def steps(self) -> int:
        """Directories to rename and files to write."""
        return len(self.renames) + sum(self.files.values())

    @property
    def changes(self) -> bool:
        """Whether a migration would change anything."""
        return bool(self.steps) or self.stamp


def _footer_version(fs: pafs.FileSystem, path: str) -> int:
    metadata = pq.read_schema(path, filesystem=fs).metadata or {}
    value = metadata.get(_VERSION_KEY, b"0")
    return int(value) if value.isdigit() else 0


def _old_files(fs: pafs.FileSystem, root: str, dataset: str) -> list[str]:
    """The dataset's files whose footer names an earlier version (index files also when a path
    they hold still names a Hive-style directory)."""
    found = []
    for path in list_files(fs, join(root, dataset), recursive=True):
        old = _footer_version(fs, path) < SCHEMA_VERSION
        if old or (dataset == INDEX_DIR and _stale_paths(fs, path)):
            found.append(path)
    return found


def _stale_paths(fs: pafs.FileSystem, path: str) -> bool:
    table = pq.read_table(path, columns=["dataset", "path"], filesystem=fs)
    pairs = zip(table["dataset"].to_pylist(), table["path"].to_pylist(), strict=True)
    return any(upgraded_path(d, p) != p for d, p in pairs)


def plan_migration(archive: Archive) -> MigrationPlan:
    """What ``migrate_archive`` would do now; reads only (no lock taken). OldLayoutError for
    an archive this release cannot migrate (layout 1, or a newer release's)."""
    fs, root = archive.fs, archive.root
    check_readable(fs, root)  # layout 1 is older still: it cannot be migrated in place
    version = archive_version(fs, root)
    if version > SCHEMA_VERSION:
        raise OldLayoutError(
            f"the archive at {root} is at schema version {version}, newer than this release's "
            f"{SCHEMA_VERSION}: use the newer release on it"
        )
    plan = MigrationPlan(root=root, version=version)
    for directory in hive_directories(fs, root):
        dataset, name = directory.split("/", 1)
        target = upgraded_directory(dataset, name)
        if target is None:
            raise MigrationError(f"{directory}: a directory this release cannot rename")
        plan.renames.append((directory, f"{dataset}/{target}"))
    for dataset in _SCHEMAS:
        count = len(_old_files(fs, root, dataset))
        if count:
            plan.files[dataset] = count
    recorded = read_layout(fs, root).schema_version
    # A new archive needs no record (its version is this release's); an upgraded one does.
    plan.stamp = recorded != SCHEMA_VERSION and (plan.steps > 0 or version < SCHEMA_VERSION)
    return plan


def migrate_archive(archive: Archive, *, progress: Progress | None = None) -> MigrationPlan:
    """Upgrade the archive in place (see the module doc); returns what was done.

    Takes the writer lock (ArchiveLockedError while another process writes). Raises
    MigrationError, naming the file, where a row cannot be carried over whole (an item the
    converter refuses, a transcript without items); what was done before stays done, and the
    archive stays at its old version until a run gets through.
    """
    lock = archive.lock()
    lock.acquire()
    try:
        recover_staging(archive.fs, archive.root, archive.crash_hook, check=False)
        plan = plan_migration(archive)
        if plan.changes:
            _Migration(archive, plan, progress).run()
    finally:
        lock.release()
    # Also when there was nothing left to do: a run killed after the stamp made no catalog.
    refresh_catalog(archive.fs, archive.root, create=True)
    log.info(
        "migrate %s from version %d: %d directories renamed, files written %s",
        archive.root,
        plan.version,
        len(plan.renames),
        plan.files,
    )
    return plan


class _Migration:
    """One run: the steps of the module doc, a crash hook after each."""

    def __init__(self, archive: Archive, plan: MigrationPlan, progress: Progress | None) -> None:
        self.archive, self.fs, self.root = archive, archive.fs, archive.root
        self.plan, self.progress = plan, progress
        self.done = 0
        self._known_names: ReferenceNames | None = None

    def _names(self) -> ReferenceNames:
        """The agents', inboxes' and topics' names and the conversation facts, read once (after
        the directories are renamed: the listings are read by path)."""
        if self._known_names is None:
            self._known_names = load_names(self.fs, self.root)
        return self._known_names

    def _hook(self, point: str) -> None:
        if self.archive.crash_hook is not None:
            self.archive.crash_hook(point)

    def _step(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(MIGRATE_PHASE, self.done, self.plan.steps)

    def run(self) -> None:
        if self.progress is not None:
            self.progress(MIGRATE_PHASE, 0, self.plan.steps)
        self._remove_temps()
        for source, target in self.plan.renames:
            self._rename(source, target)
        for dataset in _ORDER:
            for number, path in enumerate(_old_files(self.fs, self.root, dataset), 1):
                self._replace(dataset, path, number)
                self._step()
        layout = read_layout(self.fs, self.root)
        if layout.schema_version != SCHEMA_VERSION:
            write_layout(self.fs, self.root, replace(layout, schema_version=SCHEMA_VERSION))
        self._hook("migrate:stamped")

    def _remove_temps(self) -> None:
        """Drop the hidden temporary files a killed run left in the datasets."""
        for dataset in _SCHEMAS:
            selector = pafs.FileSelector(
                join(self.root, dataset), allow_not_found=True, recursive=True
            )
            for info in self.fs.get_file_info(selector):
                name = info.base_name
                if (
                    info.type == pafs.FileType.File
                    and name.startswith(".")
                    and name.endswith(".tmp")
                ):
                    delete_if_exists(self.fs, info.path)

    def _rename(self, source: str, target: str) -> None:
        """Move every file of ``source`` (a directory, relative) into ``target``, then drop it.
        File by file, so a killed run's rerun finds each file in one place or the other."""
        base = join(self.root, source)
        selector = pafs.FileSelector(base, allow_not_found=True, recursive=True)
        files = [i.path for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
        moved_to: set[str] = set()
        for number, path in enumerate(sorted(files), 1):
            destination = join(self.root, target, relative(base, path))
            move_idempotent(self.fs, path, destination)
            moved_to.add(destination.rsplit("/", 1)[0])
            self._hook(f"migrate:rename:{number}")
        fsync_dirs(self.fs, moved_to)
        remove_dir(self.fs, base)
        self._hook("migrate:renamed")
        self._step()

    def _replace(self, dataset: str, path: str, number: int) -> None:
        """Write ``path`` again as this release has it, under a hidden name renamed over it."""
        schema = _SCHEMAS[dataset]
        tmp = temp_name(path)
        try:
            with (
                self.fs.open_output_stream(tmp) as sink,
                pq.ParquetWriter(sink, schema, **parquet_options(schema)) as writer,
            ):
                for part in self._parts(dataset, path):
                    table = pa.Table.from_batches(part.to_batches(), schema=schema)
                    writer.write_table(table, row_group_size=max(1, table.num_rows))
            fsync_file(self.fs, tmp)
            self._hook(f"migrate:{dataset}:{number}:written")
            self.fs.move(tmp, path)
        except BaseException:
            delete_if_exists(self.fs, tmp)
            raise
        fsync_dirs(self.fs, {path.rsplit("/", 1)[0]})
        self._hook(f"migrate:{dataset}:{number}")

    def _parts(self, dataset: str, path: str) -> Iterator[pa.Table]:
        """The file's rows as this release writes them, row group by row group."""
        context = DeriveContext(self.archive, relative(self.root, path), self._names())
        if dataset == "transcripts":
            yield rebuild_transcripts(context, path)
            return
        schema = _SCHEMAS[dataset]
        with self.fs.open_input_file(path) as handle:
            source = pq.ParquetFile(handle)
            for number in range(source.num_row_groups):
                group = source.read_row_group(number)
                if dataset == "items":
                    yield derive_items(group, context)
                    continue
                table = _conformed(group, schema, context.path)
                if dataset == INDEX_DIR:
                    table = _upgraded_index(table)
                yield table


def _conformed(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: a column it lacks is null where the schema
    allows it (MigrationError where not), a column the schema lacks is left out."""
    columns = []
    for target in schema:
        if target.name in table.column_names:
            columns.append(table.column(target.name).cast(target.type))
        elif target.nullable:
            columns.append(pa.nulls(table.num_rows, target.type))
        else:
            raise MigrationError(f"{where}: the required column {target.name} is missing")
    return pa.table(columns, schema=schema)


def _upgraded_index(table: pa.Table) -> pa.Table:
    paths = [
        upgraded_path(dataset, path)
        for dataset, path in zip(
            table["dataset"].to_pylist(), table["path"].to_pylist(), strict=True
        )
    ]
    index = table.schema.get_field_index("path")
    return table.set_column(index, table.schema.field(index), pa.array(paths, pa.string()))
