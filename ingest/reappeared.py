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
from gladly_archive.purge import purge_customers
from gladly_archive.tombstones import read_tombstones

__all__ = ["Reappeared", "ReappearedReport", "check_reappeared"]

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
    ids: list[str], values: list[list[str]], kind: Literal["email", "phone"], key: bytes
) -> pa.Table:
    rows_id: list[str] = []
    rows_hash: list[str] = []
    for cid, found in zip(ids, values, strict=True):
        for value in found or ():
            rows_id.append(cid)
            rows_hash.append(keyed_hash(value, kind=kind, key=key))
    return pa.table({"customer_id": rows_id, "hash": rows_hash})


def check_reappeared(
    archive: Archive, job_ids: Iterable[str], key: bytes | None
) -> ReappearedReport:
    """Compare the customers the given jobs brought with the tombstones.

    Erased ids that an export re-imported (a job whose window ended before the deletion,
    archived after it) are purged again at once: our archive must not keep them. With `key`,
    new profiles holding an erased customer's email or phone (keyed hashes) are reported.
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
        purge = purge_customers(archive, report.repurged)
        drop_facts(str(archive.root))  # saved planner facts hold the erased contacts too
        report.rows_repurged = sum(purge.rows_removed.values())
        logger.warning(
            "an export re-imported %d erased customer(s); purged again", len(report.repurged)
        )
    if key is None:
        report.hashes_checked = False
        return report
    fresh = customers.filter(pc.invert(pc.is_in(customers.column("customer_id"), erased)))
    ids = fresh.column("customer_id").to_pylist()
    for kind, column in _CONTACTS:
        pairs = _pairs(ids, fresh.column(column).to_pylist(), kind, key)
        flat = stones.select(["customer_id", f"{kind}_hashes", "deleted_at"])
        parents = pc.list_parent_indices(flat.column(f"{kind}_hashes"))
        known = pa.table(
            {
                "tombstoned_id": pc.take(flat.column("customer_id"), parents),
                "deleted_at": pc.take(flat.column("deleted_at"), parents),
                "hash": pc.list_flatten(flat.column(f"{kind}_hashes")),
            }
        )
        if pairs.num_rows == 0 or known.num_rows == 0:
            continue
        joined = pairs.join(known, "hash", join_type="inner")
        for row in joined.select(["customer_id", "tombstoned_id", "deleted_at"]).to_pylist():
            report.reappeared.append(
                Reappeared(row["customer_id"], row["tombstoned_id"], row["deleted_at"], kind)
            )
    report.reappeared = sorted(set(report.reappeared), key=lambda r: (r.customer_id, r.matched_on))
    return report
