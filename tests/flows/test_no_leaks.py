"""Nothing personal leaves the transcript archive: logs, artifacts, errors, audit, plans, CLI."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from tests._policies import INACTIVE_AND_CALLS, NOW

pytestmark = pytest.mark.integration


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(
        seed=31, customers=40, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        monkeypatch.setenv("GLADLY_BASE_URL", sb.base_url)
        monkeypatch.setenv("GLADLY_USER", sb.user)
        monkeypatch.setenv("GLADLY_API_TOKEN", sb.api_token)
        monkeypatch.setenv("GLADLY_REQUESTS_PER_SECOND", "300")
        monkeypatch.setenv("GLADLY_AUDIT_KEY", "leak-test-key")
        monkeypatch.setenv("GLADLY_PIPELINE_ROOT", str(tmp_path / "archive"))
        yield sb


def _secrets(sb: Sandbox, customer_ids: set[str]) -> set[str]:
    """The token, and every email, phone and name of the customers involved."""
    found = {sb.api_token}
    for cid in customer_ids:
        record = sb.org.raw_customer(cid) or {}
        found.update(e["original"] for e in record.get("emails", []))
        found.update(p["original"] for p in record.get("phones", []))
        if record.get("name"):
            found.add(record["name"])
    return {s for s in found if s and len(s) >= 4}


def _artifacts() -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [
            json.dumps(a.data) + (a.description or "") for a in client.read_artifacts(limit=200)
        ]


def test_a_whole_run_leaks_nothing_personal(
    prefect_api: None, env: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from flows.apply_retention import apply_retention
    from flows.delete_customer_data import delete_customer_data

    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    root = tmp_path / "archive"
    outputs: list[str] = []

    exported = runner.invoke(app, ["export"])
    outputs.append(exported.output)
    assert exported.exit_code in (0, 3), exported.output
    policies = tmp_path / "policies.yaml"
    policies.write_text(INACTIVE_AND_CALLS)
    planned = runner.invoke(
        app, ["plan", "--policies", str(policies), "--out", str(tmp_path / "p")]
    )
    outputs.append(planned.output)
    plan_hash = json.loads((tmp_path / "p" / "plan.json").read_text())["hash"]
    result = apply_retention(str(tmp_path / "p"), plan_hash, dry_run=False)
    assert result["ok"], result
    involved = {
        t["customer_id"]
        for t in __import__("pyarrow.parquet")
        .parquet.read_table(tmp_path / "p" / "targets.parquet")
        .to_pylist()
    }

    # A one-off by email through the flow, a CLI one-off, and two refused inputs.
    other = [c for c in env.org.customer_ids() if c not in involved][:2]
    involved.update(other)
    emails = [env.org.raw_customer(c)["emails"][0]["original"] for c in other]  # type: ignore[index]
    flow_result = delete_customer_data(
        emails=[emails[0]], dry_run=False, close_open_conversations=True, reason="DSR-1"
    )
    outputs.append(json.dumps(flow_result))
    cli = runner.invoke(
        app, ["delete", "--email", emails[1], "--close-open-conversations", "--execute"]
    )
    outputs.append(cli.output)
    assert cli.exit_code in (0, 3), cli.output
    bad_csv = tmp_path / "bad.csv"
    # Row 3 is not an address (but holds most of one): refused, and not echoed.
    bad_csv.write_text(f"email\n{emails[1]}\n{emails[0].replace('@', ' at ')}\n")
    refused = runner.invoke(app, ["delete", "--csv", str(bad_csv), "--execute"])
    outputs.append(refused.output)
    assert refused.exit_code == 2
    wrong = runner.invoke(app, ["apply", str(tmp_path / "p"), "--approve", "0" * 64])
    outputs.append(wrong.output)
    assert wrong.exit_code == 2
    verified = runner.invoke(app, ["audit", "verify"])
    outputs.append(verified.output)
    assert verified.exit_code == 0, verified.output

    secrets = _secrets(env, involved)
    assert len(secrets) > 10
    texts = {
        "cli output": "\n".join(outputs),
        "log lines": "\n".join(r.getMessage() for r in caplog.records),
        "artifacts": "\n".join(_artifacts()),
    }
    written = [p for p in root.rglob("*") if p.is_file()]
    written += [p for p in (tmp_path / "p").rglob("*") if p.is_file()]
    # The transcript archive itself is where personal data lives; everything else must not.
    evidence = [
        p
        for p in written
        if any(part in ("_audit", "_plans", "tombstones", "_facts", "p") for part in p.parts)
        and "_facts" not in p.parts  # the planner's facts are derived from the archive
    ]
    assert any("_audit" in p.parts for p in evidence)
    for secret in secrets:
        for where, text in texts.items():
            assert secret not in text, f"found personal data in {where}"
        for path in evidence:
            assert secret.encode() not in path.read_bytes(), f"found personal data in {path}"
