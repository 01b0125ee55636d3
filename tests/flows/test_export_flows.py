"""The export flows under a real (temporary) Prefect API: results and artifacts."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from gladly_archive import Archive
from gladly_sandbox import Sandbox
from retention_policies.planning import make_plan
from tests._policies import INACTIVE_AND_CALLS

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


def _artifact(key: str) -> Any:
    """The data of the newest artifact under `key`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert artifacts, f"no artifact {key!r}"
    # The Prefect API lives for the whole session: the newest artifact is this test's.
    newest = max(artifacts, key=lambda a: a.created or datetime.min.replace(tzinfo=UTC))
    return newest.data


def _artifact_rows(key: str) -> list[dict[str, object]]:
    data = _artifact(key)
    return json.loads(data) if isinstance(data, str) else list(data)


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


def _personal(sb: Sandbox) -> set[str]:
    """The token, and every email, phone and name the sandbox's customers have."""
    found = {sb.api_token}
    for customer_id in sb.org.customer_ids():
        record = sb.org.raw_customer(customer_id) or {}
        found.add(str(record.get("name") or ""))
        for contact in [*(record.get("emails") or ()), *(record.get("phones") or ())]:
            found.update({contact["original"], contact["normalized"]})
    return {value for value in found if len(value) >= 4}


def _no_personal_data(text: str, sb: Sandbox) -> None:
    assert "@" not in text
    flat = "".join(text.split())
    assert [value for value in _personal(sb) if "".join(value.split()) in flat] == []


def test_the_export_flow_publishes_the_live_status(
    prefect_api: None, sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.export_transcripts import export_transcripts

    monkeypatch.setenv("GLADLY_AUDIT_KEY", "status-artifact-test-key")
    jobs = sandbox_env.exports.list_jobs(status="COMPLETED")
    ends = sorted(job["parameters"]["endAt"] for job in jobs)
    # Jobs whose window ended by `since` are left unarchived: the status lists them from Gladly.
    since = datetime.fromisoformat(ends[len(ends) // 2])
    left = {
        job["id"] for job in jobs if datetime.fromisoformat(job["parameters"]["endAt"]) <= since
    }
    assert 0 < len(left) < len(jobs)
    root = tmp_path / "archive"

    result = export_transcripts(root=str(root), since=since)
    assert set(result["jobs_archived"]) == {job["id"] for job in jobs} - left
    markdown = _artifact("gladly-status")
    manifest = Archive(str(root)).read_manifest()
    assert manifest.num_rows == len(result["jobs_archived"])
    # Gladly's jobs are weeks older than this test's clock: every one left is past its expiry.
    assert markdown.startswith("# Needs attention\n")
    assert f"  {manifest.num_rows} export jobs archived in all\n" in markdown
    assert f"  {len(left)} completed jobs not archived (from Gladly)\n" in markdown
    for job in left:
        assert f"  {job}: Gladly deletes it" in markdown
        assert f"- export job {job} is not archived and Gladly deletes it since" in markdown
    assert "  read from the archive, its audit log and Gladly's export jobs\n" in markdown
    assert "Reappeared customers\n  none\n" in markdown  # checked: the key is set
    _no_personal_data(markdown, sandbox_env)


def test_a_status_that_cannot_be_read_is_published_as_such_and_the_export_completes(
    prefect_api: None,
    sandbox_env: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import flows.status_artifact
    from flows.export_transcripts import export_transcripts

    def unreadable(*_: object, **__: object) -> None:
        raise OSError(errno.EIO, "Input/output error", "/archive/_audit/journal")

    monkeypatch.setattr(flows.status_artifact, "read_audit_status", unreadable)
    with caplog.at_level(logging.WARNING):
        result = export_transcripts(root=str(tmp_path / "archive"))
    completed = {j["id"] for j in sandbox_env.exports.list_jobs(status="COMPLETED")}
    assert result["ok"]
    assert set(result["jobs_archived"]) == completed
    warned = [r for r in caplog.records if "STATUS NOT READ" in r.getMessage()]
    assert [r.levelno for r in warned] == [logging.WARNING]
    assert warned[0].exc_info is None
    assert warned[0].getMessage() == (
        "STATUS NOT READ: OSError: Input/output error: /archive/_audit/journal"
    )
    markdown = _artifact("gladly-status")
    assert markdown.startswith("# The status could not be read\n")
    assert "  OSError: Input/output error: /archive/_audit/journal\n" in markdown


def test_a_library_error_is_published_by_its_class_alone(
    prefect_api: None, sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.status_artifact
    from flows.export_transcripts import export_transcripts

    quoted = sandbox_env.org.raw_customer(sandbox_env.org.customer_ids()[0])["name"]

    def choked(*_: object, **__: object) -> None:
        raise ValueError(f"cannot parse {quoted!r}")  # as a library may quote what it read

    monkeypatch.setattr(flows.status_artifact, "read_audit_status", choked)
    assert export_transcripts(root=str(tmp_path / "archive"))["ok"]
    markdown = _artifact("gladly-status")
    assert "  ValueError (run `gladly-pipeline status` for the details)\n" in markdown
    assert quoted not in markdown


def test_the_weekly_flow_publishes_the_status_after_its_run(
    prefect_api: None, sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.apply_retention import apply_retention
    from flows.export_transcripts import export_transcripts

    monkeypatch.setenv("GLADLY_AUDIT_KEY", "status-artifact-test-key")
    root = tmp_path / "archive"
    export_transcripts(root=str(root))
    policies = tmp_path / "policies.yaml"
    policies.write_text(INACTIVE_AND_CALLS)
    plan, plan_dir = make_plan(policies, root=str(root), now=NOW)
    result = apply_retention(str(plan_dir), plan.hash, dry_run=True, root=str(root))
    assert result["dry_run"]
    markdown = _artifact("gladly-status")
    # Live, as the hourly flow's: Gladly's export jobs are listed too.
    assert "  read from the archive, its audit log and Gladly's export jobs\n" in markdown
    assert "  not known: the archive records only the jobs it archived\n" not in markdown
    assert f"  plan {plan.hash[:12]} ({plan_dir.name})\n" in markdown
    assert "    rehearsed 1 time\n" in markdown
    assert "  the chain verifies\n" in markdown
    _no_personal_data(markdown, sandbox_env)


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
