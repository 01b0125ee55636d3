"""Append-only snapshots of facts fetched through the API (conversations, customer profiles)."""

from __future__ import annotations

import pyarrow as pa

from gladly_archive.archive import Archive
from gladly_archive.layout import validate_job_id
from gladly_archive.schemas import CONVERSATIONS, CUSTOMER_PROFILES
from gladly_archive.writer import DatasetWriter

ENRICHMENT_DATASETS: dict[str, pa.Schema] = {
    "conversations": CONVERSATIONS,
    "customer_profiles": CUSTOMER_PROFILES,
}


def append_snapshot(archive: Archive, dataset: str, table: pa.Table, *, run_id: str) -> int:
    """Write one run's fetched facts under `<dataset>/run=<run_id>/`; returns rows written.

    Each file is written under a temporary name and renamed into place whole, so readers see a
    run's file entirely or not at all; readers keep the newest `fetched_at` per id, so a
    crashed run only costs the calls it made.
    """
    schema = ENRICHMENT_DATASETS.get(dataset)
    if schema is None:
        raise ValueError(
            f"unknown enrichment dataset {dataset!r}; known: {sorted(ENRICHMENT_DATASETS)}"
        )
    validate_job_id(run_id)
    if table.num_rows == 0:
        return 0
    with DatasetWriter(
        archive.fs,
        archive.path(dataset),
        dataset,
        schema,
        file_prefix=f"part-{run_id}",
        partition=f"run={run_id}",
    ) as writer:
        return writer.write_batches(table.cast(schema).to_batches())
