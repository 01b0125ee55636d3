"""Where each dataset lives under the archive root, and how its directories are partitioned."""

from __future__ import annotations

import json
import re
import shlex
import zlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gladly_archive.fs import (
    ArchiveError,
    atomic_write_bytes,
    exists,
    join,
    list_dirs,
    local_path,
    read_bytes,
)
from gladly_archive.schemas import SCHEMA_VERSION

__all__ = [
    "DOWNLOADS_DIR",
    "FOLDED",
    "FOLDED_DATASETS",
    "INDEX_DIR",
    "INTENT_NAME",
    "LAYOUT_NAME",
    "LOCK_NAME",
    "MANIFEST_DIR",
    "QUARANTINE_DIR",
    "REFILL_WATCH_DIR",
    "STAGING_DIR",
    "TOMBSTONES_DIR",
    "Layout",
    "OldLayoutError",
    "archive_version",
    "check_layout",
    "check_readable",
    "customer_bucket",
    "day_of_partition",
    "day_partition",
    "folded_dir",
    "folded_partition",
    "hive_directories",
    "id_partition",
    "manifest_job_id",
    "manifest_name",
    "read_layout",
    "relative",
    "shown_root",
    "upgraded_directory",
    "upgraded_path",
    "validate_job_id",
    "write_layout",
]

STAGING_DIR = "_staging"  # work in progress, never read by readers
MANIFEST_DIR = "_manifest"  # one file per archived job: the watermark
QUARANTINE_DIR = "_quarantine"
INDEX_DIR = "_index/customer_files"
INTENT_NAME = "_COMMIT.json"  # inside _staging/<job_id>/
LOCK_NAME = ".lock"  # inside _staging/
DOWNLOADS_DIR = "_downloads"  # inside _staging/<job_id>/ when the archive is local
LAYOUT_NAME = "_layout.json"  # the folded tier's bucket count and the day folded through

TOMBSTONES_DIR = "tombstones"  # one directory per deletion run
REFILL_WATCH_DIR = "refill_watch"  # one directory per unlinked detail

# The archive has two tiers (docs/erasure-layout.md). Recent data lands where writing it is
# cheap: items in one directory per UTC day (``items/2025-03-01/``), transcripts in one
# directory (``transcripts/recent/``; an earlier release wrote ``shard-NN`` directories, read
# alike), per-job and per-run datasets in one directory per job or run
# (``customers/job-<id>/``, ``conversations/run-<id>/``, see ``id_partition``).
# ``fold`` moves older rows into the folded tier, ``<dataset>/folded/<bucket>/``: one file per
# bucket of customers, so erasing a customer rewrites one file per dataset.
#
# No directory name is a Hive ``key=value``: every dataset already holds the value as a column
# (``date``, ``job_id``, ``run_id``, ``watch_id``), and DuckDB and pandas would add the key as a
# second column that repeats it (polars refuses the clash). Nor does a name start with '_' or
# '.', which pyarrow and pandas skip as hidden while DuckDB and polars read it: Gladly's ids may
# start with '_', so an id is never a directory name on its own.
FOLDED = "folded"
FOLDED_DATASETS = ("items", "transcripts", "customers", "conversations", "customer_profiles")
# The word before the id in each per-job or per-run dataset's directories.
_ID_WORD = {
    "customers": "job",
    "agents": "job",  # export jobs' files and API listings (the listing run's id)
    "topics": "job",
    "inboxes": "job",  # API listings only
    QUARANTINE_DIR: "job",
    "conversations": "run",
    "customer_profiles": "run",
    TOMBSTONES_DIR: "run",
    REFILL_WATCH_DIR: "watch",
}
# What the release before schema version 3 named those directories (``job=<id>``, ...).
_HIVE_KEYS = ("job", "run", "watch")

# Job ids become parts of directory and file names, so they are kept to a safe alphabet:
# Gladly's URL-safe base64 ids (which may start with '-' or '_') and "api-…" run ids fit.
_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


def validate_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is safe in a directory and file name, else raise ValueError."""
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
    """The folded tier's directory inside a dataset (``folded``, for every folded dataset)."""
    if dataset not in FOLDED_DATASETS:
        raise ValueError(f"{dataset} has no folded tier; folded datasets: {FOLDED_DATASETS}")
    return FOLDED


def folded_partition(dataset: str, bucket: int) -> str:
    """The partition directory (relative to the dataset) of one folded bucket."""
    return f"{folded_dir(dataset)}/{bucket:04d}"


def id_partition(dataset: str, key: str) -> str:
    """The directory (relative to the dataset) of one job's, run's or watch's files:
    ``job-<id>`` (customers, agents, topics, inboxes, _quarantine), ``run-<id>``
    (conversations, customer_profiles, tombstones) or ``watch-<id>`` (refill_watch)."""
    word = _ID_WORD.get(dataset)
    if word is None:
        raise ValueError(f"{dataset} is not kept by job or run; such datasets: {sorted(_ID_WORD)}")
    return f"{word}-{validate_job_id(key)}"


def manifest_name(job_id: str) -> str:
    """The manifest file of a job, relative to the archive root.

    A file, not a directory: no reader (DuckDB, pyarrow, pandas, polars) takes a Hive key from
    a file's own name, so ``_manifest/job_id=<id>.parquet`` adds no column.
    """
    return f"{MANIFEST_DIR}/job_id={job_id}.parquet"


