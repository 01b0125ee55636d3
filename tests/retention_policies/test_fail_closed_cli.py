"""Policies and holds that fail closed, through the command line on a sandbox organisation.

Judged by the sandbox's own records (which conversation is in which inbox, which customer has
which attributes), never by the planner's report of itself: names resolve to the inboxes that
carry them, an unknown name is refused with the valid ones, and a fact never fetched blocks the
policy that needs it instead of reading as "absent".
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from tests._console import says

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
KEY = "fail-closed-test-key"
ALL_CONVERSATIONS = """\
name: {name}
description: Test policy over every conversation, whatever its status.
resource: conversation
filters:
  - type: conversation_status
    in: [OPEN, WAITING, CLOSED]
{extra}actions:
  - type: erase_conversation
limits: {{max_percent: 100, max_targets: 1000000}}
"""
NOT_GOLD = """\
name: {name}
description: Test policy deleting customers whose loyalty tier is set and is not gold.
resource: customer
filters:
  - type: custom_attribute
    key: loyaltyTier
    op: ne
    value: gold
actions:
  - type: delete_customer
limits: {{max_percent: 100, max_targets: 1000000}}
"""


class Org:
    """The sandbox, two archives exported from it (`raw`, never enriched; `rich`, enriched
    through the CLI) and the sandbox's truth about inboxes and conversations."""

    def __init__(self, sb: Sandbox, raw: Path, rich: Path, tmp: Path) -> None:
        self.sb, self.raw, self.rich, self.tmp = sb, raw, rich, tmp
        self.inboxes = {i["name"]: i["id"] for i in sb.org.list_inboxes()}
        self.conversations: dict[str, dict[str, Any]] = {
            vid: sb.org.get_conversation(vid) for vid in sb.org.conversation_ids()
        }

    def in_inbox(self, name: str) -> set[str]:
        return {v for v, c in self.conversations.items() if c["inboxId"] == self.inboxes[name]}

    def archived_conversations(self) -> set[str]:
        table = Archive(self.rich).dataset("items").to_table(columns=["conversation_id"])
        return {v for v in table.column("conversation_id").to_pylist() if v}


