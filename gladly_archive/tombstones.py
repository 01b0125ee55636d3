"""Tombstones of erased customers: ids and keyed hashes of their emails and phones, per run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from gladly_archive.archive import Archive
from gladly_archive.fs import atomic_write_parquet, exists
from gladly_archive.layout import TOMBSTONES_DIR, check_layout, id_partition
from gladly_archive.schemas import TOMBSTONES

__all__ = [
    "TOMBSTONES_DIR",
    "match_tombstones",
    "read_tombstones",
    "tombstone_path",
    "write_tombstones",
]

# An HMAC-SHA256 hex digest as the caller computes it. Anything else may be a clear email or phone
# number, which a tombstone must never hold.
_DIGEST = r"^[0-9a-f]{64}$"
_HASH_COLUMNS = ("email_hashes", "phone_hashes")
_EMPTY_LIST = pa.scalar([], pa.list_(pa.string()))


def tombstone_path(archive: Archive, run_id: str) -> str:
    """The file holding one run's tombstones."""
    return archive.path(f"{TOMBSTONES_DIR}/{id_partition(TOMBSTONES_DIR, run_id)}/part-0.parquet")


def _invalid_digests(values: pa.Array | pa.ChunkedArray) -> int:
    """How many values (nulls included) are not a lowercase 64-character hex digest."""
    valid = pc.fill_null(pc.match_substring_regex(values, pattern=_DIGEST), False)
    return len(values) - (pc.sum(valid).as_py() or 0)


def _check_digests(name: str, values: pa.Array | pa.ChunkedArray) -> None:
    # The message counts, never quotes: a bad value may be the clear email it should have hashed.
    bad = _invalid_digests(values)
    if bad:
        raise ValueError(
            f"{name}: {bad} value(s) are not HMAC-SHA256 hex digests (64 lowercase hex "
            "characters); hash emails and phones before recording them"
        )


def _as_table(table_or_rows: pa.Table | list[dict[str, Any]], run_id: str) -> pa.Table:
    """The caller's tombstones as a TOMBSTONES table, validated, hashes as given."""
    if isinstance(table_or_rows, pa.Table):
        given = table_or_rows
    elif not table_or_rows:
        return TOMBSTONES.empty_table()
    else:
        names = sorted({name for row in table_or_rows for name in row})
        unknown = [n for n in names if n not in TOMBSTONES.names]
        if unknown:
            raise ValueError(f"tombstones: unexpected columns {unknown}; known: {TOMBSTONES.names}")
        fields = [TOMBSTONES.field(n).with_nullable(True) for n in names]
        given = pa.Table.from_pylist(table_or_rows, schema=pa.schema(fields))
    unknown = [n for n in given.column_names if n not in TOMBSTONES.names]
    if unknown:
        raise ValueError(f"tombstones: unexpected columns {unknown}; known: {TOMBSTONES.names}")
    rows = given.num_rows
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    for field in TOMBSTONES:
        if field.name in given.column_names:
            try:
                columns[field.name] = given.column(field.name).cast(field.type)
            except (pa.ArrowException, TypeError, ValueError):
                # Arrow's message quotes the value; the column's name is enough.
                raise ValueError(f"tombstones: column {field.name!r} is not {field.type}") from None
        elif field.name in _HASH_COLUMNS:
            columns[field.name] = pa.nulls(rows, field.type)
        elif field.name == "run_id":
            columns[field.name] = pa.array([run_id] * rows, pa.string())
        else:
            raise ValueError(f"tombstones: missing column {field.name!r}")
    for name in _HASH_COLUMNS:
        columns[name] = pc.fill_null(columns[name], _EMPTY_LIST)
        _check_digests(f"tombstones.{name}", pc.list_flatten(columns[name]))
    if pc.any(pc.not_equal(columns["run_id"], run_id)).as_py():
        raise ValueError(f"tombstones: rows name a run other than {run_id!r}")
    for name in ("customer_id", "deleted_at", "plan_hash"):
        if columns[name].null_count:
            raise ValueError(f"tombstones: {name} is required ({columns[name].null_count} null)")
    if pc.any(pc.equal(columns["customer_id"], "")).as_py():
        raise ValueError("tombstones: customer_id must not be empty")
    return pa.table(columns, schema=TOMBSTONES)


def _hash_lists(pairs: pa.Table, customers: pa.Array) -> pa.Array:
    """list<string> per customer (sorted, distinct) from (customer_id, hash) pairs."""
    pairs = pairs.group_by(["customer_id", "hash"]).aggregate([])
    pairs = pairs.sort_by([("customer_id", "ascending"), ("hash", "ascending")])
    slot = np.asarray(pc.index_in(pairs.column("customer_id"), value_set=customers), np.int64)
    counts = np.bincount(slot, minlength=len(customers))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), pairs.column("hash").combine_chunks().cast(pa.string())
    )


