"""What the fact tables are built from: the archive's files, and what each file contributes.

Every fact is an aggregate per customer or per conversation (a minimum, a maximum, a sum, a
union, or the newest row by a time), and each of those can be taken per file first and then
over the files. A file's *contributions* are those per-file aggregates, one row per key the
file holds (tables below); the fact tables are derived from the contributions of every file
(retention_policies.fact_derive), never from anything else. A file's contributions depend on
that file alone, so they can be kept beside the facts and, when the archive changes, those of
the files removed dropped and those of the files added read, without reading the others.

| table | one row per                 | from                                   |
|-------|-----------------------------|----------------------------------------|
| cc    | file, conversation, customer| items: first/last time, count, types   |
| st    | file, conversation          | items: the last CONVERSATION_STATUS_CHANGE |
| tp    | file, conversation, topic   | items: the last TOPIC_CHANGE naming it  |
| cu    | file, customer              | customers: the newest record           |
| en    | file, conversation          | conversations (enrichment): the newest |
| pr    | file, customer              | customer_profiles: the newest row      |
| mg    | file, customer              | customer_profiles: the newest merge    |

A file is known by its path and what the filesystem says of it (size, modification and change
times, inode): the archive only ever writes a new file and renames it into place, so a file
rewritten (a purge, a redaction, a merge of small files) comes back with another inode and
times, and one edited in place changes its change time whatever is done to its modification
time.
"""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

__all__ = [
    "CONTRIBUTIONS",
    "EVENT_TYPES",
    "MAX_MASKED_TYPES",
    "SOURCES_SCHEMA",
    "SOURCE_DATASETS",
    "Source",
    "channel_type",
    "content_types",
    "contribute",
    "empty_contributions",
    "list_sources",
    "quote",
    "sources_digest",
    "sources_table",
]

# The archive datasets the fact tables are read from.
SOURCE_DATASETS = ("items", "customers", "conversations", "customer_profiles", "inboxes", "topics")
# Item content types whose JSON is read (the rest count only by type).
EVENT_TYPES = ("CONVERSATION_STATUS_CHANGE", "TOPIC_CHANGE")
# Content types are rolled up as bits of one BIGINT while there are no more than this many.
MAX_MASKED_TYPES = 62

# Contribution tables and their columns; `ch` is a BIGINT mask or a sorted VARCHAR[] of types.
CONTRIBUTIONS: dict[str, str] = {
    "cc": "fid BIGINT, conversation_id VARCHAR, customer_id VARCHAR, mn TIMESTAMPTZ, "
    "mx TIMESTAMPTZ, n BIGINT, ch {ch}",
    "st": "fid BIGINT, conversation_id VARCHAR, ts TIMESTAMPTZ, item_id VARCHAR, status VARCHAR",
    "tp": "fid BIGINT, conversation_id VARCHAR, topic_id VARCHAR, ts TIMESTAMPTZ, "
    "item_id VARCHAR, added BOOLEAN",
    "cu": "fid BIGINT, customer_id VARCHAR, archived_at TIMESTAMPTZ, job_id VARCHAR, "
    "emails VARCHAR[], phones VARCHAR[]",
    "en": "fid BIGINT, conversation_id VARCHAR, customer_id VARCHAR, inbox_id VARCHAR, "
    "status VARCHAR, created_at TIMESTAMPTZ, closed_at TIMESTAMPTZ, topic_ids VARCHAR[], "
    "enriched_at TIMESTAMPTZ",
    "pr": "fid BIGINT, customer_id VARCHAR, fetched_at TIMESTAMPTZ, attrs VARCHAR",
    "mg": "fid BIGINT, customer_id VARCHAR, fetched_at TIMESTAMPTZ, merged_into VARCHAR",
}


def channel_type(masked: bool) -> str:
    """The SQL type of the contributions' content-type roll-up `ch`."""
    return "BIGINT" if masked else "VARCHAR[]"


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, order=True)
class Source:
    """One Parquet file of a source dataset, as the filesystem describes it now."""

    dataset: str
    path: str  # relative to the archive root, with "/"
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


def list_sources(root: str | Path) -> list[Source]:
    """Every `*.parquet` file under each source dataset's directory (hidden ones too, as a
    `<dataset>/**/*.parquet` glob reads them), sorted by dataset and path."""
    found: list[Source] = []
    for dataset in SOURCE_DATASETS:
        _walk(os.path.join(root, dataset), dataset, dataset, found)
    found.sort()
    return found


