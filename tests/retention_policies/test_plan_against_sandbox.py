"""A plan over an archive exported from the sandbox selects what the sandbox's own data says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from gladly_sandbox.ids import parse_timestamp
from ingest.exporting import run_export
from retention_policies import HoldRegistry, load_policies
from retention_policies.evaluate import evaluate
from retention_policies.facts import load_tables

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
EVER = datetime(2000, 1, 1, tzinfo=UTC)

POLICIES = """
name: delete-inactive-customers
description: Profiles with no contact for 400 days are deleted.
resource: customer
filters:
  - type: age
    field: last_activity
    older_than: 400
actions:
  - type: delete_customer
limits: {max_percent: 100, max_targets: 1000000}  # this test compares what matches
---
name: redact-old-calls
description: Call and voicemail recordings are redacted after a year.
resource: item
filters:
  - type: channel
    in: [PHONE_CALL, VOICEMAIL]
  - type: age
    field: item_time
    older_than: P365D
actions:
  - type: redact_items
limits: {max_percent: 100, max_targets: 1000000}  # this test compares what matches
"""


def test_plan_matches_an_independent_query_over_the_sandbox(tmp_path: Path) -> None:
    with Sandbox(
        seed=17, customers=150, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        archive = Archive.open(tmp_path / "archive")
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            report = run_export(c, archive, now=NOW)
        assert report.failed == []
        # The archive holds everything up to the end of the last completed export window.
        horizon = max(
            datetime.fromisoformat(j["parameters"]["endAt"].replace("Z", "+00:00"))
            for j in sb.exports.list_jobs(status="COMPLETED")
        )
        lines = list(sb.org.export_items(EVER, horizon))

    last: dict[str, datetime] = {}
    for line in lines:
        when = parse_timestamp(line["timestamp"])
        last[line["customerId"]] = max(last.get(line["customerId"], when), when)
    expected_customers = {c for c, t in last.items() if NOW - t > timedelta(days=400)}
    expected_calls = {
        line["id"]
        for line in lines
        if line["content"]["type"] in ("PHONE_CALL", "VOICEMAIL")
        and NOW - parse_timestamp(line["timestamp"]) > timedelta(days=365)
    }
    assert expected_customers
    assert expected_calls

    policies_file = tmp_path / "policies.yaml"
    policies_file.write_text(POLICIES)
    plan = evaluate(
        load_policies(policies_file),
        load_tables(tmp_path / "archive"),
        HoldRegistry.empty(key=b"test-audit-key"),
        NOW,
    )
    targets = plan.targets.to_pylist()
    planned_customers = {
        t["target_id"] for t in targets if t["policy_name"] == "delete-inactive-customers"
    }
    planned_calls = {t["target_id"] for t in targets if t["policy_name"] == "redact-old-calls"}
    assert planned_customers == expected_customers
    assert planned_calls == expected_calls


ENRICHED_POLICIES = """
name: erase-old-closed-outside-vip
description: Closed conversations outside the VIP inbox are erased 300 days after closing.
resource: conversation
filters:
  - type: conversation_status
    in: [CLOSED]
  - type: age
    field: conversation_closed
    older_than: 300
  - type: inbox
    not_in: [{vip}]
actions:
  - type: erase_conversation
limits: {max_percent: 100, max_targets: 1000000}  # this test compares what matches
---
name: delete-quiet-gold-customers
description: Gold-tier profiles quiet for 200 days are deleted (rehearsal only).
resource: customer
filters:
  - type: custom_attribute
    key: loyaltyTier
    op: eq
    value: gold
  - type: age
    field: last_activity
    older_than: 200
actions:
  - type: delete_customer
limits: {max_percent: 100, max_targets: 1000000}  # this test compares what matches
"""


def test_enriched_filters_match_the_sandbox(tmp_path: Path) -> None:
    from ingest.enrich import all_profiles, enrich_archive

    with Sandbox(
        seed=19, customers=150, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        archive = Archive.open(tmp_path / "archive")
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            run_export(c, archive, now=NOW)
            enrich = enrich_archive(
                c, archive, max_calls=100_000, now=NOW, candidates=lambda: all_profiles(archive)
            )
        assert not enrich.backlog
        vip = sb.org.list_inboxes()[0]["id"]
        archived = archive.dataset("items").to_table(
            columns=["conversation_id", "customer_id", "timestamp"]
        )
        conversation_ids = {c for c in archived.column("conversation_id").to_pylist() if c}
        expected_conversations = set()
        for conversation_id in conversation_ids:
            truth = sb.org.get_conversation(conversation_id)
            if (
                truth["status"] == "CLOSED"
                and NOW - parse_timestamp(truth["closedAt"]) > timedelta(days=300)
                and truth["inboxId"] != vip
            ):
                expected_conversations.add(conversation_id)
        last: dict[str, datetime] = {}
        for row in archived.to_pylist():
            last[row["customer_id"]] = max(
                last.get(row["customer_id"], row["timestamp"]), row["timestamp"]
            )
        expected_customers = {
            cid
            for cid, when in last.items()
            if NOW - when > timedelta(days=200)
            and (sb.org.raw_customer(cid) or {}).get("customAttributes", {}).get("loyaltyTier")
            == "gold"
        }
    assert expected_conversations
    assert expected_customers

    policies_file = tmp_path / "policies.yaml"
    policies_file.write_text(ENRICHED_POLICIES.replace("{vip}", vip))
    plan = evaluate(
        load_policies(policies_file),
        load_tables(tmp_path / "archive"),
        HoldRegistry.empty(key=b"test-audit-key"),
        NOW,
    )
    rows = plan.targets.to_pylist()
    planned_conversations = {
        r["conversation_id"] for r in rows if r["policy_name"] == "erase-old-closed-outside-vip"
    }
    planned_customers = {
        r["target_id"] for r in rows if r["policy_name"] == "delete-quiet-gold-customers"
    }
    assert planned_conversations == expected_conversations
    assert planned_customers == expected_customers
