"""Unlinked details that came back: watched keyed hashes matched against profiles, with the
likely source named (a lookup adaptor refilling the same profile, or a new contact)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive import Archive
from gladly_archive.keyed import keyed_detail_hash
from gladly_archive.refill_watch import WatchedDetail, read_watches
from gladly_client.models import Customer

__all__ = [
    "LOOKUP_ADAPTOR",
    "NEW_CONTACT",
    "SOURCES",
    "UNKNOWN",
    "Refill",
    "check_refills",
    "match_profiles",
    "read_refills",
]

LOOKUP_ADAPTOR = "lookup adaptor"
NEW_CONTACT = "new contact"
UNKNOWN = "unknown"
# What a person is told about each source: where to look to stop the refill.
SOURCES = {
    LOOKUP_ADAPTOR: "a lookup adaptor refills it (the profile has an external id): fix the "
    "adaptor's mapping",
    NEW_CONTACT: "a new contact brought it back",
    UNKNOWN: "unknown",
}
_COLUMNS = ["customer_id", "emails", "phones", "external_customer_id"]
_COLUMNS += ["external_customer_ids_json", "job_id", "archived_at"]


@dataclass(frozen=True)
class Refill:
    """A watched detail back on a profile. Ids and kinds only: never the detail."""

    customer_id: str  # the profile that has it now
    kind: str  # email | phone | external_id
    watch_id: str
    unlinked_from: str  # the profile it was unlinked from
    source: str  # LOOKUP_ADAPTOR | NEW_CONTACT | UNKNOWN

    @property
    def explanation(self) -> str:
        """The likely source, in words a person can act on."""
        return SOURCES[self.source]


@dataclass(frozen=True)
class _Profile:
    """What matching needs of one profile, from the archive or from Gladly."""

    customer_id: str
    details: dict[str, tuple[str, ...]]  # kind → values as Gladly holds them
    has_external_id: bool
    newer_than: datetime | None  # first seen (archive) or created (Gladly); None: unknown


def _source(profile: _Profile, watch: WatchedDetail) -> str:
    if profile.customer_id == watch.customer_id:
        return LOOKUP_ADAPTOR if profile.has_external_id else UNKNOWN
    if profile.newer_than is not None and profile.newer_than > watch.unlinked_at:
        return NEW_CONTACT
    return UNKNOWN


def _match(watches: list[WatchedDetail], profiles: Iterable[_Profile], key: bytes) -> list[Refill]:
    """Every (profile, watch) whose keyed hash agrees; each distinct value hashed once."""
    wanted: dict[tuple[str, str], list[WatchedDetail]] = {}
    for watch in watches:
        wanted.setdefault((watch.kind, watch.detail_hash), []).append(watch)
    kinds = {w.kind for w in watches}
    hashed: dict[tuple[str, str], str] = {}
    found: set[Refill] = set()
    for profile in profiles:
        for kind in kinds:
            for value in profile.details.get(kind, ()):
                if (kind, value) not in hashed:
                    hashed[(kind, value)] = keyed_detail_hash(value, kind=kind, key=key)
                for watch in wanted.get((kind, hashed[(kind, value)]), ()):
                    source = _source(profile, watch)
                    refill = Refill(
                        profile.customer_id, kind, watch.watch_id, watch.customer_id, source
                    )
                    found.add(refill)
    return sorted(found, key=lambda r: (r.customer_id, r.kind, r.watch_id))


def match_profiles(
    watches: list[WatchedDetail], profiles: Iterable[Customer], key: bytes
) -> list[Refill]:
    """Watched details on profiles just read from Gladly (enrichment): a live profile read
    after the unlink that holds the detail has it back."""
    seen = (
        _Profile(
            p.id,
            {
                "email": p.email_addresses,
                "phone": p.phone_numbers,
                "external_id": _external_ids(p.external_customer_id, p.external_customer_ids),
            },
            bool(p.external_customer_id or p.external_customer_ids),
            p.created_at,
        )
        for p in profiles
    )
    return _match(watches, seen, key) if watches else []


def _external_ids(single: str | None, mapped: dict[str, str] | None) -> tuple[str, ...]:
    values = [single or "", *(mapped or {}).values()]
    return tuple(dict.fromkeys(v for v in values if v))


def _stamped(archive: Archive, rows: pa.Table) -> pa.Table:
    """The rows with `made`: when Gladly made their data — their job's updatedAt (else its
    window's end), else when we archived them (a per-customer API export) — so they compare
    with an unlink on Gladly's clock."""
    manifest = archive.read_manifest().select(["job_id", "job_updated_at", "window_end"])
    made = pc.coalesce(manifest.column("job_updated_at"), manifest.column("window_end"))
    # Looked up by position, not joined: Arrow's join carries no list columns (emails).
    at = pc.index_in(rows.column("job_id"), value_set=manifest.column("job_id").combine_chunks())
    by_job = pc.take(made.combine_chunks() if isinstance(made, pa.ChunkedArray) else made, at)
    stamp = pc.coalesce(by_job, rows.column("archived_at"))
    return rows.append_column("made", stamp)


