"""Append-only snapshots of facts fetched through the API: conversations, profiles, directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive.archive import Archive
from gladly_archive.catalog import refresh_catalog
from gladly_archive.fs import atomic_write_bytes, exists, read_bytes
from gladly_archive.layout import check_layout, id_partition, validate_job_id
from gladly_archive.schemas import AGENTS, CONVERSATIONS, CUSTOMER_PROFILES, INBOXES, TOPICS
from gladly_archive.writer import DatasetWriter

__all__ = [
    "ENRICHMENT_DATASETS",
    "ENRICHMENT_STATE",
    "REFERENCE_DATASETS",
    "EnrichmentState",
    "append_reference_snapshot",
    "append_snapshot",
    "read_enrichment_state",
    "write_enrichment_state",
]

ENRICHMENT_DATASETS: dict[str, pa.Schema] = {
    "conversations": CONVERSATIONS,
    "customer_profiles": CUSTOMER_PROFILES,
}

# The organisation's directory (GET /inboxes, /topics, /agents): dataset → its id column.
# Topics and agents also arrive in every export job (``job-<id>/``); API listings are written
# as ``job-<run id>/`` beside them, and readers keep the newest `archived_at` per id.
REFERENCE_DATASETS: dict[str, str] = {
    "inboxes": "inbox_id",
    "topics": "topic_id",
    "agents": "agent_id",
}
_REFERENCE_SCHEMAS: dict[str, pa.Schema] = {"inboxes": INBOXES, "topics": TOPICS, "agents": AGENTS}
# Columns that say where and when a row was archived, not what Gladly said about the entry.
_BOOKKEEPING = ("raw_json", "job_id", "archived_at")
_ONE_MICROSECOND = timedelta(microseconds=1)


def _write_run(
    archive: Archive, dataset: str, schema: pa.Schema, table: pa.Table, run_id: str
) -> int:
    """Write `table` as `<dataset>/<id_partition>/part-<run_id>-N.parquet`; rows written.

    Each file is written under a hidden temporary name and renamed into place whole, so readers
    see a run's file entirely or not at all. Refuses (OldLayoutError) an archive that an
    earlier release wrote, before writing anything.
    """
    partition = id_partition(dataset, run_id)
    if table.num_rows == 0:
        return 0
    check_layout(archive.fs, archive.root)
    with DatasetWriter(
        archive.fs,
        archive.path(dataset),
        dataset,
        schema,
        file_prefix=f"part-{run_id}",
        partition=partition,
    ) as writer:
        rows = writer.write_batches(table.cast(schema).to_batches())
    refresh_catalog(archive.fs, archive.root)  # the dataset may have had no file before
    return rows


def append_snapshot(archive: Archive, dataset: str, table: pa.Table, *, run_id: str) -> int:
    """Write one run's fetched facts under `<dataset>/run-<run_id>/`; returns rows written.

    Each file is written under a temporary name and renamed into place whole, so readers see a
    run's file entirely or not at all; readers keep the newest `fetched_at` per id, so a
    crashed run only costs the calls it made.
    """
    schema = ENRICHMENT_DATASETS.get(dataset)
    if schema is None:
        raise ValueError(
            f"unknown enrichment dataset {dataset!r}; known: {sorted(ENRICHMENT_DATASETS)}"
        )
    return _write_run(archive, dataset, schema, table, run_id)


def append_reference_snapshot(
    archive: Archive, dataset: str, table: pa.Table, *, run_id: str
) -> int:
    """Write one full listing of `inboxes`, `topics` or `agents` under `<dataset>/job-<run_id>/`.

    `table` has the dataset's schema (INBOXES, TOPICS, AGENTS) with `archived_at` set to when
    the listing was fetched. Returns the rows written, 0 when nothing was written:

    - When every entry of the listing already reads the same (every column but raw_json,
      job_id and archived_at) as the newest row the archive holds for its id, nothing is
      written: the archive already says it, a rerun adds nothing, and `Archive.state` (the
      planner's fact cache key) changes only when a name did.
    - Otherwise the whole listing is written, one file renamed into place whole. Readers keep
      the newest `archived_at` per id, so the rows are stamped at least one microsecond after
      the newest row already stored: a listing fetched now is the newest word on every name,
      even when an export job archived in the same run carries the same clock.

    A crash leaves either the whole file or nothing visible; the next run writes it again.
    """
    id_column = REFERENCE_DATASETS.get(dataset)
    if id_column is None:
        raise ValueError(
            f"unknown reference dataset {dataset!r}; known: {sorted(REFERENCE_DATASETS)}"
        )
    schema = _REFERENCE_SCHEMAS[dataset]
    validate_job_id(run_id)
    table = table.cast(schema)
    if table.num_rows == 0:
        return 0
    values = [name for name in schema.names if name not in _BOOKKEEPING]
    stored = archive.dataset(dataset).to_table(columns=[*values, "archived_at"])
    if _listing_is_stored(table, stored, id_column, values):
        return 0
    newest = pc.max(stored.column("archived_at")).as_py() if stored.num_rows else None
    if newest is not None and pc.min(table.column("archived_at")).as_py() <= newest:
        index = schema.get_field_index("archived_at")
        stamps = pa.array([newest + _ONE_MICROSECOND] * table.num_rows, schema[index].type)
        table = table.set_column(index, schema[index], stamps)
    # `job-<run id>` beside the export jobs' own topics and agents (layout.id_partition).
    return _write_run(archive, dataset, schema, table, run_id)


def _listing_is_stored(
    listing: pa.Table, stored: pa.Table, id_column: str, values: list[str]
) -> bool:
    """True when each listed entry equals the newest stored row (every one, if tied) of its id."""
    if stored.num_rows == 0:
        return False
    per_id = stored.group_by(id_column).aggregate([("archived_at", "max")])
    latest = pa.table({id_column: per_id[id_column], "archived_at": per_id["archived_at_max"]})
    newest = stored.join(latest, keys=[id_column, "archived_at"], join_type="inner")
    distinct = newest.select(values).group_by(values).aggregate([])
    held: dict[str, set[tuple[object, ...]]] = {}
    for row in distinct.to_pylist():
        held.setdefault(row[id_column], set()).add(tuple(row[name] for name in values))
    for row in listing.select(values).to_pylist():
        if held.get(row[id_column]) != {tuple(row[name] for name in values)}:
            return False
    return True


# Where enrichment keeps how far its conversation facts reach: no customer data, only times.
ENRICHMENT_STATE = "_enrichment/state.json"
_STATE_VERSION = 1


@dataclass(frozen=True)
class EnrichmentState:
    """How far the archive's conversation facts reach.

    Every conversation created on or after `covered_from` that Gladly still holds had its
    facts read as they stood at `as_of` or later (a report pass started then, or an events
    pass read every change up to then).
    """

    as_of: datetime
    covered_from: date

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": _STATE_VERSION,
                "as_of": self.as_of.astimezone(UTC).isoformat(),
                "covered_from": self.covered_from.isoformat(),
            },
            sort_keys=True,
        ).encode()


def read_enrichment_state(archive: Archive) -> EnrichmentState | None:
    """The stored state, or None when there is none or it cannot be trusted (unreadable,
    another version, a time without zone): the caller then reads everything again."""
    path = archive.path(ENRICHMENT_STATE)
    if not exists(archive.fs, path):
        return None
    try:
        data = json.loads(read_bytes(archive.fs, path))
        if data.get("version") != _STATE_VERSION:
            return None
        as_of = datetime.fromisoformat(data["as_of"])
        covered_from = date.fromisoformat(data["covered_from"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if as_of.tzinfo is None:
        return None
    return EnrichmentState(as_of.astimezone(UTC), covered_from)


def write_enrichment_state(archive: Archive, state: EnrichmentState) -> None:
    """Replace the stored state whole (readers see the old file or the new one)."""
    atomic_write_bytes(archive.fs, archive.path(ENRICHMENT_STATE), state.to_json())
