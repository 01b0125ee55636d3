"""DuckDB views over an archive: every dataset by glob, and one row per customer, agent, topic,
inbox, conversation and profile; registered on a connection or shipped as ``gladly.duckdb``."""

# Views are SQL text built from our own schema names and the archive's path (quoted): S608's
# "string-built query" is how a view is defined.
# ruff: noqa: S608

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time

import duckdb
import pyarrow.fs as pafs

from gladly_archive.fs import (
    delete_if_exists,
    fsync_dirs,
    fsync_file,
    join,
    list_files,
    local_path,
    resolve_root,
    temp_name,
)
from gladly_archive.layout import shown_root
from gladly_archive.schemas import DATASETS

__all__ = [
    "CATALOG_NAME",
    "DATASET_VIEWS",
    "LATEST_VIEWS",
    "CatalogError",
    "refresh_catalog",
    "register_views",
    "view_statements",
    "write_catalog",
]

log = logging.getLogger(__name__)

# The catalog file at a local archive's root: views only, never a row of data.
CATALOG_NAME = "gladly.duckdb"
# The datasets an analyst reads, each a view of the same name over `<root>/<dataset>/**/*.parquet`.
DATASET_VIEWS = (
    "items",
    "transcripts",
    "customers",
    "agents",
    "topics",
    "inboxes",
    "conversations",
    "customer_profiles",
)
# One row per id: view -> (dataset, id column, the column whose newest value wins, tie-breaks).
LATEST_VIEWS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "customers_latest": ("customers", "customer_id", "archived_at", ("job_id",)),
    "agents_latest": ("agents", "agent_id", "archived_at", ("job_id",)),
    "topics_latest": ("topics", "topic_id", "archived_at", ("job_id",)),
    "inboxes_latest": ("inboxes", "inbox_id", "archived_at", ("job_id",)),
    "conversations_latest": ("conversations", "conversation_id", "fetched_at", ()),
    # An event's row (changed, deleted, merged at fetched_at) outranks a GET of the same instant.
    "customer_profiles_latest": ("customer_profiles", "customer_id", "fetched_at", ("event",)),
}
# customers_latest holds every customer an export listed, by its newest record: one merged
# into another since keeps its row (the export files said so), and customer_profiles_latest
# tells which are gone. An erased customer has no row left anywhere (the purge removed them).
# customer_profiles_latest leaves out a profile whose newest row says it is gone: deleted, or
# merged into another customer (that customer's own row stays). A kept row whose event is set
# says the profile changed after it was last read: its custom attributes are unknown (NULL).
_GONE = (
    "event = 'CUSTOMER_PROFILE/DELETED' OR (event = 'CUSTOMER/MERGED' AND merged_into IS NOT NULL)"
)
# DuckDB reads these characters in a path as a glob pattern (it has no escape for them).
_GLOB_CHARACTERS = "*?["
# The view whose comment is the hash of every view's statement: a catalog holding the same
# views is not written again.
_SIGNED = "items"
# A temporary catalog this old was left by a killed refresh (a live one takes seconds).
_STALE_TEMP_SECONDS = 3600


class CatalogError(ValueError):
    """The archive's path cannot be named in a DuckDB view."""


def _quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@functools.cache
def _typed_empty(dataset: str) -> str:
    """A query with exactly the dataset's columns and types (as DuckDB reads them from Arrow),
    and no row."""
    schema = DATASETS[dataset]
    with duckdb.connect() as con:
        kinds = [str(t) for t in con.from_arrow(schema.empty_table()).types]
    columns = ", ".join(
        f"CAST(NULL AS {kind}) AS {_quote_name(name)}"
        for name, kind in zip(schema.names, kinds, strict=True)
    )
    return f"SELECT {columns} WHERE false"


def _dataset_query(dataset: str, glob: str | None) -> str:
    """Exactly the dataset's columns, in its schema's order: from its files when it has any
    (a column files lack reads as NULL, a column the schema lacks is left out), else none."""
    empty = _typed_empty(dataset)
    if glob is None:
        return empty
    columns = ", ".join(_quote_name(name) for name in DATASETS[dataset].names)
    files = (
        f"SELECT * FROM read_parquet({_quote_text(glob)}, hive_partitioning = false, "
        "union_by_name = true)"
    )
    return f"SELECT {columns} FROM ({empty} UNION ALL BY NAME {files})"


def _latest_query(view: str) -> str:
    dataset, key, newest, ties = LATEST_VIEWS[view]
    order = ", ".join(f"{_quote_name(c)} DESC" for c in (newest, *ties))
    query = (
        f"SELECT * FROM {_quote_name(dataset)} QUALIFY row_number() OVER "
        f"(PARTITION BY {_quote_name(key)} ORDER BY {order} NULLS LAST) = 1"
    )
    if dataset == "customer_profiles":
        query = f"SELECT * FROM ({query}) WHERE event IS NULL OR NOT ({_GONE})"
    return query


