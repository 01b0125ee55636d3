"""Per-customer export through the API into the archive, reporting what Gladly's limits cut off."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive import Archive
from gladly_archive.catalog import refresh_catalog
from gladly_archive.convert import ConvertStats, convert_customers_file, convert_items_lines
from gladly_client import CustomerMovedError, GladlyClient, NotFoundError
from gladly_client.models import Customer, Item
from ingest.reference import try_refresh_reference

logger = logging.getLogger("ingest.customer_export")

_CALL_TYPES = frozenset({"PHONE_CALL", "VOICEMAIL"})


@dataclass
class CustomerExportReport:
    """What a per-customer export archived and what it could not get.

    Inputs are referred to by position ("email #2"), never by value: the report may be shown,
    logged or attached to a ticket.
    """

    job_id: str
    requested: int = 0
    customer_ids: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)  # merged id → id it lives under now
    conversations: int = 0
    items: int = 0
    call_transcripts: int = 0
    # Gladly returns at most 100 conversations per customer and 1000 items per conversation;
    # anything beyond is only in the export files. These are reported, never silently cut.
    truncated_customers: list[str] = field(default_factory=list)
    incomplete_conversations: list[str] = field(default_factory=list)
    # Rows written per dataset: the commit's, then the inboxes/topics/agents snapshot's.
    rows_by_dataset: dict[str, int] = field(default_factory=dict)
    # That snapshot, taken after the commit: rows per dataset (0 where unchanged), or why its
    # calls failed (the customers' data is archived all the same).
    reference_rows: dict[str, int] = field(default_factory=dict)
    reference_error: str | None = None

    @property
    def complete(self) -> bool:
        """True when every requested customer was found and nothing was truncated."""
        return not (self.not_found or self.truncated_customers or self.incomplete_conversations)


def resolve_customers(
    client: GladlyClient,
    report: CustomerExportReport,
    *,
    emails: Sequence[str] = (),
    customer_ids: Sequence[str] = (),
) -> list[Customer]:
    """Look every input up; merged ids are followed once to the profile they live under now."""
    found: dict[str, Customer] = {}
    for position, email in enumerate(emails, start=1):
        matches = client.customers.find(email=email)
        if not matches:
            report.not_found.append(f"email #{position}")
        for customer in matches:
            found.setdefault(customer.id, customer)
    for position, customer_id in enumerate(customer_ids, start=1):
        try:
            customer = client.customers.get(customer_id)
        except CustomerMovedError as moved:
            if not moved.new_id:
                report.not_found.append(f"customer id #{position}")
                continue
            report.moved[customer_id] = moved.new_id
            customer = client.customers.get(moved.new_id)
        except NotFoundError:
            report.not_found.append(f"customer id #{position}")
            continue
        found.setdefault(customer.id, customer)
    report.requested = len(emails) + len(customer_ids)
    report.customer_ids = sorted(found)
    return [found[cid] for cid in report.customer_ids]


def collect_items(
    client: GladlyClient,
    customers: Iterable[Customer],
    report: CustomerExportReport,
    *,
    fetch_call_transcripts: bool = True,
) -> tuple[list[Item], dict[str, str]]:
    """Every conversation item of these customers, and the transcripts of their calls."""
    items: list[Item] = []
    transcripts: dict[str, str] = {}
    for customer in customers:
        conversations = client.conversations.list_for_customer(customer.id)
        if conversations.truncated:
            report.truncated_customers.append(customer.id)
        for conversation in conversations:
            report.conversations += 1
            listed = client.items.list_for_conversation(conversation.id)
            if listed.truncated:
                report.incomplete_conversations.append(conversation.id)
            items.extend(listed)
    if fetch_call_transcripts:
        for item in items:
            if item.content_type not in _CALL_TYPES:
                continue
            if item.raw.get("content", {}).get("recordingStatus") != "AVAILABLE":
                continue
            try:
                text = client.items.voice_transcript(item.id).text
            except NotFoundError:
                continue  # not every recording has a transcript
            if text:
                transcripts[item.id] = text
    report.items = len(items)
    report.call_transcripts = len(transcripts)
    return items, transcripts


def run_customer_export(
    client: GladlyClient,
    archive: Archive,
    *,
    emails: Sequence[str] = (),
    customer_ids: Sequence[str] = (),
    now: datetime | None = None,
    fetch_call_transcripts: bool = True,
) -> CustomerExportReport:
    """Archive the named customers' conversations, fetched through the API, as one commit.

    Then the organisation's inboxes, topics and agents are appended to the archive, so that
    policies may name them; a failure there is recorded in `reference_error`, not raised.
    """
    if not emails and not customer_ids:
        raise ValueError("name at least one customer: emails=[...] or customer_ids=[...]")
    now = now or datetime.now(UTC)
    report = CustomerExportReport(job_id=f"api-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")
    customers = resolve_customers(client, report, emails=emails, customer_ids=customer_ids)
    items, transcripts = collect_items(
        client, customers, report, fetch_call_transcripts=fetch_call_transcripts
    )
    staged = archive.stage_job(report.job_id, kind="api")
    try:
        lines = [json.dumps(item.raw, separators=(",", ":")).encode() for item in items]
        stats = ConvertStats()
        batches = convert_items_lines(lines, job_id=report.job_id, archived_at=now, stats=stats)
        written = staged.write_items(_with_transcripts(batches, transcripts))
        staged.record_file(
            "api:conversation_items",
            rows_written=written,
            lines_read=stats.lines_read,
            bytes_read=sum(len(line) + 1 for line in lines),
            sha256="",
        )
        customers_file = Path(staged.download_dir) / "customers.jsonl"
        customers_file.write_bytes(b"".join(_flattened(c) + b"\n" for c in customers))
        cstats = ConvertStats()
        written_customers = staged.write_customers(
            convert_customers_file(
                customers_file, job_id=report.job_id, archived_at=now, stats=cstats
            )
        )
        staged.record_file(
            "api:customers",
            rows_written=written_customers,
            lines_read=cstats.lines_read,
            bytes_read=customers_file.stat().st_size,
            sha256="",
        )
        result = staged.commit()
    except BaseException:
        staged.abort()
        raise
    report.rows_by_dataset = dict(result.rows_by_dataset)
    report.reference_rows, report.reference_error = try_refresh_reference(
        client, archive, run_id=report.job_id, now=now
    )
    for name, rows in report.reference_rows.items():
        report.rows_by_dataset[name] = report.rows_by_dataset.get(name, 0) + rows
    refresh_catalog(archive.fs, archive.root, create=True)  # the analyst's views
    return report


def _with_transcripts(
    batches: Iterable[pa.RecordBatch], transcripts: dict[str, str]
) -> Iterator[pa.RecordBatch]:
    """Put each call's fetched transcript in `text`, where the export has none."""
    for batch in batches:
        if not transcripts:
            yield batch
            continue
        ids = batch.column("item_id").to_pylist()
        fetched = pa.array([transcripts.get(i) for i in ids], type=pa.large_string())
        text = pc.coalesce(fetched, batch.column("text"))
        index = batch.schema.get_field_index("text")
        yield batch.set_column(index, batch.schema.field(index), text)


def _flattened(customer: Customer) -> bytes:
    """A profile in the export's flattened customers.jsonl shape."""
    record: dict[str, object] = {
        "id": customer.id,
        "name": customer.name,
        "address": customer.address,
        "emailAddresses": [e.original for e in customer.emails],
        "phoneNumbers": [p.normalized or p.original for p in customer.phones],
    }
    if customer.external_customer_id:
        record["externalCustomerId"] = customer.external_customer_id
    if customer.external_customer_ids:
        record["externalCustomerIds"] = dict(customer.external_customer_ids)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