def _union(table: pa.Table) -> pa.Table:
    """One row per customer: hashes united, the earliest deletion (and its plan) kept."""
    table = table.sort_by(
        [("customer_id", "ascending"), ("deleted_at", "ascending"), ("plan_hash", "ascending")]
    )
    ids = table.column("customer_id").combine_chunks()
    if len(ids) == 0:
        return TOMBSTONES.empty_table()
    changed = np.asarray(pc.not_equal(ids[1:], ids[:-1]), dtype=bool)
    firsts = np.concatenate(([0], np.flatnonzero(changed) + 1))
    kept = table.take(pa.array(firsts))
    customers = kept.column("customer_id").combine_chunks()
    columns = {name: kept.column(name) for name in TOMBSTONES.names}
    for name in _HASH_COLUMNS:
        lists = table.column(name).combine_chunks()
        parents = pc.list_parent_indices(lists)
        pairs = pa.table({"customer_id": pc.take(ids, parents), "hash": pc.list_flatten(lists)})
        columns[name] = _hash_lists(pairs, customers)
    return pa.table(columns, schema=TOMBSTONES)


def write_tombstones(
    archive: Archive, table_or_rows: pa.Table | list[dict[str, Any]], *, run_id: str
) -> int:
    """Record erased customers in ``tombstones/run-<run_id>/part-0.parquet``.

    Rows need ``customer_id``, ``deleted_at`` and ``plan_hash``; ``email_hashes`` and
    ``phone_hashes`` (HMAC-SHA256 hex digests the caller computed, never clear values) default
    to empty lists and ``run_id`` to the argument. Writing a run again replaces its file with the
    union (one row per customer: hashes united, earliest ``deleted_at`` and its plan kept), so a
    retried run is idempotent. The file is written under a hidden temporary name and renamed.
    One writer per run; no archive lock is taken, so recording a deletion never waits for a
    commit. Returns the number of tombstones the run's file holds. Raises ValueError (never
    quoting a value) for a malformed digest, a missing required value or an unknown column,
    OldLayoutError for an archive an earlier release wrote.
    """
    path = tombstone_path(archive, run_id)
    new = _as_table(table_or_rows, run_id)
    fs = archive.fs
    check_layout(fs, archive.root)
    old = pq.read_table(path, filesystem=fs, schema=TOMBSTONES) if exists(fs, path) else None
    if new.num_rows == 0:
        return 0 if old is None else int(old.num_rows)
    merged = _union(new if old is None else pa.concat_tables([old, new]))
    atomic_write_parquet(fs, path, merged)
    return int(merged.num_rows)


def read_tombstones(archive: Archive) -> pa.Table:
    """Every run's tombstones (TOMBSTONES schema), by run and customer; empty if none."""
    base = archive.path(TOMBSTONES_DIR)
    if not exists(archive.fs, base):
        return TOMBSTONES.empty_table()
    dataset = ds.dataset(base, schema=TOMBSTONES, format="parquet", filesystem=archive.fs)
    table = dataset.to_table()
    return table.sort_by([("run_id", "ascending"), ("customer_id", "ascending")])


def _digests(values: pa.Array | pa.ChunkedArray | list[str], name: str) -> pa.Array:
    array = pa.array(values, pa.string()) if isinstance(values, list) else values
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.string())
    _check_digests(name, array)
    return pc.unique(array)


def match_tombstones(
    archive: Archive,
    *,
    email_hashes: pa.Array | list[str],
    phone_hashes: pa.Array | list[str],
) -> pa.Table:
    """The tombstones holding any of the given email or phone digests (TOMBSTONES schema).

    Emails match email digests and phones phone digests, vectorised over all tombstones (no
    loop per row). The digests are validated like those written (ValueError, never quoting).
    """
    wanted = {
        "email_hashes": _digests(email_hashes, "email_hashes"),
        "phone_hashes": _digests(phone_hashes, "phone_hashes"),
    }
    table = read_tombstones(archive)
    hit = np.zeros(table.num_rows, dtype=bool)
    for name, values in wanted.items():
        if table.num_rows == 0 or len(values) == 0:
            continue
        lists = table.column(name).combine_chunks()
        found = pc.is_in(pc.list_flatten(lists), value_set=values)
        parents = np.asarray(pc.filter(pc.list_parent_indices(lists), found))
        hit[parents] = True
    return table.filter(pa.array(hit))
