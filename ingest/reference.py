"""The organisation's directory (inboxes, topics, agents) fetched through the API, archived."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pyarrow as pa

from gladly_archive import Archive
from gladly_archive.enrichment import append_reference_snapshot
from gladly_archive.schemas import AGENTS, INBOXES, TOPICS
from gladly_client import GladlyClient, GladlyError
from gladly_client.models import Agent, Inbox, Topic

__all__ = ["REFERENCE_CALLS", "refresh_reference", "try_refresh_reference"]

logger = logging.getLogger("ingest.reference")

# What one refresh costs: GET /inboxes, /topics and /agents (budgets count them).
REFERENCE_CALLS = 3

E = TypeVar("E", Inbox, Topic, Agent)


def refresh_reference(
    client: GladlyClient, archive: Archive, *, run_id: str, now: datetime
) -> dict[str, int]:
    """GET /inboxes, /topics and /agents and append each listing under `<dataset>/job-<run_id>/`.

    Returns the rows written per dataset: 0 where the archive already held the listing as it is
    (see `append_reference_snapshot`). All three are fetched before anything is written; a GET
    that still fails after the client's retries raises its `GladlyError` and nothing of this
    refresh is written (the caller decides whether the run goes on). `now` stamps `archived_at`
    (or just after the newest row already stored, so that this listing wins over it).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    tables = {
        "inboxes": _table(client.org.inboxes(), INBOXES, _inbox_row, run_id, now),
        "topics": _table(client.org.topics(), TOPICS, _topic_row, run_id, now),
        "agents": _table(client.org.agents(), AGENTS, _agent_row, run_id, now),
    }
    return {
        name: append_reference_snapshot(archive, name, table, run_id=run_id)
        for name, table in tables.items()
    }


def try_refresh_reference(
    client: GladlyClient, archive: Archive, *, run_id: str, now: datetime
) -> tuple[dict[str, int], str | None]:
    """`refresh_reference` for runs that go on without it: (rows written, None), or ({}, why).

    Only a failed call is caught (its message names method, path template and status, never
    a body); it is logged as an error and returned for the run's report.
    """
    try:
        return refresh_reference(client, archive, run_id=run_id, now=now), None
    except GladlyError as exc:
        logger.error("inboxes, topics and agents were not refreshed: %s", exc)
        return {}, str(exc)


def _table(
    entries: Sequence[E],
    schema: pa.Schema,
    values: Callable[[E], dict[str, Any]],
    run_id: str,
    now: datetime,
) -> pa.Table:
    rows = [
        {
            **values(entry),
            # What Gladly sent, whole: a field it adds later is kept though it has no column.
            "raw_json": json.dumps(entry.raw, ensure_ascii=False, separators=(",", ":")),
            "job_id": run_id,
            "archived_at": now,
        }
        for entry in entries
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _inbox_row(inbox: Inbox) -> dict[str, Any]:
    return {"inbox_id": inbox.id, "name": inbox.name, "disabled": inbox.disabled}


def _topic_row(topic: Topic) -> dict[str, Any]:
    return {
        "topic_id": topic.id,
        "name": topic.name,
        "disabled": topic.disabled,
        "parent_id": topic.parent_id,
    }


def _agent_row(agent: Agent) -> dict[str, Any]:
    return {"agent_id": agent.id, "name": agent.name, "email_address": agent.email_address}
