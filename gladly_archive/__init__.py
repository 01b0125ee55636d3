"""Everything we keep about conversations and customers: schemas, commits, fold, purge."""

from __future__ import annotations

from gladly_archive.archive import Archive, CommitResult, JobAlreadyArchivedError, StagedJob
from gladly_archive.convert import (
    ConvertStats,
    QuarantinedLine,
    QuarantineHandler,
    convert_agents_file,
    convert_customers_file,
    convert_items_file,
    convert_items_lines,
    convert_topics_file,
)
from gladly_archive.fold import FoldReport, fold_archive, fold_due
from gladly_archive.fs import ArchiveError, ArchiveLockedError, MissingStagedFileError
from gladly_archive.purge import PURGED_DATASETS, PurgeReport, purge_customers
from gladly_archive.schemas import (
    AGENTS,
    ATTACHMENT,
    CUSTOMER_FILES,
    CUSTOMERS,
    DATASETS,
    ITEMS,
    MANIFEST,
    MANIFEST_FILE,
    QUARANTINE,
    SCHEMA_VERSION,
    TOMBSTONES,
    TOPICS,
    TRANSCRIPT_BUCKETS,
    TRANSCRIPTS,
    UTC_MICROS,
    with_metadata,
)
from gladly_archive.tombstones import (
    TOMBSTONES_DIR,
    match_tombstones,
    read_tombstones,
    write_tombstones,
)
from gladly_archive.transcripts import build_transcripts
from gladly_archive.writer import DatasetWriter, SchemaMismatchError

__all__ = [
    "AGENTS",
    "ATTACHMENT",
    "CUSTOMERS",
    "CUSTOMER_FILES",
    "DATASETS",
    "ITEMS",
    "MANIFEST",
    "MANIFEST_FILE",
    "PURGED_DATASETS",
    "QUARANTINE",
    "SCHEMA_VERSION",
    "TOMBSTONES",
    "TOMBSTONES_DIR",
    "TOPICS",
    "TRANSCRIPTS",
    "TRANSCRIPT_BUCKETS",
    "UTC_MICROS",
    "Archive",
    "ArchiveError",
    "ArchiveLockedError",
    "CommitResult",
    "ConvertStats",
    "DatasetWriter",
    "FoldReport",
    "JobAlreadyArchivedError",
    "MissingStagedFileError",
    "PurgeReport",
    "QuarantineHandler",
    "QuarantinedLine",
    "SchemaMismatchError",
    "StagedJob",
    "build_transcripts",
    "convert_agents_file",
    "convert_customers_file",
    "convert_items_file",
    "convert_items_lines",
    "convert_topics_file",
    "fold_archive",
    "fold_due",
    "match_tombstones",
    "purge_customers",
    "read_tombstones",
    "with_metadata",
    "write_tombstones",
]