def _glob_base(fs: pafs.FileSystem, root: str) -> str:
    base = shown_root(fs, root).rstrip("/")
    bad = sorted({c for c in base if c in _GLOB_CHARACTERS})
    if bad:
        raise CatalogError(
            f"the archive root {base} holds {' '.join(bad)}, which DuckDB reads as a file "
            "pattern: move the archive to a path without them to query it with DuckDB"
        )
    return base


def view_statements(fs: pafs.FileSystem, root: str) -> list[str]:
    """The ``CREATE OR REPLACE VIEW`` statements of every view (DATASET_VIEWS, LATEST_VIEWS).

    A dataset with no file yet is an empty view with its schema's columns and types; the
    others read every file under the dataset by glob at each query, so files written later
    are seen, but a dataset that gains its first file needs the views made again.
    """
    base = _glob_base(fs, root)
    statements = []
    for dataset in DATASET_VIEWS:
        present = bool(list_files(fs, join(root, dataset), recursive=True))
        glob = f"{base}/{dataset}/**/*.parquet" if present else None
        query = _dataset_query(dataset, glob)
        statements.append(f"CREATE OR REPLACE VIEW {_quote_name(dataset)} AS {query}")
    for view in LATEST_VIEWS:
        statements.append(f"CREATE OR REPLACE VIEW {_quote_name(view)} AS {_latest_query(view)}")
    return statements


def register_views(
    connection: duckdb.DuckDBPyConnection, root: str, filesystem: pafs.FileSystem | None = None
) -> None:
    """Create every view on ``connection`` for the archive at ``root`` (a local path or a URI
    DuckDB reads itself). CatalogError for a path DuckDB would read as a pattern."""
    fs, path = resolve_root(root, filesystem)
    for statement in view_statements(fs, path):
        connection.execute(statement)


def write_catalog(fs: pafs.FileSystem, root: str) -> str | None:
    """Make ``<root>/gladly.duckdb`` hold every view (absolute paths); its path, or None for
    an archive that is not local (a catalog names local files only).

    A catalog already holding exactly these views is left as it is (the view of a dataset
    changes only when the dataset gains its first file or loses its last, or the archive
    moves). Otherwise a new one is written under a hidden temporary name, closed, fsynced and
    renamed over the old file, so an analyst holding the old one open (read-only) keeps
    reading it undisturbed.
    """
    if local_path(fs, root) is None:
        return None
    final = join(root, CATALOG_NAME)
    os_final = local_path(fs, final)
    assert os_final is not None
    statements = view_statements(fs, root)
    signature = hashlib.sha256("\n".join(statements).encode()).hexdigest()
    if _stored_signature(os_final) == signature:
        return final
    _remove_stale_temps(os.path.dirname(os_final))
    tmp = temp_name(os_final)
    try:
        with duckdb.connect(tmp) as con:
            for statement in statements:
                con.execute(statement)
            con.execute(f"COMMENT ON VIEW {_SIGNED} IS {_quote_text(signature)}")
            con.execute("CHECKPOINT")
        fsync_file(fs, tmp)
        os.replace(tmp, os_final)
    except BaseException:
        delete_if_exists(fs, tmp)
        delete_if_exists(fs, tmp + ".wal")
        raise
    fsync_dirs(fs, {os.path.dirname(os_final)})
    return final


def _stored_signature(path: str) -> str | None:
    """The signature of the views a catalog holds (None: no catalog, or one not readable)."""
    if not os.path.isfile(path):
        return None
    try:
        with duckdb.connect(path, read_only=True) as con:
            row = con.execute(
                "SELECT comment FROM duckdb_views() WHERE view_name = ?", [_SIGNED]
            ).fetchone()
    except duckdb.Error:
        return None  # another version's file, a damaged one, or a writer holds it: replace it
    return None if row is None or row[0] is None else str(row[0])


def refresh_catalog(fs: pafs.FileSystem, root: str, *, create: bool = False) -> None:
    """Bring a local archive's ``gladly.duckdb`` up to date after a write.

    Every write inside the archive (an export commit, a fold, a purge, an item purge, an
    enrichment snapshot) keeps an existing catalog current; the runs an operator starts (an
    export or enrichment run, a migration) pass ``create`` to make it where there is none.
    The data is already in place when this runs, so a failure only leaves the catalog as it
    was: it is logged, never raised.
    """
    os_root = local_path(fs, root)
    if os_root is None:
        return
    if not create and not os.path.isfile(os.path.join(os_root, CATALOG_NAME)):
        return
    try:
        write_catalog(fs, root)
    except (OSError, duckdb.Error, CatalogError) as exc:
        log.warning("could not refresh the archive's %s: %s", CATALOG_NAME, _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, CatalogError):
        return str(exc)
    return type(exc).__name__


def _remove_stale_temps(directory: str) -> None:
    """Drop temporary catalogs a killed refresh left (hidden names, older than an hour)."""
    prefix = f".{CATALOG_NAME}."
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_file():
            continue
        try:
            if now - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue
