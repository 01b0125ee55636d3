"""The refill watch: details unlinked from a profile, as keyed hashes, watched for their return."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from gladly_archive.archive import Archive
from gladly_archive.fs import atomic_write_parquet, exists
from gladly_archive.keyed import DETAIL_KINDS
from gladly_archive.layout import REFILL_WATCH_DIR, check_layout, id_partition
from gladly_archive.schemas import REFILL_WATCH

__all__ = ["REFILL_WATCH_DIR", "WatchedDetail", "read_watches", "watch_path", "write_watch"]

# An HMAC-SHA256 hex digest as the caller computes it; anything else may be the clear detail.
_DIGEST = re.compile(r"[0-9a-f]{64}")
# A watch id names a directory: the start of the unlink request's hash.
_WATCH_ID = re.compile(r"[0-9a-f]{12,64}")
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class WatchedDetail:
    """One unlinked detail as the watch keeps it (validated; never the detail itself)."""

    watch_id: str
    kind: str  # email | phone | external_id
    detail_hash: str
    customer_id: str
    unlinked_at: datetime  # Gladly's clock
    recorded_at: datetime  # ours
    request_id: str

    def __post_init__(self) -> None:
        """Check every field; ValueError names the field, never quoting a value."""
        if not _WATCH_ID.fullmatch(self.watch_id or ""):
            raise ValueError("refill watch: watch_id must be 12-64 lowercase hex digits")
        if self.kind not in DETAIL_KINDS:
            raise ValueError(f"refill watch: kind must be one of {', '.join(DETAIL_KINDS)}")
        if not _DIGEST.fullmatch(self.detail_hash or ""):
            raise ValueError(
                "refill watch: detail_hash is not an HMAC-SHA256 hex digest (64 lowercase hex "
                "characters); hash the detail before recording it"
            )
        if not _CUSTOMER_ID.fullmatch(self.customer_id or ""):
            raise ValueError("refill watch: customer_id must be a Gladly id")
        if not _DIGEST.fullmatch(self.request_id or ""):
            raise ValueError("refill watch: request_id must be the request's 64-hex hash")
        for name in ("unlinked_at", "recorded_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValueError(f"refill watch: {name} must be a timezone-aware datetime")

    def as_row(self) -> dict[str, Any]:
        """The row as REFILL_WATCH stores it."""
        return {name: getattr(self, name) for name in REFILL_WATCH.names}


def watch_path(archive: Archive, watch_id: str) -> str:
    """The file holding one watch."""
    if not _WATCH_ID.fullmatch(watch_id or ""):
        raise ValueError("refill watch: watch_id must be 12-64 lowercase hex digits")
    partition = id_partition(REFILL_WATCH_DIR, watch_id)
    return archive.path(f"{REFILL_WATCH_DIR}/{partition}/part-0.parquet")


def write_watch(archive: Archive, watch: WatchedDetail) -> bool:
    """Record one unlinked detail in ``refill_watch/watch-<id>/part-0.parquet``; False when
    that watch is already recorded (an unlink resumed after a crash writes it once).

    Written under a hidden temporary name, fsynced, then renamed into place; no archive lock
    is taken, so recording an unlink never waits for a commit. OldLayoutError for an archive
    an earlier release wrote."""
    path = watch_path(archive, watch.watch_id)
    fs = archive.fs
    check_layout(fs, archive.root)
    if exists(fs, path):
        return False
    atomic_write_parquet(fs, path, pa.Table.from_pylist([watch.as_row()], schema=REFILL_WATCH))
    return True


def read_watches(archive: Archive) -> list[WatchedDetail]:
    """Every watch, oldest unlink first; a row that does not validate (an edited file) is an
    error naming the field, never skipped."""
    base = archive.path(REFILL_WATCH_DIR)
    if not exists(archive.fs, base):
        return []
    dataset = ds.dataset(
        base,
        schema=REFILL_WATCH,
        format="parquet",
        filesystem=archive.fs,
        exclude_invalid_files=False,
    )
    rows = dataset.to_table().to_pylist()
    watches = [WatchedDetail(**row) for row in rows]
    return sorted(watches, key=lambda w: (w.unlinked_at, w.watch_id))
