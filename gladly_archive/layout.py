"""Where each dataset lives under the archive root, and how its directories are partitioned."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from gladly_archive.fs import ArchiveError, exists, join, list_dirs, read_bytes

__all__ = [
    "DOWNLOADS_DIR",
    "FOLDED",
    "FOLDED_DATASETS",
    "INDEX_DIR",
    "INTENT_NAME",
    "LAYOUT_NAME",
    "LOCK_NAME",
    "MANIFEST_DIR",
    "PARTITION_FIELDS",
    "QUARANTINE_DIR",
    "STAGING_DIR",
    "Layout",
    "OldLayoutError",
    "check_layout",
    "customer_bucket",
    "day_of_partition",
    "day_partition",
    "folded_dir",
    "folded_partition",
    "job_partition",
    "manifest_name",
    "read_layout",
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
LAYOUT_NAME = "_layout.json"  # the folded tier's bucket count and the day folded through

# The archive has two tiers (docs/erasure-layout.md). Recent data lands where writing it is
# cheap: items in one directory per UTC day (``items/2025-03-01/``), transcripts in conversation
# hash shards (``transcripts/shard-07/``), per-job and per-run datasets in ``job=<id>/`` and
# ``run=<id>/``. ``fold`` moves older rows into the folded tier, ``<dataset>/folded/<bucket>/``
# (``job=folded/<bucket>/`` and ``run=folded/<bucket>/`` where the dataset is keyed by job or
# run): one file per bucket of customers, so erasing a customer rewrites one file per dataset.
# Items carry their day as a column (``date``), so no reader depends on directory names, and
# no two directory schemes disagree about Hive keys (DuckDB refuses that).
FOLDED = "folded"
FOLDED_DATASETS = ("items", "transcripts", "customers", "conversations", "customer_profiles")
_FOLDED_KEY = {"customers": "job=", "conversations": "run=", "customer_profiles": "run="}

# The Hive partition column that Archive.dataset() adds from a dataset's directories. Per-job
# datasets live in ``job=<id>/`` directories: DuckDB and polars prune on ``job``, while pyarrow
# (whose dataset schema stays exactly the explicit one) filters on the ``job_id`` column.
PARTITION_FIELDS: dict[str, pa.Field | None] = {
    "items": None,  # the ``date`` column is stored
    "transcripts": None,
    "customers": None,
    "agents": None,  # job=<id>/: export files' and API listings' (job id = the run's id)
    "topics": None,  # likewise; the newest archived_at per id wins
    "inboxes": None,  # job=<run id>/ (API listings)
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
    if job_id == FOLDED:
        raise ValueError(f"job id {FOLDED!r} is reserved for the archive's folded tier")
    return job_id


def day_partition(day: date) -> str:
    """The directory of one UTC day of items, e.g. ``2025-03-01``."""
    return day.isoformat()


def day_of_partition(name: str) -> date | None:
    """The day of an items day directory, or None for any other name."""
    if len(name) != 10 or name[4] != "-" or name[7] != "-":
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def customer_bucket(customer_ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """The folded bucket of each customer id: CRC-32 of the UTF-8 id modulo ``buckets`` (stable
    across processes, unlike Python's salted hash); hashed once per distinct id."""
    if isinstance(customer_ids, pa.ChunkedArray):
        customer_ids = customer_ids.combine_chunks()
    encoded = pc.dictionary_encode(customer_ids.cast(pa.string()))
    per_value = np.fromiter(
        (zlib.crc32(v.encode("utf-8")) % buckets for v in encoded.dictionary.to_pylist()),
        dtype=np.int64,
        count=len(encoded.dictionary),
    )
    # A missing id (none of the folded datasets has one) goes to bucket 0.
    per_value = np.concatenate((per_value, [0]))
    indices = pc.fill_null(encoded.indices, len(per_value) - 1)
    return per_value[np.asarray(indices, dtype=np.int64)]


def folded_dir(dataset: str) -> str:
    """The folded tier's directory inside a dataset: ``folded`` or ``job=folded``/``run=folded``."""
    return _FOLDED_KEY.get(dataset, "") + FOLDED


def folded_partition(dataset: str, bucket: int) -> str:
    """The partition directory (relative to the dataset) of one folded bucket."""
    return f"{folded_dir(dataset)}/{bucket:04d}"


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


@dataclass(frozen=True)
class Layout:
    """What ``_layout.json`` says: the bucket count (fixed at the first fold) and the last day
    whose rows may be in the folded tier (None: nothing folded yet)."""

    buckets: int | None = None
    folded_through: date | None = None

    def to_json(self) -> bytes:
        through = None if self.folded_through is None else self.folded_through.isoformat()
        body = {"version": 1, "buckets": self.buckets, "folded_through": through}
        return json.dumps(body, indent=1, sort_keys=True).encode()


def read_layout(fs: pafs.FileSystem, root: str) -> Layout:
    """The archive's layout record (an empty Layout before the first fold)."""
    path = join(root, LAYOUT_NAME)
    if not exists(fs, path):
        return Layout()
    body = json.loads(read_bytes(fs, path))
    through = body.get("folded_through")
    return Layout(
        buckets=body.get("buckets"),
        folded_through=None if through is None else date.fromisoformat(through),
    )


class OldLayoutError(ArchiveError, ValueError):
    """The archive was written by layout 1 (before the folded tier)."""


def check_layout(fs: pafs.FileSystem, root: str) -> None:
    """Raise OldLayoutError if ``root`` holds layout-1 directories (``items/date=…``,
    ``transcripts/bucket=…``): their items lack the ``date`` column and commits would not find
    their rows, so nothing reads or writes such an archive by mistake."""
    old = [
        f"{dataset}/{name}"
        for dataset, prefix in (("items", "date="), ("transcripts", "bucket="))
        for name in list_dirs(fs, join(root, dataset))
        if name.startswith(prefix)
    ]
    if old:
        raise OldLayoutError(
            f"the archive at {root} was written by an earlier release (layout 1: {old[0]} and "
            f"{len(old) - 1} more directories like it); this release reads layout 2. Export into "
            "a new root (--root or GLADLY_PIPELINE_ROOT) and remove the old one once the new "
            "one holds every job Gladly still lists, or keep using the earlier release on it."
        )
