"""The sensitive-data sweep's scan: card numbers, SSNs and IBANs in the archive's items (issue 18).

A whole batch's text columns are filtered in Arrow (RE2, `sensitive.CANDIDATE_PATTERNS`);
only the rows that may hold a number are validated in Python. A finding says where a number
is — item, field, character span — never the number nor the text around it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from gladly_archive import Archive
from gladly_archive.fs import exists
from retention_policies.sensitive import KINDS, candidate_pattern, find_numbers

__all__ = [
    "FINDINGS",
    "SCANNED_FIELDS",
    "SWEEP_PHASE",
    "SweepScan",
    "scan_archive",
    "scan_batches",
]

# The items' columns that hold what people wrote or said: the message, email body, note,
# activity body or call transcript (`text`), an email's subject or an activity's title, a
# call's summary, and the whole original item (`raw_json`: attachment names, quick-reply
# labels, links — fields without a column of their own).
SCANNED_FIELDS: tuple[str, ...] = ("text", "subject", "recording_summary", "raw_json")
_IDS = ("item_id", "customer_id", "conversation_id", "content_type")
# progress(SWEEP_PHASE, items scanned, items to scan)
SWEEP_PHASE = "items scanned for card numbers, SSNs, IBANs"
Progress = Callable[[str, int, int], None]

FINDINGS = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string()),
        pa.field("content_type", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # card | ssn | iban
        pa.field("field", pa.string(), nullable=False),  # one of SCANNED_FIELDS
        pa.field("start", pa.int64(), nullable=False),  # character offsets in that field
        pa.field("end", pa.int64(), nullable=False),
    ]
)


@dataclass
class SweepScan:
    """What one scan read and found (counts and ids only)."""

    findings: pa.Table = field(default_factory=FINDINGS.empty_table)
    items_scanned: int = 0
    text_bytes: int = 0  # bytes of the scanned fields
    candidate_rows: int = 0  # rows the Arrow filter passed to validation
    newest_archived_at: datetime | None = None

    def items_by_kind(self) -> dict[str, int]:
        """Distinct items holding each kind (every kind listed, zero included)."""
        counts = dict.fromkeys(KINDS, 0)
        if self.findings.num_rows:
            pairs = self.findings.group_by(["kind"]).aggregate([("item_id", "count_distinct")])
            for kind, n in zip(
                pairs["kind"].to_pylist(), pairs["item_id_count_distinct"].to_pylist(), strict=True
            ):
                counts[str(kind)] = int(n)
        return counts


def _text_bytes(column: pa.Array | pa.ChunkedArray) -> int:
    lengths = pc.binary_length(column)
    total = pc.sum(lengths).as_py()
    return int(total or 0)


def scan_batches(
    batches: Iterable[pa.RecordBatch],
    kinds: Iterable[str] = KINDS,
    fields: Iterable[str] = SCANNED_FIELDS,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> SweepScan:
    """Scan item batches (ITEMS columns: the ids, `content_type` and any of `fields`) for
    numbers of `kinds`. Arrow selects candidate rows per batch; Python validates only those.
    `on_batch` hears the items scanned so far after each batch."""
    wanted = tuple(kinds)
    pattern = candidate_pattern(wanted)
    scan = SweepScan()
    rows: list[dict[str, object]] = []
    for batch in batches:
        scan.items_scanned += batch.num_rows
        if on_batch is not None:
            on_batch(scan.items_scanned)
        if "archived_at" in batch.schema.names and batch.num_rows:
            newest = pc.max(batch.column("archived_at")).as_py()
            if newest is not None and (
                scan.newest_archived_at is None or newest > scan.newest_archived_at
            ):
                scan.newest_archived_at = newest
        present = [
            f for f in fields if f in batch.schema.names and not pa.types.is_null(batch[f].type)
        ]
        masks = []
        for name in present:
            column = batch.column(name)
            scan.text_bytes += _text_bytes(column)
            masks.append(pc.fill_null(pc.match_substring_regex(column, pattern), False))
        if not masks:
            continue
        mask = masks[0]
        for more in masks[1:]:
            mask = pc.or_(mask, more)
        candidates = batch.filter(mask)
        scan.candidate_rows += candidates.num_rows
        if candidates.num_rows:
            rows.extend(_validate(candidates, present, wanted))
    scan.findings = pa.Table.from_pylist(_without_echoes(rows), schema=FINDINGS)
    return scan


def _validate(
    candidates: pa.RecordBatch, fields: list[str], kinds: tuple[str, ...]
) -> Iterator[dict[str, object]]:
    ids = {name: candidates.column(name).to_pylist() for name in _IDS}
    for name in fields:
        texts = candidates.column(name).to_pylist()
        for i, text in enumerate(texts):
            for found in find_numbers(text, kinds):
                yield {
                    **{k: ids[k][i] for k in _IDS},
                    "kind": found.kind,
                    "field": name,
                    "start": found.start,
                    "end": found.end,
                }


def _without_echoes(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """raw_json repeats the columns: a finding there counts only when the item has none of
    that kind in a column of its own (a number in an attachment name, a quick-reply label).
    A row read twice (a file and its replacement, seen while a commit renames) counts once."""
    seen = {(r["item_id"], r["kind"]) for r in rows if r["field"] != "raw_json"}
    once = {tuple(sorted(r.items())): r for r in rows}.values()
    kept = [r for r in once if r["field"] != "raw_json" or (r["item_id"], r["kind"]) not in seen]
    return sorted(kept, key=lambda r: (str(r["item_id"]), str(r["field"]), int(str(r["start"]))))


def scan_archive(
    archive: Archive,
    kinds: Iterable[str] = KINDS,
    *,
    since: date | None = None,
    job_ids: Collection[str] | None = None,
    batch_rows: int = 65_536,
    progress: Progress | None = None,
) -> SweepScan:
    """Scan the archive's items: all, those dated `since` or later (their UTC day), or those
    archived by the jobs `job_ids` (the `--new` sweep: the jobs committed since the last one).
    Reads without the writer lock (see `sweep_plan.make_sweep` for why that is safe).
    `progress` hears SWEEP_PHASE: items scanned of those to scan."""
    if job_ids is not None and not job_ids:
        return SweepScan()
    if not exists(archive.fs, archive.path("items")):
        return SweepScan()
    dataset = archive.dataset("items")
    where: ds.Expression | None = None
    if since is not None:
        where = pc.field("date") >= pa.scalar(since, pa.date32())
    if job_ids is not None:
        jobs = pc.field("job_id").isin(pa.array(sorted(job_ids), pa.string()))
        where = jobs if where is None else where & jobs
    columns = [*_IDS, *SCANNED_FIELDS, "archived_at"]
    on_batch = None
    if progress is not None:
        total = dataset.count_rows(filter=where)
        progress(SWEEP_PHASE, 0, total)

        def on_batch(done: int) -> None:
            progress(SWEEP_PHASE, min(done, total), total)

    batches = dataset.to_batches(columns=columns, filter=where, batch_size=batch_rows)
    scan = scan_batches(batches, kinds, on_batch=on_batch)
    if progress is not None:
        progress(SWEEP_PHASE, total, total)  # a file gone since counting: the bar still ends
    return scan
