"""Everything we keep about conversations and customers: schemas, commits, fold, purge,
item redaction and deletion."""

from __future__ import annotations

# First: chooses Arrow's allocator before anything below loads pyarrow (memory_pool.py).
import gladly_archive.memory_pool  # noqa: F401  # isort: skip
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
from gladly_archive.item_purge import (
    ITEM_PURGED_DATASETS,
    REDACTED_COLUMNS,
    ItemPurgeReport,
    delete_items,
    items_still_holding_text,
    items_still_present,
    redact_items,
)
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
    "ITEM_PURGED_DATASETS",
    "MANIFEST",
    "MANIFEST_FILE",
    "PURGED_DATASETS",
    "QUARANTINE",
    "REDACTED_COLUMNS",
    "SCHEMA_VERSION",
    "TOMBSTONES",
    "TOMBSTONES_DIR",
    "TOPICS",
    "TRANSCRIPTS",
    "UTC_MICROS",
    "Archive",
    "ArchiveError",
    "ArchiveLockedError",
    "CommitResult",
    "ConvertStats",
    "DatasetWriter",
    "FoldReport",
    "ItemPurgeReport",
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
    "delete_items",
    "fold_archive",
    "fold_due",
    "items_still_holding_text",
    "items_still_present",
    "match_tombstones",
    "purge_customers",
    "read_tombstones",
    "redact_items",
    "with_metadata",
    "write_tombstones",
]