def manifest_job_id(base_name: str) -> str | None:
    """The job id of a manifest file's base name (see manifest_name), or None for another name."""
    if base_name.startswith("job_id=") and base_name.endswith(".parquet"):
        return base_name.removeprefix("job_id=").removesuffix(".parquet")
    return None


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
    """What ``_layout.json`` says: the bucket count (fixed at the first fold), the last day
    whose rows may be in the folded tier (None: nothing folded yet), and the schema version
    the archive is kept at (None: not recorded, as before version 3; see archive_version)."""

    buckets: int | None = None
    folded_through: date | None = None
    schema_version: int | None = None

    def to_json(self) -> bytes:
        through = None if self.folded_through is None else self.folded_through.isoformat()
        body: dict[str, object] = {
            "version": 1,
            "buckets": self.buckets,
            "folded_through": through,
        }
        if self.schema_version is not None:
            body["schema_version"] = self.schema_version
        return json.dumps(body, indent=1, sort_keys=True).encode()


def read_layout(fs: pafs.FileSystem, root: str) -> Layout:
    """The archive's layout record (an empty Layout when there is none)."""
    path = join(root, LAYOUT_NAME)
    if not exists(fs, path):
        return Layout()
    body = json.loads(read_bytes(fs, path))
    through = body.get("folded_through")
    version = body.get("schema_version")
    return Layout(
        buckets=body.get("buckets"),
        folded_through=None if through is None else date.fromisoformat(through),
        schema_version=None if version is None else int(version),
    )


def write_layout(fs: pafs.FileSystem, root: str, layout: Layout) -> None:
    """Replace ``_layout.json`` whole (readers see the old record or the new one)."""
    atomic_write_bytes(fs, join(root, LAYOUT_NAME), layout.to_json())


def hive_directories(fs: pafs.FileSystem, root: str) -> list[str]:
    """The Hive-style directories (``job=…``, ``run=…``, ``watch=…``) that the release before
    schema version 3 wrote, relative to the root, sorted."""
    return [
        f"{dataset}/{name}"
        for dataset in sorted(_ID_WORD)
        for name in list_dirs(fs, join(root, dataset))
        if name.partition("=")[0] in _HIVE_KEYS and "=" in name
    ]


def upgraded_directory(dataset: str, name: str) -> str | None:
    """The name this release gives a Hive-style directory of ``dataset`` that the release
    before schema version 3 wrote (``job=folded`` → ``folded``, ``run=<id>`` → ``run-<id>``),
    or None if ``name`` is not one."""
    key, equals, value = name.partition("=")
    if not equals or key not in _HIVE_KEYS or dataset not in _ID_WORD:
        return None
    return FOLDED if value == FOLDED else id_partition(dataset, value)


def upgraded_path(dataset: str, path: str) -> str:
    """A file's path relative to the root (as the customer file index holds it), with its
    dataset's Hive-style directory renamed (see upgraded_directory); other paths unchanged."""
    prefix = dataset + "/"
    if not path.startswith(prefix):
        return path
    name, slash, rest = path[len(prefix) :].partition("/")
    new = upgraded_directory(dataset, name) if slash else None
    return path if new is None else f"{prefix}{new}/{rest}"


def archive_version(fs: pafs.FileSystem, root: str) -> int:
    """The schema version the archive is kept at.

    Recorded in ``_layout.json`` since version 3 (by ``migrate`` and every fold). Before, it was
    recorded nowhere but in each job's manifest (the version that committed it): an archive
    without a record is at the version its manifests say, at version 2 if it holds Hive-style
    directories and no manifest, and new (this release's version) if it holds neither.
    """
    recorded = read_layout(fs, root).schema_version
    if recorded is not None:
        return recorded
    selector = pafs.FileSelector(join(root, MANIFEST_DIR), allow_not_found=True)
    for info in sorted(fs.get_file_info(selector), key=lambda i: i.path):
        if info.type == pafs.FileType.File and info.base_name.endswith(".parquet"):
            if info.base_name.startswith((".", "_")):
                continue
            column = pq.read_table(info.path, columns=["schema_version"], filesystem=fs)[0]
            return int(pc.max(column).as_py() or 0)
    return 2 if hive_directories(fs, root) else SCHEMA_VERSION


class OldLayoutError(ArchiveError, ValueError):
    """The archive was written by an earlier (or later) release than this one writes."""


def shown_root(fs: pafs.FileSystem, root: str) -> str:
    """The root as a person passes it to ``--root``: the local path, or the filesystem's URI."""
    if local_path(fs, root) is not None:
        return root
    return f"{fs.type_name}://{root}"


def check_readable(fs: pafs.FileSystem, root: str) -> None:
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


def check_layout(fs: pafs.FileSystem, root: str) -> None:
    """Raise OldLayoutError unless this release may write into ``root``: layout 1 (see
    ``check_readable``), an earlier schema version or Hive-style directories (upgraded by
    ``gladly-pipeline migrate``), or a later schema version (a newer release's archive)."""
    check_readable(fs, root)
    hive = hive_directories(fs, root)
    version = archive_version(fs, root)
    if version > SCHEMA_VERSION:
        raise OldLayoutError(
            f"the archive at {root} is at schema version {version}, written by a newer release; "
            f"this release writes version {SCHEMA_VERSION}: use the newer release on it"
        )
    if hive or version < SCHEMA_VERSION:
        evidence = [f"schema version {version}"] if version < SCHEMA_VERSION else []
        if hive:
            evidence.append(f"Hive-style directories like {hive[0]}")
        command = f"gladly-pipeline migrate --root {shlex.quote(shown_root(fs, root))}"
        raise OldLayoutError(
            f"the archive at {root} was written by an earlier release ({', '.join(evidence)}): "
            f"upgrade it to version {SCHEMA_VERSION} first with `{command}` (a dry run; then "
            "add --execute)"
        )
