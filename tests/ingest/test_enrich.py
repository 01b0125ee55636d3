"""Enrichment fills inbox, status, topics and custom attributes the export files lack, within a
budget, and what it stores is what the sandbox says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.enrich import all_profiles, enrich_archive
from ingest.exporting import run_export
from ingest.reference import REFERENCE_CALLS

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)


def test_enrichment_within_a_budget_then_the_backlog_matches_the_sandbox(tmp_path: Path) -> None:
    with Sandbox(
        seed=23, customers=40, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        archive = Archive.open(tmp_path / "archive")
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            run_export(c, archive, now=NOW)
            every = all_profiles(archive)
            items = archive.dataset("items").to_table(columns=["customer_id"])
            assert set(every) == set(items.column(0).to_pylist())  # none fetched yet

            def candidates() -> list[str]:
                return all_profiles(archive)

            sb.reset_stats()
            first = enrich_archive(c, archive, max_calls=30, now=NOW, candidates=candidates)
            # The directory's three calls come out of the budget first; the export run has
            # already archived the same directory, so they write nothing new.
            assert first.reference_rows == {"inboxes": 0, "topics": 0, "agents": 0}
            assert first.facts is not None
            reports = first.facts.report_calls
            assert first.customers_fetched == 30 - REFERENCE_CALLS - reports
            assert first.backlog_customers == len(every) - first.customers_fetched
            assert first.backlog
            assert sb.stats()["total"] == 30  # every call counted, none beyond the budget
            second = enrich_archive(c, archive, max_calls=100_000, now=NOW, candidates=candidates)
            assert not second.backlog
            assert second.customers_fetched == first.backlog_customers
            third = enrich_archive(c, archive, max_calls=100_000, now=NOW, candidates=candidates)
            assert (third.conversations_fetched, third.customers_fetched) == (0, 0)

        conversations = archive.dataset("conversations").to_table().to_pylist()
        assert conversations
        for row in conversations:
            truth = sb.org.get_conversation(row["conversation_id"])
            assert row["inbox_id"] == truth["inboxId"]
            assert row["status"] == truth["status"]
            assert row["topic_ids"] == sorted(truth.get("topicIds", []))
        profiles = archive.dataset("customer_profiles").to_table().to_pylist()
        assert len(profiles) == len(every)
        for row in profiles:
            truth = sb.org.get_customer(row["customer_id"])
            assert json.loads(row["custom_attributes_json"]) == truth.get("customAttributes", {})
