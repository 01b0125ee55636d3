"""`gladly-pipeline enrich` as an operator runs it: the cost first, profiles only for the
policies' candidates, and a report that lacks a column stops it, naming the column."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from retention_policies.candidates import profile_candidates
from tests._console import says
from tests._policies import TIER_LAPSED

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
GOLD = TIER_LAPSED.format(tier="gold")


@dataclass
class Org:
    sb: Sandbox
    root: Path
    tmp: Path


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    with Sandbox(
        seed=37, customers=50, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        root = tmp_path / "archive"
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            run_export(c, Archive.open(root), now=NOW)
        monkeypatch.setenv("GLADLY_BASE_URL", sb.base_url)
        monkeypatch.setenv("GLADLY_USER", sb.user)
        monkeypatch.setenv("GLADLY_API_TOKEN", sb.api_token)
        monkeypatch.setenv("GLADLY_REQUESTS_PER_SECOND", "500")
        yield Org(sb, root, tmp_path)


def _profiles(root: Path) -> set[str]:
    table = Archive(root).dataset("customer_profiles").to_table(columns=["customer_id"])
    return set(table.column(0).to_pylist())


def test_estimate_prints_the_cost_and_calls_nothing(org: Org) -> None:
    policies = org.tmp / "gold.yaml"
    policies.write_text(GOLD)
    org.sb.reset_stats()
    result = CliRunner().invoke(
        app, ["enrich", "--root", str(org.root), "--policies", str(policies), "--estimate"]
    )
    assert result.exit_code == 0, result.output
    assert says(result.output, "report request(s) (Reports API, 10 a minute)")
    assert says(result.output, "of the organisation's 10/s GET budget")
    assert org.sb.stats()["total"] == 0
    assert not (org.root / "conversations").exists()


def test_profiles_are_fetched_for_the_policies_candidates_only(org: Org) -> None:
    policies = org.tmp / "gold.yaml"
    policies.write_text(GOLD)
    needed = profile_candidates(str(org.root), policies, now=datetime.now(UTC)).customer_ids
    result = CliRunner().invoke(
        app, ["enrich", "--root", str(org.root), "--policies", str(policies)]
    )
    assert result.exit_code == 0, result.output
    fetched = _profiles(org.root)
    assert fetched
    assert fetched <= needed
    customers = {c for c in org.sb.org.customer_ids() if not org.sb.org.raw_customer(c)["deleted"]}
    assert len(fetched) < len(customers)  # not everyone: only whom the policy may select
    assert says(result.output, f"profiles: {len(fetched)} fetched of {len(fetched)} needed")
    # Nothing personal in what it printed: ids of customers are not even there.
    assert not any(c in result.output for c in fetched)
    # The plan now decides the policy.
    plan = CliRunner().invoke(app, ["plan", "--root", str(org.root), "--policies", str(policies)])
    assert plan.exit_code == 0, plan.output


def test_without_policies_no_profile_is_fetched_and_it_says_how(org: Org) -> None:
    result = CliRunner().invoke(app, ["enrich", "--root", str(org.root)])
    assert result.exit_code == 0, result.output
    assert _profiles(org.root) == set()
    assert says(result.output, "give --policies to fetch the custom attributes they need")
    assert (org.root / "conversations").exists()


def test_a_report_lacking_a_column_stops_enrich_naming_it(org: Org) -> None:
    columns = org.tmp / "columns.toml"
    columns.write_text('topic_ids = "Topics"\n')
    result = CliRunner().invoke(
        app, ["enrich", "--root", str(org.root), "--report-columns", str(columns)]
    )
    assert result.exit_code == 1, result.output
    assert says(result.output, "Enrichment stopped")
    assert says(result.output, "'Topics' (topic_ids)")
    assert says(result.output, "--report-columns")
    assert not (org.root / "conversations").exists()
    assert not (org.root / "_enrichment").exists()


def test_bad_options_change_nothing(org: Org) -> None:
    bad = org.tmp / "bad.toml"
    bad.write_text('topics = "Topics"\n')
    result = CliRunner().invoke(
        app, ["enrich", "--root", str(org.root), "--report-columns", str(bad)]
    )
    assert result.exit_code == 2
    assert says(result.output, "unknown fact(s) topics")
    both = CliRunner().invoke(
        app,
        ["enrich", "--root", str(org.root), "--all-profiles", "--policies", str(bad)],
    )
    assert both.exit_code == 2
    assert says(both.output, "exclude each other")
    missing = CliRunner().invoke(
        app, ["enrich", "--root", str(org.root), "--policies", str(org.tmp / "nope.yaml")]
    )
    assert missing.exit_code == 2, missing.output
    assert not (org.root / "conversations").exists()
