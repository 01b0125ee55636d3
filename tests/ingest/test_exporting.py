"""Export jobs from the sandbox into the archive: exact, idempotent, crash-safe, and loud."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest
import responses
from responses import matchers

from gladly_archive import Archive
from gladly_archive.fold import FOLD_PHASE
from gladly_client import GladlyClient, MalformedResponseError
from gladly_client.models import ExportJob
from gladly_sandbox import FaultSpec, Sandbox
from ingest.customer_export import run_customer_export
from ingest.exporting import (
    JOBS_PHASE,
    JobOutcome,
    archive_export_job,
    download_phase,
    is_download_phase,
    job_label,
    run_export,
)
from tests._progress import ProgressLog

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
FILES_ROUTE = "/export/jobs/{jobId}/files/{filename}"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=11,
        customers=120,
        now=NOW,
        frozen_clock=True,
        rate_limit_per_second=None,
        items_per_customer=6,
    ) as sb:
        yield sb


def _client(sb: Sandbox) -> GladlyClient:
    return GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0)


def _rendered(sb: Sandbox, name: str, key: str = "id") -> dict[str, set[str]]:
    """What the sandbox rendered into each completed job's file: ids per job."""
    out: dict[str, set[str]] = {}
    for job in sb.exports.list_jobs(status="COMPLETED"):
        lines = sb.exports.file_path(job["id"], name).read_bytes().splitlines()
        out[job["id"]] = {json.loads(line)[key] for line in lines if line.strip()}
    return out


def _ids(archive: Archive, dataset: str, column: str) -> list[str]:
    return sorted(archive.dataset(dataset).to_table(columns=[column]).column(column).to_pylist())


def _snapshot(archive: Archive) -> dict[str, list[str]]:
    return {
        "items": _ids(archive, "items", "item_id"),
        "customers": _ids(archive, "customers", "customer_id"),
        "agents": _ids(archive, "agents", "agent_id"),
        "topics": _ids(archive, "topics", "topic_id"),
        "transcripts": _ids(archive, "transcripts", "conversation_id"),
        "manifest": _ids(archive, "_manifest", "job_id"),
    }


def test_multi_job_archive_matches_the_sandbox_exactly_and_a_rerun_adds_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    archive = Archive.open(tmp_path / "archive")
    with _client(sandbox) as client:
        report = run_export(client, archive, now=NOW)
        assert report.failed == []
        jobs = _rendered(sandbox, "conversation_items.jsonl")
        assert len(jobs) >= 10  # the backfill plus the scheduled days Gladly still lists
        assert {o.job_id for o in report.archived} == set(jobs)

        snapshot = _snapshot(archive)
        expected_items = sorted(set().union(*jobs.values()))
        assert snapshot["items"] == expected_items  # every item exactly once
        customers = _rendered(sandbox, "customers.jsonl")
        assert snapshot["customers"] == sorted(i for ids in customers.values() for i in ids)
        agents = _rendered(sandbox, "agents.jsonl")
        assert snapshot["agents"] == sorted(i for ids in agents.values() for i in ids)
        assert snapshot["manifest"] == sorted(jobs)
        conversations = archive.dataset("items").to_table(columns=["conversation_id"])
        assert set(snapshot["transcripts"]) == set(
            pc.drop_null(conversations.column("conversation_id")).to_pylist()
        )
        manifest = archive.read_manifest().to_pylist()
        for record in manifest:
            by_name = {f["name"]: f for f in record["files"]}
            rendered = sandbox.exports.file_path(record["job_id"], "conversation_items.jsonl")
            assert by_name["conversation_items.jsonl"]["bytes_read"] == rendered.stat().st_size

        again = run_export(client, archive, now=NOW)
    assert again.archived == []
    assert again.already_archived == len(jobs)
    assert _snapshot(archive) == snapshot


KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime
    from ingest.exporting import run_export
    from gladly_archive import Archive
    from gladly_client import GladlyClient

    base_url, user, token, root, point, now = sys.argv[1:7]
    hits = {"n": 0}

    def crash(name):
        if name.startswith(point):
            hits["n"] += 1
            if hits["n"] == int(os.environ.get("KILL_AT_HIT", "1")):
                os._exit(137)  # no cleanup, no finally: what SIGKILL leaves behind

    archive = Archive.open(root, crash_hook=crash)
    with GladlyClient(base_url, user, token, requests_per_second=500.0) as client:
        run_export(client, archive, now=datetime.fromisoformat(now))
    sys.exit(3)  # the kill point was never reached
    """
)


def test_progress_counts_the_jobs_and_each_files_bytes_up_to_their_totals(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    progress = ProgressLog()
    with _client(sandbox) as client:
        report = run_export(client, Archive.open(tmp_path / "archive"), now=NOW, progress=progress)
    assert report.failed == []
    assert len(report.archived) > 1
    jobs = progress.runs(JOBS_PHASE)
    assert len(jobs) == 1
    assert [done for done, _ in jobs[0]] == list(range(len(report.archived) + 1))
    assert progress.final(JOBS_PHASE) == len(report.archived)
    # Every file's bytes, as the sandbox holds them, counted up to their size.
    sizes = {
        download_phase(job["id"], name): sandbox.exports.file_path(job["id"], name).stat().st_size
        for job in sandbox.exports.list_jobs(status="COMPLETED")
        for name in job["files"]
    }
    downloads = [phase for phase in progress.phases() if is_download_phase(phase)]
    assert {phase: progress.final(phase) for phase in downloads} == sizes
    # The run folded the months the sandbox holds, and said so.
    assert report.folded is not None
    assert progress.final(FOLD_PHASE) > 1
    assert set(progress.phases()) == {JOBS_PHASE, *sizes, FOLD_PHASE}
    # Nothing personal names a phase: a fixed label, a file name, a job id.
    people = [sandbox.org.raw_customer(c) for c in sandbox.org.customer_ids()]
    emails = [e["original"] for p in people if p for e in p.get("emails") or []]
    names = [str(p.get("name")) for p in people if p and p.get("name")]
    assert emails
    assert names
    text = " ".join(progress.phases())
    assert "@" not in text
    assert not [n for n in names if n in text]


@pytest.mark.parametrize(
    ("point", "hit"),
    [
        ("staged:", 3),  # between files of a job: some staged, the rest not downloaded yet
        ("moved:", 2),  # during the renames of a job's commit
    ],
)
def test_a_killed_run_converges_on_the_next_run(
    sandbox: Sandbox, tmp_path: Path, point: str, hit: int
) -> None:
    reference = Archive.open(tmp_path / "reference")
    with _client(sandbox) as client:
        run_export(client, reference, now=NOW)
    killed_root = tmp_path / "killed"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            sandbox.base_url,
            sandbox.user,
            sandbox.api_token,
            str(killed_root),
            point,
            NOW.isoformat(),
        ],
        env={"KILL_AT_HIT": str(hit), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 137, result.stderr.decode()[-2000:]
    assert (killed_root / "_staging").exists()  # it really died mid-job
    archive = Archive.open(killed_root)  # recovery runs here
    with _client(sandbox) as client:
        run_export(client, archive, now=NOW)
    assert _snapshot(archive) == _snapshot(reference)
    assert not any((killed_root / "_staging").glob("*/"))


def test_a_cut_short_download_is_retried_and_never_archived_as_complete(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    archive = Archive.open(tmp_path / "archive")
    sandbox.configure(faults={FILES_ROUTE: FaultSpec(truncate_rate=1.0)})
    with GladlyClient(
        sandbox.base_url,
        sandbox.user,
        sandbox.api_token,
        requests_per_second=500.0,
        max_attempts=2,
        sleep=lambda _s: None,
    ) as client:
        broken = run_export(client, archive, now=NOW)
        assert broken.archived == []
        assert broken.failed
        assert all("cut short" in (o.error or "") for o in broken.failed)
        assert archive.archived_job_ids() == set()
        assert _ids(archive, "items", "item_id") == []

        sandbox.configure(faults={FILES_ROUTE: FaultSpec(truncate_rate=0.3)})
        sandbox.reset_stats()
    with GladlyClient(
        sandbox.base_url,
        sandbox.user,
        sandbox.api_token,
        requests_per_second=500.0,
        max_attempts=10,
        sleep=lambda _s: None,
    ) as client:
        healed = run_export(client, archive, now=NOW)
    assert healed.failed == []
    assert archive.archived_job_ids() == set(_rendered(sandbox, "agents.jsonl"))
    stats = sandbox.stats()
    assert stats["faults"].get("truncate", 0) > 0  # the faults really happened
    for record in archive.read_manifest().to_pylist():
        for entry in record["files"]:
            on_disk = sandbox.exports.file_path(record["job_id"], entry["name"]).read_bytes()
            assert entry["bytes_read"] == len(on_disk)


def test_an_export_run_folds_rows_older_than_a_month_without_changing_them(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folded, plain = Archive.open(tmp_path / "folded"), Archive.open(tmp_path / "plain")
    with _client(sandbox) as client:
        report = run_export(client, folded, now=NOW)
        run_export(client, plain, now=NOW, fold=False)
        again = run_export(client, folded, now=NOW)
    through = NOW.date() - timedelta(days=31)
    assert report.folded is not None
    assert report.folded.through == through
    assert report.folded.rows_folded["items"] > 0
    assert again.folded is None  # the recent tier holds a month now: nothing due
    assert _snapshot(folded) == _snapshot(plain)
    for name in ("items", "transcripts"):
        assert (
            folded.dataset(name)
            .to_table()
            .sort_by([("item_id" if name == "items" else "conversation_id", "ascending")])
            .drop_columns(["built_at"] if name == "transcripts" else [])
            .equals(
                plain.dataset(name)
                .to_table()
                .sort_by([("item_id" if name == "items" else "conversation_id", "ascending")])
                .drop_columns(["built_at"] if name == "transcripts" else [])
            )
        )
    recent = [p for p in (tmp_path / "folded" / "items").iterdir() if p.name != "folded"]
    assert recent
    assert all(date.fromisoformat(p.name) > through for p in recent)
    assert not [p for p in (tmp_path / "plain" / "items").iterdir() if p.name == "folded"]


def test_jobs_close_to_expiry_and_failed_jobs_are_reported(tmp_path: Path) -> None:
    with (
        Sandbox(seed=5, customers=40, now=NOW, frozen_clock=True, rate_limit_per_second=None) as sb,
        _client(sb) as client,
    ):
        archive = Archive.open(tmp_path / "archive")
        # Skip everything: nothing archived, so the oldest listed jobs are at risk.
        report = run_export(client, archive, since=NOW + timedelta(days=1), now=NOW)
        assert report.archived == []
        assert not report.ok
        at_risk = {w.job_id for w in report.warnings}
        old = {
            j["id"]
            for j in sb.exports.list_jobs(status="COMPLETED")
            if NOW - datetime.fromisoformat(j["updatedAt"].replace("Z", "+00:00"))
            >= timedelta(days=12)
        }
        assert old
        assert old <= at_risk
        young = {j["id"] for j in sb.exports.list_jobs(status="COMPLETED")} - old
        assert not (young & at_risk)
    with (
        Sandbox(
            seed=5,
            customers=40,
            now=NOW,
            frozen_clock=True,
            rate_limit_per_second=None,
            failure_rate=1.0,
        ) as sb,
        _client(sb) as client,
    ):
        report = run_export(client, Archive.open(tmp_path / "b"), now=NOW)
        failed = {j["id"] for j in sb.exports.list_jobs(status="FAILED")}
        assert failed
        assert failed <= {w.job_id for w in report.warnings}


def test_customer_export_through_the_api_reports_truncation(tmp_path: Path) -> None:
    with (
        Sandbox(
            seed=8,
            customers=30,
            now=NOW,
            frozen_clock=True,
            rate_limit_per_second=None,
            huge_conversations=1,
        ) as sb,
        _client(sb) as client,
    ):
        huge = next(
            (cid, conv)
            for cid in sb.org.customer_ids()
            if (raw := sb.org.raw_customer(cid))
            and not raw.get("deleted")
            and not raw.get("merged_into")
            for conv in sb.org.list_conversations(cid)[0]
            if sb.org.list_items(conv["id"])[1]
        )
        customer_id, conversation = huge
        email = sb.org.get_customer(customer_id)["emails"][0]["original"]
        archive = Archive.open(tmp_path / "archive")
        report = run_customer_export(client, archive, emails=[email, "nobody@example.invalid"])
        assert report.customer_ids == [customer_id]
        assert report.not_found == ["email #2"]
        assert conversation["id"] in report.incomplete_conversations
        assert not report.complete
        expected = {
            item["id"]
            for conv in sb.org.list_conversations(customer_id)[0]
            for item in sb.org.list_items(conv["id"])[0]
        }
        archived = archive.dataset("items").to_table(columns=["item_id", "job_id"])
        assert set(archived.column("item_id").to_pylist()) == expected
        assert set(archived.column("job_id").to_pylist()) == {report.job_id}
        assert "nobody" not in json.dumps(report.__dict__, default=str)


# Gladly's ids are URL-safe base64; these are not, and must never become paths or get printed.
ESCAPING_ID = "../../escaped-evil"
UNPRINTABLE_ID = "evil\x1b[31m\nid/with-newline"


def _unsafe_listing(sb: Sandbox, good: int = 2) -> tuple[list[str], list[dict[str, object]]]:
    """The oldest `good` completed jobs of the sandbox, plus copies of one under unsafe ids."""
    jobs = sorted(sb.exports.list_jobs(status="COMPLETED"), key=lambda j: j["updatedAt"])[:good]
    unsafe = [{**jobs[0], "id": job_id} for job_id in (ESCAPING_ID, UNPRINTABLE_ID)]
    return [j["id"] for j in jobs], [*jobs, *unsafe]


def _all_paths(top: Path) -> list[str]:
    """Every file and directory under `top`, relative to it."""
    return [
        os.path.relpath(os.path.join(folder, name), top)
        for folder, dirs, files in os.walk(top)
        for name in [*dirs, *files]
    ]


def test_a_job_whose_id_is_not_a_safe_file_name_is_skipped_and_the_others_archived(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    good, listing = _unsafe_listing(sandbox)
    archive = Archive.open(tmp_path / "nested" / "archive")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        # Only the COMPLETED listing is doctored; every other call reaches the real sandbox.
        mock.add_passthru(sandbox.base_url)
        mock.get(
            f"{sandbox.base_url}/api/v1/export/jobs",
            json=listing,
            match=[matchers.query_param_matcher({"status": "COMPLETED"})],
        )
        with _client(sandbox) as client:
            report = run_export(client, archive, now=NOW)

    assert sorted(o.job_id for o in report.archived) == sorted(good)
    assert report.failed == []
    assert archive.archived_job_ids() == set(good)
    digest = hashlib.sha256(UNPRINTABLE_ID.encode()).hexdigest()[:12]
    assert [s.job for s in report.skipped] == [ESCAPING_ID, f"sha256:{digest}"]
    assert all("not a safe file name" in s.reason for s in report.skipped)
    assert not report.ok
    shown = "".join(s.describe() for s in report.skipped)
    assert "\x1b" not in shown
    assert "\n" not in shown
    assert "/with-newline" not in shown
    # Reported once, as skipped, not again as about to expire.
    assert not {ESCAPING_ID, f"sha256:{digest}"} & {w.job_id for w in report.warnings}
    # Nothing anywhere under the test's directory was named after either unsafe id.
    paths = _all_paths(tmp_path)
    assert paths
    assert not [p for p in paths if "evil" in p or digest in p]
    assert not (tmp_path / "escaped-evil").exists()


def test_job_labels_show_safe_ids_and_hash_the_rest() -> None:
    assert job_label("Xq3nT0cUQ5mYbX1kR2hH_w") == "Xq3nT0cUQ5mYbX1kR2hH_w"
    assert job_label(ESCAPING_ID) == ESCAPING_ID  # unsafe as a path, harmless to print
    for unprintable in (UNPRINTABLE_ID, "", "with space", "é", "x" * 101):
        label = job_label(unprintable)
        assert label.startswith("sha256:")
        assert len(label) == len("sha256:") + 12


def test_a_job_that_keeps_getting_garbled_answers_fails_alone(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A MalformedResponseError left after the client's retries fails only its own job."""
    good, listing = _unsafe_listing(sandbox, good=3)
    unlucky = good[1]
    seen: list[str] = []
    archive = Archive.open(tmp_path / "archive")
    with responses.RequestsMock() as mock:
        mock.add_passthru(sandbox.base_url)
        mock.get(
            f"{sandbox.base_url}/api/v1/export/jobs",
            json=listing,
            match=[matchers.query_param_matcher({"status": "COMPLETED"})],
        )
        with _client(sandbox) as client:

            def archive_one(job: ExportJob, now: datetime) -> JobOutcome:
                seen.append(job.id)
                if job.id == unlucky:
                    raise MalformedResponseError(
                        "GET", "/export/jobs/{job_id}/files/{filename}", status=200, received=7
                    )
                return archive_export_job(client, archive, job, now=now)

            report = run_export(client, archive, now=NOW, archive_one=archive_one)

    assert seen == good  # the unsafe ids never reached the per-job step
    assert sorted(o.job_id for o in report.archived) == sorted(set(good) - {unlucky})
    assert [o.job_id for o in report.failed] == [unlucky]
    error = report.failed[0].error or ""
    assert "malformed response" in error
    assert "/export/jobs/{job_id}/files/{filename}" in error
    assert len(report.skipped) == 2
    assert archive.archived_job_ids() == set(good) - {unlucky}
