"""Where each dataset lives under the archive root, and how its directories are partitioned."""

from __future__ import annotations

import re

import pyarrow as pa

__all__ = [
    "DOWNLOADS_DIR",
    "INDEX_DIR",
    "INTENT_NAME",
    "LOCK_NAME",
    "MANIFEST_DIR",
    "PARTITION_FIELDS",
    "QUARANTINE_DIR",
    "STAGING_DIR",
    "job_partition",
    "manifest_name",
    "relative",
    "validate_job_id",
]

STAGING_DIR = "_staging"  # work in progress, never read by readers
MANIFEST_DIR = "_manifest"  # one file per archived job: the watermark
QUARANTINE_DIR = "_quarantine"
INDEX_DIR = "_index/customer_files"
INTENT_NAME = "_COMMIT.json"  # inside _staging/<job_id>/
LOCK_NAME = ".lock"  # inside _staging/
DOWNLOADS_DIR = "_downloads"  # inside _staging/<job_id>/ when the archive is local

# The Hive partition column that Archive.dataset() adds from a dataset's directories. Per-job
# datasets live in ``job=<id>/`` directories: DuckDB and polars prune on ``job``, while pyarrow
# (whose dataset schema stays exactly the explicit one) filters on the ``job_id`` column.
PARTITION_FIELDS: dict[str, pa.Field | None] = {
    "items": pa.field("date", pa.date32()),
    "transcripts": pa.field("bucket", pa.int32()),
    "customers": None,
    "agents": None,
    "topics": None,
    QUARANTINE_DIR: None,
    MANIFEST_DIR: None,
    INDEX_DIR: None,
    "conversations": None,  # run=<id>/ directories; the newest fetched_at wins
    "customer_profiles": None,
}

# Job ids become directory and file names (and Hive values), so they are kept to a safe alphabet:
# Gladly's URL-safe base64 ids (which may start with '-' or '_') and "api-…" run ids fit.
_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


def validate_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is safe as a path segment and Hive value, else raise ValueError."""
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(
            "job id must be 1-200 characters of letters, digits, '_', '.', '-' "
            "and must not start with '.'"
        )
    return job_id


def job_partition(job_id: str) -> str:
    """The Hive directory of a per-job dataset (customers, agents, topics, quarantine).

    Named ``job=``, not ``job_id=``: those files already hold a ``job_id`` column, and pandas
    (through pyarrow's partition discovery) refuses a directory key that repeats a column of
    a different inferred type.
    """
    return f"job={job_id}"


def manifest_name(job_id: str) -> str:
    """The manifest file of a job, relative to the archive root."""
    return f"{MANIFEST_DIR}/job_id={job_id}.parquet"


def relative(root: str, path: str) -> str:
    """``path`` relative to ``root`` (both '/'-separated filesystem paths)."""
    if not root:
        return path
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path} is not under the archive root")
    return path[len(prefix) :]