def check_refills(
    archive: Archive, key: bytes, *, job_ids: Iterable[str] | None = None
) -> list[Refill]:
    """Watched details on archived customers: for each customer, its newest row that Gladly
    made after the unlink (among `job_ids`' rows when given: what one export brought) is
    compared with each watch. Reads only."""
    watches = read_watches(archive)
    if not watches:
        return []
    dataset = archive.dataset("customers")
    where = None
    if job_ids is not None:
        where = pc.field("job_id").isin(pa.array(sorted(set(job_ids)), pa.string()))
    rows = _stamped(archive, dataset.to_table(columns=_COLUMNS, filter=where))
    newest: dict[str, dict[str, Any]] = {}
    for row in rows.to_pylist():
        held = newest.get(row["customer_id"])
        if held is None or row["made"] > held["made"]:
            newest[row["customer_id"]] = row
    found: set[Refill] = set()
    for row in newest.values():
        after = [w for w in watches if row["made"] > w.unlinked_at]
        if after:
            found.update(_match(after, [_archived_profile(row)], key))
    return _with_new_contacts(
        archive, sorted(found, key=lambda r: (r.customer_id, r.kind, r.watch_id)), watches
    )


def _with_new_contacts(
    archive: Archive, found: list[Refill], watches: list[WatchedDetail]
) -> list[Refill]:
    """A detail back on another profile, one the archive first holds from data Gladly made
    after the unlink, was brought back by a new contact (read only for those profiles)."""
    others = sorted({r.customer_id for r in found if r.customer_id != r.unlinked_from})
    if not others:
        return found
    ids = pa.array(others, pa.string())
    rows = archive.dataset("customers").to_table(
        columns=["customer_id", "job_id", "archived_at"], filter=pc.field("customer_id").isin(ids)
    )
    firsts = _stamped(archive, rows).group_by("customer_id").aggregate([("made", "min")])
    first = dict(
        zip(
            firsts.column("customer_id").to_pylist(),
            firsts.column("made_min").to_pylist(),
            strict=True,
        )
    )
    when = {w.watch_id: w.unlinked_at for w in watches}
    return [
        replace(r, source=NEW_CONTACT)
        if r.customer_id in first and first[r.customer_id] > when[r.watch_id]
        else r
        for r in found
    ]


def _archived_profile(row: dict[str, Any]) -> _Profile:
    mapped: dict[str, str] = {}
    text = row.get("external_customer_ids_json")
    if isinstance(text, str) and text:
        try:
            value = json.loads(text)
        except ValueError:
            value = {}
        if isinstance(value, dict):
            mapped = {str(k): str(v) for k, v in value.items() if v}
    single = row.get("external_customer_id")
    single = single if isinstance(single, str) else None
    cid = str(row["customer_id"])
    return _Profile(
        cid,
        {
            "email": tuple(row.get("emails") or ()),
            "phone": tuple(row.get("phones") or ()),
            "external_id": _external_ids(single, mapped),
        },
        bool(single or mapped),
        None,  # known only for the profiles that match (_with_new_contacts)
    )


def read_refills(archive: Archive, key: bytes) -> list[Refill]:
    """Every watched detail the archive shows back on a profile now (the newest row Gladly
    made after each unlink): what `gladly-pipeline status` can report. Reads only."""
    return check_refills(archive, key)
