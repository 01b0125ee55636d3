"""A small sandbox exported into an archive that holds every dataset, with the sandbox's truth.

Export jobs (the backfill archived and enriched "two months earlier", so the fold moves its
customers and facts too), a quarantined line, a fold, a second enrichment, one customer
deleted in the sandbox (tombstone and purge of our copy) and one detail unlinked: every
dataset and every kind of directory the archive has. The same recipe as the archive_v2
fixture (tests/fixtures/make_archive_v2.py), run by this release.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gladly_archive import Archive, purge_customers, write_tombstones
from gladly_archive.convert import QuarantinedLine
from gladly_archive.fold import fold_archive
from gladly_archive.refill_watch import WatchedDetail, write_watch
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import archive_export_job, pending_jobs, run_export

NOW = datetime(2025, 6, 2, tzinfo=UTC)
_KEY = b"full-archive-test-key"


@dataclass(frozen=True)
class FullArchive:
    """The archive and what the sandbox says, taken from its own state and files."""

    root: Path
    live_customers: frozenset[str]  # listed by a completed export job and still live
    agents: int  # the organisation's agents
    emails: tuple[str, ...]  # every email of every customer the sandbox has
    erased: str  # deleted in the sandbox, tombstoned and purged from the archive


def _digest(value: str) -> str:
    return hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()


def _window(job: Any) -> timedelta:
    return job.parameters.end_at - job.parameters.start_at if job.parameters else timedelta(0)


def _rendered_customers(sb: Sandbox) -> set[str]:
    """Every customer id the sandbox wrote into a completed job's customers.jsonl."""
    ids: set[str] = set()
    for job in sb.exports.list_jobs(status="COMPLETED"):
        for line in sb.exports.file_path(job["id"], "customers.jsonl").read_bytes().splitlines():
            if line.strip():
                ids.add(json.loads(line)["id"])
    return ids


def build_full_archive(root: Path, *, customers: int = 12) -> FullArchive:
    """Export a frozen-clock sandbox into `root` as described in the module doc."""
    with (
        Sandbox(
            seed=7,
            customers=customers,
            now=NOW,
            frozen_clock=True,
            rate_limit_per_second=None,
            items_per_customer=5,
            years=0.4,
            retention_days=3,
        ) as sb,
        GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c,
    ):
        archive = Archive.open(root, clock=lambda: NOW)
        early = NOW - timedelta(days=60)
        first = max(pending_jobs(c, archive).todo, key=_window)  # the backfill
        assert archive_export_job(c, archive, first, now=early).error is None
        ids = sorted(
            archive.dataset("customers")
            .to_table(columns=["customer_id"])["customer_id"]
            .unique()
            .to_pylist()
        )
        enrich_archive(c, archive, now=early + timedelta(days=10), candidates=lambda: ids)
        report = run_export(c, archive, now=NOW, fold=False)
        assert report.failed == []
        assert report.archived
        staged = archive.stage_job("test-quarantine", window_start=NOW, window_end=NOW)
        cut = b'{"id": "test-item", "customerId": "' + ids[2].encode() + b'", "con'
        staged.write_quarantine("conversation_items.jsonl", [QuarantinedLine(3, "cut", cut)])
        staged.commit()
        fold_archive(archive, date(2025, 4, 15), buckets=4)
        enrich_archive(c, archive, now=NOW + timedelta(hours=1), candidates=lambda: ids)
        erased = ids[0]
        c.customers.delete(erased)
        write_tombstones(
            archive,
            [{"customer_id": erased, "deleted_at": NOW, "plan_hash": "0" * 64}],
            run_id="delete-test-1",
        )
        purge_customers(archive, [erased])
        request = _digest("unlink-request")
        write_watch(
            archive,
            WatchedDetail(
                watch_id=request[:16],
                kind="email",
                detail_hash=_digest("someone@example.com"),
                customer_id=ids[1],
                unlinked_at=NOW,
                recorded_at=NOW,
                request_id=request,
            ),
        )
        live = set()
        emails = []
        for customer_id in sb.org.customer_ids():
            record = sb.org.raw_customer(customer_id) or {}
            emails += [e["original"] for e in record.get("emails", []) if e.get("original")]
        for customer_id in _rendered_customers(sb):
            record = sb.org.raw_customer(customer_id)
            if record is not None and not record["deleted"] and not record["merged_into"]:
                live.add(customer_id)
        return FullArchive(
            root=root,
            live_customers=frozenset(live),
            agents=len(sb.org.list_agents()),
            emails=tuple(emails),
            erased=erased,
        )
