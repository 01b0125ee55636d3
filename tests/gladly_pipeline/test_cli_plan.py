"""`gladly-pipeline plan` over an archive exported from the sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from retention_policies.plan import Plan
from retention_policies.plan_summary import summary_lines
from tests._console import flat, says

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "retention_policies" / "policies"


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("plan") / "archive"
    with (
        Sandbox(
            seed=29, customers=80, now=NOW, frozen_clock=True, rate_limit_per_second=None
        ) as sb,
        GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client,
    ):
        run_export(client, Archive.open(root), now=NOW)
    return str(root)


def test_plan_writes_a_reviewable_directory_and_prints_the_hash(
    archive_root: str, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        app, ["plan", "--policies", str(SHIPPED), "--root", archive_root, "--out", str(out)]
    )
    assert result.exit_code in (0, 3), result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "held.parquet",
        "plan.json",
        "summary.json",
        "targets.parquet",
    ]
    manifest = json.loads((out / "plan.json").read_text())
    assert says(result.output, manifest["hash"])
    summary = json.loads((out / "summary.json").read_text())
    assert (result.exit_code == 3) == bool(summary["blocked_policies"])
    # The approver reads summary.json's own policies block, every policy, in order.
    assert [p["name"] for p in summary["policies"]] == sorted(
        p["name"] for p in manifest["policies"]
    )
    assert flat("\n".join(summary_lines(summary))) in flat(result.output)
    assert summary["policies"] == json.loads(json.dumps(Plan.read(out).summary()["policies"]))


def test_plan_refuses_invalid_policies_and_holds_without_a_key(
    archive_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresource: customers\n")
    result = CliRunner().invoke(app, ["plan", "--policies", str(bad), "--root", archive_root])
    assert result.exit_code == 2
    assert says(result.output, "bad.yaml")
    holds = tmp_path / "holds.yaml"
    holds.write_text("holds: []\n")
    monkeypatch.delenv("GLADLY_AUDIT_KEY", raising=False)
    result = CliRunner().invoke(
        app,
        ["plan", "--policies", str(SHIPPED), "--holds", str(holds), "--root", archive_root],
    )
    assert result.exit_code == 78  # a missing setting: configuration
    assert says(result.output, "GLADLY_AUDIT_KEY")
    assert not (Path(archive_root) / "_plans").exists()
