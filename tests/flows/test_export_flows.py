"""The export flows under a real (temporary) Prefect API: results and artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from responses import matchers

from gladly_sandbox import Sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)


@pytest.fixture
def sandbox_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(
        seed=21, customers=40, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        monkeypatch.setenv("GLADLY_BASE_URL", sb.base_url)
        monkeypatch.setenv("GLADLY_USER", sb.user)
        monkeypatch.setenv("GLADLY_API_TOKEN", sb.api_token)
        monkeypatch.setenv("GLADLY_REQUESTS_PER_SECOND", "200")
        yield sb


def _artifact_rows(key: str) -> list[dict[str, object]]:
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert artifacts, f"no artifact {key!r}"
    # The Prefect API lives for the whole session: the newest artifact is this test's.
    newest = max(artifacts, key=lambda a: a.created or datetime.min.replace(tzinfo=UTC))
    data = newest.data
    return json.loads(data) if isinstance(data, str) else list(data)  # type: ignore[arg-type]


def test_export_transcripts_flow_archives_and_publishes_a_table(
    prefect_api: None, sandbox_env: Sandbox, tmp_path: Path
) -> None:
    from flows.export_transcripts import export_transcripts

    result = export_transcripts(root=str(tmp_path / "archive"))
    completed = {j["id"] for j in sandbox_env.exports.list_jobs(status="COMPLETED")}
    assert set(result["jobs_archived"]) == completed
    assert result["rows_by_dataset"]["items"] > 0
    rows = _artifact_rows("export-transcripts")
    assert {row["job"] for row in rows if row["outcome"] == "archived"} == completed
    token = sandbox_env.api_token
    assert token not in str(result)
    assert token not in str(rows)

    again = export_transcripts(root=str(tmp_path / "archive"))
    assert again["jobs_archived"] == []
    assert again["jobs_already_archived"] == len(completed)


def test_export_customer_transcripts_flow_names_customers_by_id_only(
    prefect_api: None, sandbox_env: Sandbox, tmp_path: Path
) -> None:
    from flows.export_customer_transcripts import export_customer_transcripts

    org = sandbox_env.org
    customer_id = next(
        cid
        for cid in org.customer_ids()
        if (raw := org.raw_customer(cid)) and not raw.get("deleted") and not raw.get("merged_into")
    )
    email = org.get_customer(customer_id)["emails"][0]["original"]
    result = export_customer_transcripts(emails=[email], root=str(tmp_path / "archive"))
    assert result["customer_ids"] == [customer_id]
    assert result["items"] > 0
    rows = _artifact_rows("export-customer-transcripts")
    assert email not in str(result)
    assert email not in str(rows)


def test_export_transcripts_flow_reports_a_job_skipped_for_its_unsafe_id(
    prefect_api: None, sandbox_env: Sandbox, tmp_path: Path
) -> None:
    from flows.export_transcripts import export_transcripts

    good = max(sandbox_env.exports.list_jobs(status="COMPLETED"), key=lambda j: j["updatedAt"])
    base = sandbox_env.base_url
    # Prefect's own client speaks httpx: only the client's requests calls are intercepted.
    with responses.RequestsMock() as mock:
        mock.add_passthru(base)
        mock.get(
            f"{base}/api/v1/export/jobs",
            json=[good, {**good, "id": "../escaped-evil"}, {**good, "id": "evil\nid"}],
            match=[matchers.query_param_matcher({"status": "COMPLETED"})],
        )
        result = export_transcripts(root=str(tmp_path / "archive"))
    assert result["jobs_archived"] == [good["id"]]
    assert not result["ok"]
    skipped = result["jobs_skipped"]
    assert len(skipped) == 2
    assert skipped[0]["job"] == "../escaped-evil"  # unsafe as a path, harmless to print
    assert skipped[1]["job"].startswith("sha256:")
    assert all("not a safe file name" in s["reason"] for s in skipped)
    rows = _artifact_rows("export-transcripts")
    assert [row["job"] for row in rows if row["outcome"] == "skipped"] == [
        s["job"] for s in skipped
    ]
    assert "evil\nid" not in str(result)
    assert "evil\nid" not in str(rows)


def test_export_transcripts_flow_alerts_on_a_refilled_detail(
    prefect_api: None,
    sandbox_env: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from erasure.unlink import run_unlink
    from erasure.unlink_request import parse_unlink
    from flows import alerts
    from flows import export_transcripts as flow_module
    from gladly_client import GladlyClient

    key = b"flow-refill-key"
    monkeypatch.setenv("GLADLY_AUDIT_KEY", key.decode())
    sent: list[tuple[str, str, dict[str, object]]] = []
    monkeypatch.setattr(flow_module, "emit_alert", lambda e, r, p=None: sent.append((e, r, p)))
    root = str(tmp_path / "archive")
    first = flow_module.export_transcripts(root=root)
    assert first["refilled"] == []
    sb = sandbox_env
    cid = next(
        c
        for c in sb.org.customer_ids()
        if (sb.org.raw_customer(c) or {}).get("externalCustomerIds")
    )
    address = "flow.refill@example.org"
    sb.refill(cid, email=address)
    with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client:
        request = parse_unlink(customer=cid, email=address)
        done = run_unlink(request, root=root, client=client, key=key, actor="t", dry_run=False)
    assert done.done
    sb.refill(cid, email=address, contact=True)
    sb.advance(days=1)
    result = flow_module.export_transcripts(root=root)
    assert result["refilled"] == [
        {"customer_id": cid, "kind": "email", "watch_id": done.watch_id, "source": "lookup adaptor"}
    ]
    refills = [s for s in sent if s[0] == alerts.DETAIL_REFILLED]
    assert [(e, r) for e, r, _ in refills] == [(alerts.DETAIL_REFILLED, cid)]
    assert address not in str(sent)
    assert alerts.DETAIL_REFILLED in alerts._SUBJECTS  # `alerts install` notifies on it