def _walk(directory: str, relative: str, dataset: str, found: list[Source]) -> None:
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        path = f"{relative}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            _walk(entry.path, path, dataset, found)
            continue
        if not entry.name.endswith(".parquet"):
            continue
        try:
            info = os.stat(entry.path)
        except FileNotFoundError:  # removed since listed: not part of this state
            continue
        if stat.S_ISREG(info.st_mode):
            found.append(
                Source(dataset, path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
            )


def sources_digest(sources: Iterable[Source]) -> str:
    """A digest of a listing: equal digests, equal listings."""
    digest = hashlib.sha256(b"fact-sources-v1\n")
    for s in sources:
        line = f"{s.dataset}\0{s.path}\0{s.size}\0{s.mtime_ns}\0{s.ctime_ns}\0{s.inode}\n"
        digest.update(line.encode())
    return digest.hexdigest()


SOURCES_SCHEMA = pa.schema(
    [
        ("fid", pa.int64()),
        ("dataset", pa.string()),
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("ctime_ns", pa.int64()),
        ("inode", pa.int64()),
    ]
)


def sources_table(numbered: Sequence[tuple[int, Source]]) -> pa.Table:
    """Files with their numbers (fid) as an Arrow table (SOURCES_SCHEMA)."""
    return pa.table(
        {
            "fid": [fid for fid, _ in numbered],
            "dataset": [s.dataset for _, s in numbered],
            "path": [s.path for _, s in numbered],
            "size": [s.size for _, s in numbered],
            "mtime_ns": [s.mtime_ns for _, s in numbered],
            "ctime_ns": [s.ctime_ns for _, s in numbered],
            "inode": [s.inode for _, s in numbered],
        },
        schema=SOURCES_SCHEMA,
    )


def empty_contributions(con: duckdb.DuckDBPyConnection, prefix: str, masked: bool) -> None:
    """Create the contribution tables `<prefix>cc` … `<prefix>mg`, empty."""
    for name, columns in CONTRIBUTIONS.items():
        cols = columns.format(ch=channel_type(masked))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {prefix}{name} ({cols})")


# One dataset's files, and each row's file number: $files and $fids are parallel lists.
_READ = "read_parquet($files, hive_partitioning=false, union_by_name=true) r"
_FID = "list_element(CAST($fids AS BIGINT[]), CAST(r.file_index AS BIGINT) + 1)"


def contribute(
    con: duckdb.DuckDBPyConnection,
    root: str | Path,
    numbered: Sequence[tuple[int, Source]],
    prefix: str,
    types: dict[str, int] | None,
) -> None:
    """Read these files and fill `<prefix>cc` … `<prefix>mg` with their contributions (created
    empty first). `types` maps content types to their bit in `ch` (and must already hold every
    type these items carry: see `content_types`); None rolls types up as lists."""
    empty_contributions(con, prefix, types is not None)
    by_dataset: dict[str, dict[str, list[Any]]] = {}
    for fid, source in numbered:
        params = by_dataset.setdefault(source.dataset, {"files": [], "fids": []})
        params["files"].append(str(Path(root) / source.path))
        params["fids"].append(fid)
    if "items" in by_dataset:
        _items(con, prefix, by_dataset["items"], types)
    if "customers" in by_dataset:
        _customers(con, prefix, by_dataset["customers"])
    if "conversations" in by_dataset:
        _conversations(con, prefix, by_dataset["conversations"])
    if "customer_profiles" in by_dataset:
        _profiles(con, prefix, by_dataset["customer_profiles"])


def content_types(
    con: duckdb.DuckDBPyConnection, root: str | Path, paths: Sequence[str]
) -> set[str]:
    """The distinct non-null content types of these item files (relative paths)."""
    if not paths:
        return set()
    files = [str(Path(root) / p) for p in paths]
    found = con.execute(
        "SELECT DISTINCT content_type FROM read_parquet($files, hive_partitioning=false, "
        "union_by_name=true) WHERE content_type IS NOT NULL",
        {"files": files},
    ).fetchall()
    return {str(r[0]) for r in found}


def _items(
    con: duckdb.DuckDBPyConnection,
    prefix: str,
    params: dict[str, list[Any]],
    types: dict[str, int] | None,
) -> None:
    events = ", ".join(quote(t) for t in EVENT_TYPES)
    # Only status and topic changes need their JSON parsed.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _ev AS SELECT {_FID} AS fid, r.conversation_id, r.item_id,
            r."timestamp" AS ts, r.content_type,
            json_extract_string(r.raw_json, '$.content.status') AS status,
            CAST(json_extract(r.raw_json, '$.content.addedTopicIds') AS VARCHAR[]) AS added,
            CAST(json_extract(r.raw_json, '$.content.removedTopicIds') AS VARCHAR[]) AS removed
        FROM {_READ}
        WHERE r.content_type IN ({events}) AND r.conversation_id IS NOT NULL""",
        params,
    )
    con.execute(
        f"""INSERT INTO {prefix}st SELECT fid, conversation_id, ts, item_id, status FROM _ev
        WHERE content_type = 'CONVERSATION_STATUS_CHANGE'
        QUALIFY row_number() OVER (
            PARTITION BY fid, conversation_id ORDER BY ts DESC, item_id DESC) = 1"""
    )
    con.execute(
        f"""INSERT INTO {prefix}tp SELECT fid, conversation_id, topic_id, ts, item_id, added
        FROM (
            SELECT fid, conversation_id, item_id, ts, unnest(added) AS topic_id, true AS added
            FROM _ev WHERE content_type = 'TOPIC_CHANGE' AND added IS NOT NULL
            UNION ALL
            SELECT fid, conversation_id, item_id, ts, unnest(removed) AS topic_id, false AS added
            FROM _ev WHERE content_type = 'TOPIC_CHANGE' AND removed IS NOT NULL
        )
        QUALIFY row_number() OVER (
            PARTITION BY fid, conversation_id, topic_id ORDER BY ts DESC, item_id DESC) = 1"""
    )
    con.execute("DROP TABLE _ev")
    if types is None:
        channel = "list_sort(list_distinct(list(r.content_type)))"
    elif types:
        bits = " ".join(f"WHEN {quote(t)} THEN {1 << b}" for t, b in sorted(types.items()))
        channel = f"bit_or(CASE r.content_type {bits} ELSE 0 END)"
    else:
        channel = "CAST(0 AS BIGINT)"
    con.execute(
        f"""INSERT INTO {prefix}cc SELECT {_FID}, r.conversation_id, r.customer_id,
            min(r."timestamp"), max(r."timestamp"), count(*), {channel}
        FROM {_READ}
        GROUP BY r.file_index, r.conversation_id, r.customer_id""",
        params,
    )


def _customers(con: duckdb.DuckDBPyConnection, prefix: str, params: dict[str, list[Any]]) -> None:
    con.execute(
        f"""INSERT INTO {prefix}cu SELECT {_FID}, r.customer_id, r.archived_at, r.job_id,
            CAST(r.emails AS VARCHAR[]), CAST(r.phones AS VARCHAR[])
        FROM {_READ}
        QUALIFY row_number() OVER (
            PARTITION BY r.file_index, r.customer_id
            ORDER BY r.archived_at DESC, r.job_id DESC) = 1""",
        params,
    )


def _conversations(
    con: duckdb.DuckDBPyConnection, prefix: str, params: dict[str, list[Any]]
) -> None:
    con.execute(
        f"""INSERT INTO {prefix}en SELECT {_FID}, r.conversation_id, r.customer_id, r.inbox_id,
            r.status, r.created_at, r.closed_at, list_sort(CAST(r.topic_ids AS VARCHAR[])),
            r.fetched_at
        FROM {_READ}
        QUALIFY row_number() OVER (
            PARTITION BY r.file_index, r.conversation_id ORDER BY r.fetched_at DESC) = 1""",
        params,
    )


def _profiles(con: duckdb.DuckDBPyConnection, prefix: str, params: dict[str, list[Any]]) -> None:
    # The newest row wins; an event's row (changed, deleted, merged since) carries no
    # attributes: unknown until fetched again.
    con.execute(
        f"""INSERT INTO {prefix}pr SELECT {_FID}, r.customer_id, r.fetched_at,
            CAST(r.custom_attributes_json AS VARCHAR)
        FROM {_READ}
        QUALIFY row_number() OVER (
            PARTITION BY r.file_index, r.customer_id ORDER BY r.fetched_at DESC) = 1""",
        params,
    )
    described = con.execute(
        "DESCRIBE SELECT * FROM read_parquet($files, hive_partitioning=false, union_by_name=true)",
        {"files": params["files"]},
    ).fetchall()
    if "merged_into" not in {r[0] for r in described}:
        return
    # Customers merged away (CUSTOMER/MERGED events, recorded by enrichment): the newest.
    con.execute(
        f"""INSERT INTO {prefix}mg SELECT {_FID}, r.customer_id, r.fetched_at, r.merged_into
        FROM {_READ}
        WHERE r.merged_into IS NOT NULL AND r.merged_into <> r.customer_id
        QUALIFY row_number() OVER (
            PARTITION BY r.file_index, r.customer_id ORDER BY r.fetched_at DESC) = 1""",
        params,
    )
