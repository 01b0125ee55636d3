"""Profile candidates: who a plan needs custom attributes for, and nobody else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from retention_policies.candidates import profile_candidates
from retention_policies.facts import load_tables

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
QUIET = """\
name: quiet
description: Customers two years after their last contact.
resource: customer
filters:
  - {type: age, field: last_activity, older_than: P2Y}
actions:
  - {type: delete_customer}
limits: {max_percent: 100, max_targets: 100000}
"""
HOLD = """\
holds:
  - kind: custom_attribute
    value: legalReview=true
    reason: Review
    reference: LEGAL-3
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("candidates")
    with Sandbox(
        seed=43, customers=60, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            archive = Archive.open(tmp / "archive")
            run_export(c, archive, now=NOW)
            enrich_archive(c, archive, now=NOW)  # conversation facts; no profile
        yield tmp / "archive"


def _quiet(root: Path) -> set[str]:
    tables = load_tables(root)
    rows = tables.con.execute(
        "SELECT customer_id FROM customers WHERE last_activity < ?",
        [NOW.replace(year=NOW.year - 2)],
    ).fetchall()
    tables.con.close()
    return {r[0] for r in rows}


def test_a_policy_that_reads_no_attribute_needs_no_profile(root: Path, tmp_path: Path) -> None:
    policies = tmp_path / "quiet.yaml"
    policies.write_text(QUIET)
    found = profile_candidates(str(root), policies, now=NOW)
    assert found.customer_ids == set()
    assert found.per_policy == {}


def test_a_hold_on_an_attribute_needs_the_profiles_of_the_policys_targets(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLADLY_AUDIT_KEY", "candidates-test-key")
    policies = tmp_path / "quiet.yaml"
    policies.write_text(QUIET)
    holds = tmp_path / "holds.yaml"
    holds.write_text(HOLD)
    found = profile_candidates(str(root), policies, holds_path=holds, now=NOW)
    quiet = _quiet(root)
    assert quiet
    assert found.customer_ids == quiet
    assert found.per_policy == {"quiet": len(quiet)}
    assert found.customers > len(quiet)


CALLS_OF_NON_GOLD = """\
name: calls-of-non-gold
description: Calls of customers not in the gold tier.
resource: contact
filters:
  - {type: channel, in: [PHONE_CALL, VOICEMAIL]}
  - {type: custom_attribute, key: loyaltyTier, op: ne, value: gold}
actions:
  - {type: erase_contact}
limits: {max_percent: 100, max_targets: 100000}
"""


def test_a_contact_policy_on_attributes_needs_the_profiles_of_customers_with_such_contacts(
    root: Path, tmp_path: Path
) -> None:
    policies = tmp_path / "calls.yaml"
    policies.write_text(CALLS_OF_NON_GOLD)
    found = profile_candidates(str(root), policies, now=NOW)
    tables = load_tables(root)
    callers = {
        r[0]
        for r in tables.con.execute(
            "SELECT DISTINCT customer_id FROM items "
            "WHERE content_type IN ('PHONE_CALL', 'VOICEMAIL') AND conversation_id IS NOT NULL"
        ).fetchall()
    }
    tables.con.close()
    assert callers
    assert found.customer_ids == callers
    assert found.per_policy == {"calls-of-non-gold": len(callers)}
