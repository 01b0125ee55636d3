"""After an export: erased customers who came back, and erased data an old export carried back."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive import Archive
from gladly_archive.keyed import keyed_hash
from gladly_archive.location import drop_facts
from gladly_archive.purge import Progress, purge_customers
from gladly_archive.tombstones import read_tombstones

__all__ = ["Reappeared", "ReappearedReport", "check_reappeared", "find_reappeared"]

logger = logging.getLogger(__name__)
# The contact kinds a reappeared profile is matched on, and the customers column holding them.
_CONTACTS: tuple[tuple[Literal["email", "phone"], str], ...] = (
    ("email", "emails"),
    ("phone", "phones"),
)


@dataclass(frozen=True)
class Reappeared:
    """A profile in a new export whose email or phone hash matches an erased customer's.

    Gladly recreates a profile when the person writes again, and lookup adaptors refill it; the
    new profile is new data, so it is reported for a person to decide, never deleted blindly."""

    customer_id: str
    tombstoned_id: str
    deleted_at: datetime
    matched_on: str  # "email" or "phone"


@dataclass
class ReappearedReport:
    """What the check found: reappeared profiles, and erased ids re-imported (then purged)."""

    reappeared: list[Reappeared] = field(default_factory=list)
    repurged: list[str] = field(default_factory=list)
    rows_repurged: int = 0
    hashes_checked: bool = True  # False without GLADLY_AUDIT_KEY: only ids were compared


def _pairs(
    customers: pa.Table, column: str, kind: Literal["email", "phone"], key: bytes
) -> pa.Table:
    """(customer_id, hash[, archived_at]) for every email or phone of every customer row; each
    distinct value is hashed once."""
    hashed: dict[str, str] = {}
    rows: dict[str, list[object]] = {"customer_id": [], "hash": []}
    stamped = "archived_at" in customers.column_names
    if stamped:
        rows["archived_at"] = []
    stamps = customers.column("archived_at").to_pylist() if stamped else None
    ids = customers.column("customer_id").to_pylist()
    for index, found in enumerate(customers.column(column).to_pylist()):
        for value in found or ():
            if value not in hashed:
                hashed[value] = keyed_hash(value, kind=kind, key=key)
            rows["customer_id"].append(ids[index])
            rows["hash"].append(hashed[value])
            if stamps is not None:
                rows["archived_at"].append(stamps[index])
    schema = [("customer_id", pa.string()), ("hash", pa.string())]
    if stamped:
        schema.append(("archived_at", customers.schema.field("archived_at").type))
    return pa.table(rows, schema=pa.schema(schema))


def _matches(customers: pa.Table, stones: pa.Table, key: bytes) -> list[Reappeared]:
    """Customers not erased whose email or phone hash is an erased customer's. When the rows
    carry `archived_at`, only rows archived at or after that customer's deletion count."""
    erased = stones.column("customer_id").combine_chunks()
    fresh = customers.filter(pc.invert(pc.is_in(customers.column("customer_id"), erased)))
    found: set[Reappeared] = set()
    for kind, column in _CONTACTS:
        flat = stones.select(["customer_id", f"{kind}_hashes", "deleted_at"])
        parents = pc.list_parent_indices(flat.column(f"{kind}_hashes"))
        known = pa.table(
            {
                "tombstoned_id": pc.take(flat.column("customer_id"), parents),
                "deleted_at": pc.take(flat.column("deleted_at"), parents),
                "hash": pc.list_flatten(flat.column(f"{kind}_hashes")),
            }
        )
        if known.num_rows == 0 or fresh.num_rows == 0:
            continue
        pairs = _pairs(fresh, column, kind, key)
        if pairs.num_rows == 0:
            continue
        for row in pairs.join(known, "hash", join_type="inner").to_pylist():
            if "archived_at" in row and row["archived_at"] < row["deleted_at"]:
                continue  # held before the deletion: not a profile that came back
            found.add(Reappeared(row["customer_id"], row["tombstoned_id"], row["deleted_at"], kind))
    return sorted(found, key=lambda r: (r.customer_id, r.matched_on, r.tombstoned_id))


def find_reappeared(archive: Archive, key: bytes) -> list[Reappeared]:
    """Every customer the archive holds, not erased, whose email or phone (keyed hash) is an
    erased customer's, in a row archived at or after that deletion: what the export runs
    since then reported as reappeared, for as long as those profiles are not erased. Reads
    only (the export's check purges; this never writes)."""
    stones = read_tombstones(archive)
    if stones.num_rows == 0:
        return []
    since = pc.min(stones.column("deleted_at"))
    customers = archive.dataset("customers").to_table(
        columns=["customer_id", "emails", "phones", "archived_at"],
        filter=pc.field("archived_at") >= since,
    )
    return _matches(customers, stones, key)


def check_reappeared(
    archive: Archive,
    job_ids: Iterable[str],
    key: bytes | None,
    *,
    progress: Progress | None = None,
) -> ReappearedReport:
    """Compare the customers the given jobs brought with the tombstones.

    Erased ids that an export re-imported (a job whose window ended before the deletion,
    archived after it) are purged again at once (`progress` hears the purge): our archive must
    not keep them. With `key`, new profiles holding an erased customer's email or phone (keyed
    hashes) are reported.
    """
    report = ReappearedReport()
    jobs = pa.array(sorted(set(job_ids)), pa.string())
    stones = read_tombstones(archive)
    if len(jobs) == 0 or stones.num_rows == 0:
        return report
    erased = stones.column("customer_id").combine_chunks()
    customers = archive.dataset("customers").to_table(
        columns=["customer_id", "emails", "phones"], filter=pc.field("job_id").isin(jobs)
    )
    items = archive.dataset("items").to_table(
        columns=["customer_id"], filter=pc.field("job_id").isin(jobs)
    )
    seen = pc.unique(
        pa.chunked_array(
            [*customers.column("customer_id").chunks, *items.column("customer_id").chunks],
            pa.string(),
        )
    )
    back = pc.filter(seen, pc.is_in(seen, value_set=erased))
    if len(back):
        report.repurged = sorted(back.to_pylist())
        purge = purge_customers(archive, report.repurged, progress=progress)
        drop_facts(str(archive.root))  # saved planner facts hold the erased contacts too
        report.rows_repurged = sum(purge.rows_removed.values())
        logger.warning(
            "an export re-imported %d erased customer(s); purged again", len(report.repurged)
        )
    if key is None:
        report.hashes_checked = False
        return report
    report.reappeared = _matches(customers, stones, key)
    return report