def _env(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLADLY_BASE_URL", sb.base_url)
    monkeypatch.setenv("GLADLY_USER", sb.user)
    monkeypatch.setenv("GLADLY_API_TOKEN", sb.api_token)
    monkeypatch.setenv("GLADLY_REQUESTS_PER_SECOND", "500")
    monkeypatch.setenv("GLADLY_AUDIT_KEY", KEY)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    tmp = tmp_path_factory.mktemp("fail-closed")
    raw, rich = tmp / "raw", tmp / "rich"
    with Sandbox(
        seed=31, customers=60, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            run_export(c, Archive.open(raw), now=NOW)
        shutil.copytree(raw, rich)
        with pytest.MonkeyPatch.context() as mp:
            _env(sb, mp)
            enriched = CliRunner().invoke(app, ["enrich", "--root", str(rich), "--all-profiles"])
        assert enriched.exit_code == 0, enriched.output
        yield Org(sb, raw, rich, tmp)


def _plan(
    org: Org,
    root: Path,
    policy: str,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    holds: str | None = None,
) -> tuple[Any, Path]:
    _env(org.sb, monkeypatch)
    policies = org.tmp / f"{name}.yaml"
    policies.write_text(policy)
    args = ["plan", "--policies", str(policies), "--root", str(root), "--out", str(org.tmp / name)]
    if holds is not None:
        (org.tmp / f"{name}-holds.yaml").write_text(holds)
        args += ["--holds", str(org.tmp / f"{name}-holds.yaml")]
    return CliRunner().invoke(app, args), org.tmp / name


def _rows(plan_dir: Path, table: str, target_type: str) -> set[str]:
    rows = pq.read_table(plan_dir / f"{table}.parquet").to_pylist()
    return {r["target_id"] for r in rows if r["target_type"] == target_type}


def _hold(kind: str, value: str) -> str:
    return (
        f"holds:\n  - kind: {kind}\n    value: {value}\n    reason: Litigation\n"
        "    reference: LEGAL-7\n"
    )


@pytest.mark.parametrize("by", ["name", "id"])
def test_a_hold_by_inbox_name_or_id_holds_every_conversation_of_that_inbox(
    org: Org, by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "Support" if by == "name" else org.inboxes["Support"]
    policy = ALL_CONVERSATIONS.format(name=f"all-{by}", extra="")
    result, out = _plan(org, org.rich, policy, f"hold-{by}", monkeypatch, _hold("inbox", value))
    assert result.exit_code == 0, result.output
    truth = org.in_inbox("Support") & org.archived_conversations()
    assert truth
    assert _rows(out, "held", "conversation") == truth
    planned = _rows(out, "targets", "conversation")
    assert planned == org.archived_conversations() - truth
    assert not planned & truth


def test_not_in_by_inbox_name_excludes_that_inbox(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = "  - type: inbox\n    not_in: [VIP Support]\n"
    result, out = _plan(
        org, org.rich, ALL_CONVERSATIONS.format(name="not-vip", extra=extra), "not-vip", monkeypatch
    )
    assert result.exit_code == 0, result.output
    vip = org.in_inbox("VIP Support") & org.archived_conversations()
    assert vip
    assert _rows(out, "targets", "conversation") == org.archived_conversations() - vip


def test_an_unknown_inbox_name_is_refused_with_the_valid_names(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = "  - type: inbox\n    not_in: [VIP Suport]\n"
    policy = ALL_CONVERSATIONS.format(name="typo", extra=extra)
    result, out = _plan(org, org.rich, policy, "typo", monkeypatch)
    assert result.exit_code == 2, result.output
    assert says(result.output, "typo.yaml:8: filters[1].not_in[0]: unknown inbox 'VIP Suport'")
    assert all(says(result.output, name) for name in org.inboxes)
    assert not out.exists()
    # a hold naming an unknown inbox is refused the same way, before anything is written
    good = ALL_CONVERSATIONS.format(name="typo-hold", extra="")
    result, out = _plan(org, org.rich, good, "typo-hold", monkeypatch, _hold("inbox", "Suport"))
    assert result.exit_code == 2, result.output
    assert says(result.output, "typo-hold-holds.yaml:3: holds[0].value: unknown inbox 'Suport'")
    assert not out.exists()
    # and `policies validate` says the same against the archive
    (org.tmp / "typo-validate.yaml").write_text(policy)
    checked = CliRunner().invoke(
        app, ["policies", "validate", str(org.tmp / "typo-validate.yaml"), "--root", str(org.rich)]
    )
    assert checked.exit_code == 2
    assert says(checked.output, "unknown inbox 'VIP Suport'")


@pytest.mark.parametrize(
    ("name", "policy", "needs"),
    [
        ("attr-unenriched", NOT_GOLD.format(name="attr-unenriched"), "custom attributes"),
        (
            "inbox-unenriched",
            ALL_CONVERSATIONS.format(
                name="inbox-unenriched", extra="  - type: inbox\n    not_in: [VIP Support]\n"
            ),
            "inbox",
        ),
    ],
)
def test_an_unenriched_archive_blocks_a_policy_over_unfetched_facts(
    org: Org, name: str, policy: str, needs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, out = _plan(org, org.raw, policy, name, monkeypatch)
    assert result.exit_code == 3, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["targets"] == 0
    [blocked] = summary["blocked_policies"]
    reason = blocked["reason"]
    assert blocked["name"] == name
    assert f"policy {name}: cannot decide" in reason
    assert "filters[" in reason
    assert needs in reason
    assert "never fetched" in reason
    assert "gladly-pipeline enrich" in reason
    assert says(result.output, "gladly-pipeline enrich")


def test_after_enrich_it_plans_exactly_the_sandbox_truth(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, out = _plan(
        org, org.rich, NOT_GOLD.format(name="attr-enriched"), "attr-enriched", monkeypatch
    )
    assert result.exit_code == 0, result.output
    archived = set(
        Archive(org.rich).dataset("items").to_table(columns=["customer_id"]).column(0).to_pylist()
    )
    truth = set()
    for cid in archived:
        tier = (org.sb.org.raw_customer(cid) or {}).get("customAttributes", {}).get("loyaltyTier")
        if tier is not None and tier != "gold":
            truth.add(cid)
    assert truth
    assert _rows(out, "targets", "customer") == truth


def test_a_hold_on_an_unenriched_archive_holds_what_it_cannot_evaluate(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = ALL_CONVERSATIONS.format(name="all-raw", extra="")
    result, out = _plan(org, org.raw, policy, "hold-raw", monkeypatch, _hold("inbox", "Support"))
    assert result.exit_code == 0, result.output
    assert _rows(out, "targets", "conversation") == set()
    assert _rows(out, "held", "conversation") == org.archived_conversations()
    labels = {
        label
        for row in pq.read_table(out / "held.parquet").to_pylist()
        for label in row["excluded_by_holds"]
    }
    assert labels == {"inbox=Support [LEGAL-7] (cannot be evaluated: not fetched)"}


def test_a_renamed_inbox_still_matches_by_id_and_its_old_name_is_refused(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    returns = org.inboxes["Returns"]
    renamed = org.tmp / "renamed"
    shutil.copytree(org.rich, renamed)
    org.sb.rename_inbox(returns, "Returns & Exchanges")
    try:
        _env(org.sb, monkeypatch)
        refreshed = CliRunner().invoke(app, ["enrich", "--root", str(renamed)])
        assert refreshed.exit_code == 0, refreshed.output
        truth = org.in_inbox("Returns") & org.archived_conversations()
        assert truth
        for value in (returns, "Returns & Exchanges"):
            policy = ALL_CONVERSATIONS.format(name="all-renamed", extra="")
            name = f"renamed-{len(value)}"
            result, out = _plan(org, renamed, policy, name, monkeypatch, _hold("inbox", value))
            assert result.exit_code == 0, result.output
            assert _rows(out, "held", "conversation") == truth
        result, out = _plan(
            org, renamed, policy, "renamed-old", monkeypatch, _hold("inbox", "Returns")
        )
        assert result.exit_code == 2, result.output
        assert says(result.output, "unknown inbox 'Returns'")
        assert says(result.output, "Returns & Exchanges")
        assert not out.exists()
    finally:
        org.sb.rename_inbox(returns, "Returns")


def test_apply_refuses_a_holds_file_naming_an_unknown_inbox_before_any_call(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = ALL_CONVERSATIONS.format(name="apply-typo", extra="")
    result, out = _plan(org, org.rich, policy, "apply-typo", monkeypatch)
    assert result.exit_code == 0, result.output
    plan_hash = json.loads((out / "plan.json").read_text())["hash"]
    holds = org.tmp / "apply-typo-holds.yaml"
    holds.write_text(_hold("inbox", "VIP Suport"))
    org.sb.reset_stats()
    before = org.sb.org.counts()
    args = ["apply", str(out), "--approve", plan_hash, "--execute", "--holds", str(holds)]
    applied = CliRunner().invoke(app, [*args, "--root", str(org.rich)])
    assert applied.exit_code == 2, applied.output
    assert says(applied.output, "unknown inbox 'VIP Suport'")
    assert org.sb.stats()["total"] == 0
    assert org.sb.org.counts() == before
