"""Everything we keep: transcript archive, customers, tombstones and the audit log (issue 4)."""

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
from gladly_archive.fs import ArchiveError, ArchiveLockedError, MissingStagedFileError
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
    TOPICS,
    TRANSCRIPT_BUCKETS,
    TRANSCRIPTS,
    UTC_MICROS,
    with_metadata,
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
    "QUARANTINE",
    "SCHEMA_VERSION",
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
    "JobAlreadyArchivedError",
    "MissingStagedFileError",
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
    "with_metadata",
]
