"""Fill the archive with what export files lack (inbox, status, topics, custom attributes)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from gladly_archive import Archive
from gladly_archive.enrichment import append_snapshot
from gladly_archive.schemas import CONVERSATIONS, CUSTOMER_PROFILES
from gladly_client import CustomerMovedError, GladlyClient, NotFoundError
from gladly_client.models import Conversation, Customer
from ingest.reference import REFERENCE_CALLS, refresh_reference

logger = logging.getLogger("ingest.enrich")
T = TypeVar("T")

# Enough threads to keep the client's throttle busy while answers are in flight; the throttle,
# not this number, sets the pace.
WORKERS = 4


@dataclass
class EnrichReport:
    """What one enrichment run fetched, and what is still waiting for the next run."""

    run_id: str
    conversations_fetched: int = 0
    customers_fetched: int = 0
    gone: int = 0  # deleted (404) or merged (301) since they were archived
    backlog_conversations: int = 0
    backlog_customers: int = 0
    # Rows of the inboxes/topics/agents snapshot taken first (0 where unchanged); None when
    # the budget was smaller than its calls and it was not taken.
    reference_rows: dict[str, int] | None = None


def _known(archive: Archive, dataset: str, column: str) -> set[str]:
    table = archive.dataset(dataset).to_table(columns=[column])
    return set(pc.unique(table.column(column)).to_pylist())


def enrich_archive(
    client: GladlyClient,
    archive: Archive,
    *,
    max_calls: int = 2000,
    now: datetime | None = None,
) -> EnrichReport:
    """Fetch conversations and profiles the archive holds but has not enriched, within a budget.

    First the organisation's inboxes, topics and agents (three calls of the budget, so that
    policies may name them; skipped when `max_calls` is smaller; a failed call raises), then
    conversations (inbox, status, topics for conversation policies), then customer profiles
    (custom attributes). Each is fetched once; what the budget leaves over is counted as
    backlog for the next run.
    """
    if max_calls < 0:
        raise ValueError(f"max_calls must be >= 0, got {max_calls}")
    now = now or datetime.now(UTC)
    report = EnrichReport(run_id=f"enrich-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}")
    budget = max_calls
    if budget >= REFERENCE_CALLS:
        report.reference_rows = refresh_reference(client, archive, run_id=report.run_id, now=now)
        budget -= REFERENCE_CALLS
    pairs = archive.dataset("items").to_table(columns=["conversation_id", "customer_id"])
    conversations = set(pc.drop_null(pairs.column("conversation_id")).to_pylist())
    customers = set(pairs.column("customer_id").to_pylist())
    todo_conversations = sorted(conversations - _known(archive, "conversations", "conversation_id"))
    todo_customers = sorted(customers - _known(archive, "customer_profiles", "customer_id"))

    take = todo_conversations[:budget]
    fetched = _fetch(client.conversations.get, take, report)
    rows = [_conversation_row(c, now) for c in fetched]
    report.conversations_fetched = append_snapshot(
        archive,
        "conversations",
        pa.Table.from_pylist(rows, schema=CONVERSATIONS),
        run_id=report.run_id,
    )
    budget -= len(take)
    take_customers = todo_customers[: max(budget, 0)]
    profiles = _fetch(client.customers.get, take_customers, report)
    report.customers_fetched = append_snapshot(
        archive,
        "customer_profiles",
        pa.Table.from_pylist([_profile_row(p, now) for p in profiles], schema=CUSTOMER_PROFILES),
        run_id=report.run_id,
    )
    report.backlog_conversations = len(todo_conversations) - len(take)
    report.backlog_customers = len(todo_customers) - len(take_customers)
    return report


def _fetch(get: Callable[[str], T], ids: list[str], report: EnrichReport) -> list[T]:
    def one(identifier: str) -> T | None:
        try:
            return get(identifier)
        except (NotFoundError, CustomerMovedError):
            return None

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, ids))
    report.gone += sum(1 for r in results if r is None)
    return [r for r in results if r is not None]


def _conversation_row(conversation: Conversation, now: datetime) -> dict[str, object]:
    return {
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
        "inbox_id": conversation.inbox_id,
        "status": conversation.status,
        "created_at": conversation.created_at,
        "closed_at": conversation.closed_at,
        "topic_ids": list(conversation.topic_ids),
        "agent_id": conversation.agent_id,
        "fetched_at": now,
    }


def _profile_row(customer: Customer, now: datetime) -> dict[str, object]:
    return {
        "customer_id": customer.id,
        "custom_attributes_json": json.dumps(customer.custom_attributes, sort_keys=True),
        "updated_at": customer.updated_at,
        "fetched_at": now,
    }
