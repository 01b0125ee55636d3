"""`gladly-pipeline status` over the demo's archive: each section's numbers against the truth
(the sandbox's own state, the audit log and the plan files read here, not by the code under
test), then plans, runs, tombstones and keys changed one at a time; at 40 columns, under a
long temporary directory, with its JSON validated against docs/status.schema.json."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

import gladly_sandbox
from audit_log import AuditLog
from gladly_archive import Archive, write_tombstones
from gladly_archive.keyed import keyed_detail_hash, keyed_hash
from gladly_archive.refill_watch import WatchedDetail, write_watch
from gladly_client import GladlyClient
from gladly_pipeline.cli import app
from gladly_pipeline.demo_run import DEMO_KEY, SHIPPED_POLICIES, DemoResult, run_demo
from ingest.exporting import run_export
from retention_policies.planning import make_plan
from tests._console import says
from tests._policies import CALLS, INACTIVE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "status.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
LONG = "a-rather-long-temporary-directory-name-"


@dataclass
class SandboxTruth:
    """What the demo's sandbox held: its export jobs when it stopped, and every piece of
    personal data it ever served (none may appear in any output)."""

    completed: dict[str, datetime] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    personal: set[str] = field(default_factory=set)


def _record_people(sb: gladly_sandbox.Sandbox, truth: SandboxTruth) -> None:
    truth.personal.add(sb.api_token)
    for customer_id in sb.org.customer_ids():
        record = sb.org.raw_customer(customer_id) or {}
        if record.get("name"):
            truth.personal.add(str(record["name"]))
        for email in record.get("emails") or ():
            truth.personal.update({email["original"], email["normalized"]})
        for phone in record.get("phones") or ():
            truth.personal.update({phone["original"], phone["normalized"]})


def _recording_sandbox(truth: SandboxTruth) -> type[gladly_sandbox.Sandbox]:
    class Recording(gladly_sandbox.Sandbox):
        def start(self) -> gladly_sandbox.Sandbox:
            started = super().start()
            _record_people(self, truth)
            return started

        def stop(self) -> None:
            for job in self.exports.list_jobs(status="COMPLETED"):
                truth.completed[job["id"]] = datetime.fromisoformat(job["updatedAt"])
            for customer_id in self.org.customer_ids():
                if (self.org.raw_customer(customer_id) or {}).get("deleted"):
                    truth.deleted.add(customer_id)
            super().stop()

    return Recording


@pytest.fixture(scope="module")
def long_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TMPDIR and every path below it long, as on a CI runner or macOS."""
    base = tmp_path_factory.mktemp("status") / (LONG * 3) / (LONG * 2)
    base.mkdir(parents=True)
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = str(base), None
    try:
        yield base
    finally:
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]


@pytest.fixture(scope="module")
def demo(long_tmp: Path) -> tuple[DemoResult, SandboxTruth]:
    """The demo's whole job, once for the module (about 25 s), its sandbox watched."""
    truth = SandboxTruth()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gladly_sandbox, "Sandbox", _recording_sandbox(truth))
        result = run_demo(long_tmp / "demo", customers=150, say=lambda *_: None)
    assert result.report is not None
    assert result.report.ok
    assert truth.completed
    assert truth.personal
    return result, truth


@pytest.fixture
def copy(demo: tuple[DemoResult, SandboxTruth], long_tmp: Path, tmp_path: Path) -> Path:
    """A copy of the demo's archive a test may change."""
    target = long_tmp / tmp_path.name / "archive"
    shutil.copytree(demo[0].root, target)
    return target


def _status(
    root: Path | str, *args: str, key: str | None = DEMO_KEY, env: dict[str, str] | None = None
) -> tuple[Result, dict[str, Any], Result]:
    """`status --json` (validated against the schema) and the human `status` at 40 columns."""
    settings: dict[str, str | None] = {"COLUMNS": "40", "GLADLY_AUDIT_KEY": key, **(env or {})}
    runner = CliRunner()
    as_json = runner.invoke(app, ["status", "--root", str(root), "--json", *args], env=settings)
    assert as_json.exit_code in (0, 3), as_json.output
    data = json.loads(as_json.stdout)
    errors = [f"{list(e.path)}: {e.message}" for e in VALIDATOR.iter_errors(data)]
    assert errors == []
    human = runner.invoke(app, ["status", "--root", str(root), *args], env=settings)
    assert human.exit_code == as_json.exit_code, human.output
    assert data["attention"] == (human.exit_code == 3)
    # At 40 columns every line fits (nothing is a table wider than the terminal).
    assert max(len(line) for line in human.stdout.splitlines()) <= 40
    return as_json, data, human


def _private(outputs: list[str], truth: SandboxTruth) -> None:
    """No email, phone, name or token of the sandbox's in anything printed."""
    for text in outputs:
        assert "@" not in text
        flat = "".join(text.split())
        leaked = [value for value in truth.personal if "".join(value.split()) in flat]
        assert leaked == []


def _manifest(root: Path) -> pa.Table:
    return pa.concat_tables(
        [pq.read_table(path) for path in sorted((root / "_manifest").glob("*.parquet"))]
    )


def _audit_files(root: Path) -> list[pa.Table]:
    return [pq.read_table(path) for path in sorted((root / "_audit" / "runs").glob("*.parquet"))]


def test_each_section_of_the_demo_matches_the_truth(
    demo: tuple[DemoResult, SandboxTruth], copy: Path
) -> None:
    result, truth = demo
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 0, human.output
    assert data["attention_notes"] == []

    # Last export: the manifest files read here, and the sandbox's own list of jobs.
    manifest = _manifest(copy)
    newest = manifest.sort_by([("archived_at", "descending")]).slice(0, 1).to_pylist()[0]
    last = data["last_export"]
    assert last["jobs_archived"] == manifest.num_rows == len(list(copy.glob("_manifest/*")))
    assert set(manifest.column("job_id").to_pylist()) <= set(truth.completed)
    # A job Gladly completed after the export ran is the only kind the archive may lack.
    missed = set(truth.completed) - set(manifest.column("job_id").to_pylist())
    assert all(truth.completed[job] > newest["archived_at"] for job in missed)
    assert last["last_job"] == newest["job_id"]
    assert datetime.fromisoformat(last["last_archived_at"]) == newest["archived_at"]
    assert 0 <= last["age_hours"] < 1
    assert says(human.stdout, f"job {newest['job_id']}")
    assert says(human.stdout, f"{manifest.num_rows} export jobs archived in all")

    # Unarchived jobs: not known from the archive, and it says so.
    assert data["unarchived_jobs"]["source"] == "archive"
    assert data["unarchived_jobs"]["known"] is False
    assert data["unarchived_jobs"]["jobs"] is None
    assert says(human.stdout, "not known: the archive records only the jobs it archived")

    # Enrichment: the state file, read here.
    state = json.loads((copy / "_enrichment" / "state.json").read_text())
    enrichment = data["enrichment"]
    assert datetime.fromisoformat(enrichment["as_of"]) == datetime.fromisoformat(state["as_of"])
    assert enrichment["covered_from"] == state["covered_from"]
    assert enrichment["next_pass"] == "events"  # the demo enriched a minute ago
    assert says(human.stdout, "next pass: events")

    # Plans: the demo's one plan, executed by the run that applied it.
    plan_dirs = [p for p in (copy / "_plans").iterdir() if p.is_dir()]
    assert [p.name for p in plan_dirs] == [result.plan_dir.name]  # type: ignore[union-attr]
    assert data["plans"]["total"] == 1
    assert data["plans"]["executed"] == 1
    assert data["plans"]["awaiting"] == []

    # Requests: every target of the demo's run has a final outcome in the audit log.
    events = pa.concat_tables(_audit_files(copy))
    outcomes = events.filter(pc.equal(events.column("step"), "outcome"))
    assert outcomes.num_rows == result.plan.targets.num_rows  # type: ignore[union-attr]
    assert data["requests"] == {
        "unfinished_runs": [],
        "failed_targets": 0,
        "interrupted_targets": 0,
        "open": [],
    }
    assert says(human.stdout, "nothing interrupted or failed")

    # Reappeared: none; the erased customers are the tombstones, and the sandbox deleted them.
    stones = pq.read_table(copy / "tombstones").column("customer_id").to_pylist()
    assert data["reappeared"] == {
        "checked": True,
        "erased_customers": len(set(stones)),
        "customers": [],
    }
    assert set(stones) <= truth.deleted

    # Unlinked details: the demo unlinked none, so none is watched or back.
    assert data["refilled_details"] == {"checked": True, "watched": 0, "details": []}
    assert says(human.stdout, "0 unlinked details watched")

    # Audit: the sealed files counted here; the head as `audit head` prints it.
    files = _audit_files(copy)
    head = CliRunner().invoke(
        app, ["audit", "head", "--root", str(copy)], env={"GLADLY_AUDIT_KEY": DEMO_KEY}
    )
    assert head.exit_code == 0, head.output
    count, last_hash = head.stdout.strip().split("-")
    audit = data["audit"]
    assert audit["runs"] == len(files) == 1
    assert audit["events"] == sum(f.num_rows for f in files) == int(count)
    assert audit["head_hash_prefix"] == files[-1].column("hash")[-1].as_py()[:12]
    assert last_hash.startswith(audit["head_hash_prefix"])
    assert audit["verified"] is True
    assert says(human.stdout, f"head {count}-{last_hash[:12]}")
    assert says(human.stdout, "the chain verifies")
    assert says(human.stdout, "Nothing needs attention.")
    _private([as_json.output, human.output], truth)


def test_a_plan_not_applied_awaits_approval_and_after_72_hours_exits_3(
    demo: tuple[DemoResult, SandboxTruth], copy: Path
) -> None:
    now = datetime.now(UTC)
    fresh, fresh_dir = make_plan(SHIPPED_POLICIES, root=str(copy), now=now - timedelta(hours=1))
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 0, human.output  # awaiting, but not for long yet
    (waiting,) = data["plans"]["awaiting"]
    assert waiting["hash_prefix"] == json.loads((fresh_dir / "plan.json").read_text())["hash"][:12]
    assert waiting["overdue"] is False
    assert says(human.stdout, f"plan {fresh.hash[:12]} ({fresh_dir.name})")

    # Over its limit, the inactive-customers policy is blocked; the calls policy plans.
    policies = copy.parent / "limited.yaml"
    inactive = INACTIVE.format(close="false").replace("max_percent: 100", "max_targets: 1")
    policies.write_text(inactive + "---\n" + CALLS)
    stale, stale_dir = make_plan(policies, root=str(copy), now=now - timedelta(hours=80))
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 3, human.output
    assert data["plans"]["total"] == 3
    assert data["plans"]["executed"] == 1
    oldest, newest = data["plans"]["awaiting"]
    summary = json.loads((stale_dir / "summary.json").read_text())
    assert oldest["hash_prefix"] == json.loads((stale_dir / "plan.json").read_text())["hash"][:12]
    assert oldest["directory"] == stale_dir.name
    assert oldest["targets"] == pq.read_table(stale_dir / "targets.parquet").num_rows
    assert oldest["held"] == pq.read_table(stale_dir / "held.parquet").num_rows
    assert oldest["blocked_policies"] == [p["name"] for p in summary["blocked_policies"]]
    assert oldest["blocked_policies"] == ["delete-inactive"]
    assert 80 <= oldest["age_hours"] < 81
    assert oldest["overdue"] is True
    assert newest["hash_prefix"] == fresh.hash[:12]
    note = f"plan {stale.hash[:12]} has awaited approval 80."
    assert any(n.startswith(note) for n in data["attention_notes"])
    assert says(human.stdout, f"plan {stale.hash[:12]} ({stale_dir.name})")
    assert says(human.stdout, "over 72 h")
    assert says(human.stdout, f"blocked: {', '.join(oldest['blocked_policies'])}")
    assert says(human.stdout, "Needs attention")

    # A plan changed on disk after it was written is named, not counted as awaiting.
    summary_file = fresh_dir / "summary.json"
    original = summary_file.read_text()
    summary_file.write_text(original.replace('"targets"', '"targetz"', 1))
    as_json, data, human = _status(copy)
    assert [p["hash_prefix"] for p in data["plans"]["awaiting"]] == [stale.hash[:12]]
    (damaged,) = data["plans"]["unreadable"]
    assert damaged["directory"] == fresh_dir.name
    assert "summary.json does not match" in damaged["problem"]
    assert says(human.stdout, f"{fresh_dir.name}: summary.json does not match")
    summary_file.write_text(original)

    # Rejected by an approver (an audit event): no longer awaiting.
    with AuditLog(copy, key=DEMO_KEY.encode()).start_run(plan_hash=stale.hash) as run:
        run.append(target_type="run", step="approval", phase="result", outcome="rejected")
    as_json, data, _ = _status(copy)
    assert as_json.exit_code == 0
    assert [p["hash_prefix"] for p in data["plans"]["awaiting"]] == [fresh.hash[:12]]
    assert data["plans"]["rejected"] == 1
    _private([as_json.output, human.output], demo[1])


def _run(
    root: Path,
    run_id: str,
    plan_hash: str,
    targets: int,
    events: list[dict[str, Any]],
    *,
    finished: bool = False,
) -> None:
    """An engine run written with the audit key, as the engine writes one (a crash: without
    its run_finished)."""
    with AuditLog(root, key=DEMO_KEY.encode()).start_run(run_id, plan_hash=plan_hash) as run:
        run.append(
            target_type="run",
            step="run_started",
            phase="intent",
            outcome="execute",
            detail=json.dumps({"targets": targets}),
        )
        for event in events:
            run.append(
                policy_name="erase-old",
                policy_hash="c" * 64,
                action="delete_customer",
                target_type="customer",
                **event,
            )
        if finished:
            run.append(target_type="run", step="run_finished", phase="result", outcome="ok")


def test_a_crashed_run_and_failed_targets_need_attention_until_a_rerun_finishes_them(
    demo: tuple[DemoResult, SandboxTruth], copy: Path
) -> None:
    plan = "ab" * 32
    # Crashed after announcing A's DELETE, with B failed and C never reached: no run_finished.
    _run(
        copy,
        "crashed-run",
        plan,
        3,
        [
            {"target_id": "cust-a", "step": "act", "phase": "intent", "detail": "DELETE"},
            {"target_id": "cust-b", "step": "act", "phase": "intent", "detail": "DELETE"},
            {"target_id": "cust-b", "step": "outcome", "phase": "result", "outcome": "failed"},
        ],
    )
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 3, human.output
    (unfinished,) = data["requests"]["unfinished_runs"]
    assert unfinished["run_id"] == "crashed-run"
    assert unfinished["plan_hash_prefix"] == plan[:12]
    assert (unfinished["targets"], unfinished["outcomes"]) == (3, 1)
    (request,) = data["requests"]["open"]
    assert request["kind"] == "plan"
    assert request["hash_prefix"] == plan[:12]
    assert (request["failed"], request["interrupted"], request["not_reached"]) == (1, 1, 1)
    assert (request["targets"], request["finished"]) == (3, 0)
    assert (data["requests"]["failed_targets"], data["requests"]["interrupted_targets"]) == (1, 1)
    assert says(human.stdout, "run crashed-run")
    assert says(human.stdout, f"plan {plan[:12]}:")
    assert says(human.stdout, "1 failed, 1 interrupted, 1 not reached of 3 targets")
    assert data["audit"]["verified"] is True  # written with the key: the chain holds

    # A rerun of the plan finishes A (its call had taken effect) and C; B fails again.
    _run(
        copy,
        "rerun",
        plan,
        3,
        [
            {"target_id": "cust-a", "step": "outcome", "phase": "result", "outcome": "deleted"},
            {"target_id": "cust-c", "step": "outcome", "phase": "result", "outcome": "deleted"},
            {"target_id": "cust-b", "step": "outcome", "phase": "result", "outcome": "failed"},
        ],
    )
    as_json, data, _ = _status(copy)
    (request,) = data["requests"]["open"]
    assert (request["failed"], request["interrupted"], request["not_reached"]) == (1, 0, 0)
    assert request["finished"] == 2
    assert request["last_run_id"] == "rerun"
    assert [r["run_id"] for r in data["requests"]["unfinished_runs"]] == ["rerun"]

    # Its last rerun finishes B and itself: nothing is open any more.
    _run(
        copy,
        "last",
        plan,
        3,
        [{"target_id": "cust-b", "step": "outcome", "phase": "result", "outcome": "deleted"}],
        finished=True,
    )
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 0, human.output
    assert data["requests"]["open"] == []
    assert data["requests"]["unfinished_runs"] == []
    _private([as_json.output, human.output], demo[1])


def test_a_reappeared_customer_is_reported_only_with_the_key(
    demo: tuple[DemoResult, SandboxTruth], copy: Path
) -> None:
    customers = pq.read_table(copy / "customers", columns=["customer_id", "emails", "archived_at"])
    rows = [r for r in customers.to_pylist() if r["emails"]]
    came_back, held_before = (
        rows[0],
        next(r for r in rows if r["customer_id"] != rows[0]["customer_id"]),
    )
    key = DEMO_KEY.encode()
    stamp = came_back["archived_at"]
    write_tombstones(
        Archive(copy),
        [
            {  # erased before the export that holds this profile: it came back
                "customer_id": "erased-one",
                "email_hashes": [keyed_hash(came_back["emails"][0], kind="email", key=key)],
                "deleted_at": stamp - timedelta(days=1),
                "plan_hash": "d" * 64,
            },
            {  # erased after every export that holds this one: not a profile that came back
                "customer_id": "erased-two",
                "email_hashes": [keyed_hash(held_before["emails"][0], kind="email", key=key)],
                "deleted_at": datetime.now(UTC),
                "plan_hash": "d" * 64,
            },
        ],
        run_id="planted",
    )
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 3, human.output
    assert data["reappeared"]["customers"] == [
        {
            "customer_id": came_back["customer_id"],
            "tombstoned_id": "erased-one",
            "matched_on": "email",
            "erased_at": (stamp - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        }
    ]
    assert says(human.stdout, f"customer {came_back['customer_id']}")
    assert says(human.stdout, "has the email of erased erased-one")
    assert came_back["emails"][0] not in as_json.output + human.output

    as_json, data, human = _status(copy, key=None)
    assert as_json.exit_code == 0, human.output
    assert data["reappeared"]["checked"] is False
    assert data["reappeared"]["customers"] is None
    assert says(human.stdout, "not checked: set GLADLY_AUDIT_KEY")
    assert data["audit"]["verified"] is None
    assert says(human.stdout, "not verified: set GLADLY_AUDIT_KEY")
    _private([as_json.output, human.output], demo[1])


def test_an_unlinked_detail_back_on_a_profile_needs_attention_only_with_the_key(
    demo: tuple[DemoResult, SandboxTruth], copy: Path
) -> None:
    columns = ["customer_id", "emails", "external_customer_id", "external_customer_ids_json"]
    customers = pq.read_table(copy / "customers", columns=columns)
    # A profile a lookup adaptor maps (an external id): the likely source of a refill.
    row = next(
        r
        for r in customers.to_pylist()
        if r["emails"] and (r["external_customer_id"] or r["external_customer_ids_json"])
    )
    email = row["emails"][0]
    # As `unlink` records it: the keyed hash of the email, unlinked long before the archive's
    # rows were made, so the profile's newest row has it back.
    write_watch(
        Archive(copy),
        WatchedDetail(
            watch_id="ab" * 8,
            kind="email",
            detail_hash=keyed_detail_hash(email, kind="email", key=DEMO_KEY.encode()),
            customer_id=row["customer_id"],
            unlinked_at=datetime(2001, 1, 1, tzinfo=UTC),
            recorded_at=datetime(2001, 1, 1, tzinfo=UTC),
            request_id="cd" * 32,
        ),
    )
    as_json, data, human = _status(copy)
    assert as_json.exit_code == 3, human.output
    assert data["refilled_details"] == {
        "checked": True,
        "watched": 1,
        "details": [
            {
                "customer_id": row["customer_id"],
                "kind": "email",
                "watch_id": "ab" * 8,
                "unlinked_from": row["customer_id"],
                "source": "lookup adaptor",
            }
        ],
    }
    assert any(row["customer_id"] in note for note in data["attention_notes"])
    assert says(human.stdout, f"has the email unlinked by {'ab' * 8} back")
    assert says(human.stdout, "likely source: a lookup adaptor refills it")
    assert says(human.stdout, "1 unlinked detail watched")
    assert email not in as_json.output + human.output

    as_json, data, human = _status(copy, key=None)
    assert as_json.exit_code == 0, human.output
    assert data["refilled_details"] == {"checked": False, "watched": 1, "details": None}
    _private([as_json.output, human.output], demo[1])


def test_a_chain_that_does_not_verify_and_an_old_enrichment(
    demo: tuple[DemoResult, SandboxTruth], copy: Path
) -> None:
    state = copy / "_enrichment" / "state.json"
    old = json.loads(state.read_text())
    old["as_of"] = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    state.write_text(json.dumps(old))
    as_json, data, human = _status(copy, key="not-the-demo-key")
    assert as_json.exit_code == 3, human.output
    assert data["audit"]["verified"] is False
    assert "another GLADLY_AUDIT_KEY" in data["audit"]["problem"]
    assert says(human.stdout, "THE CHAIN DOES NOT VERIFY")
    assert data["enrichment"]["next_pass"] == "reports"
    assert 30 <= data["enrichment"]["age_hours"] < 31
    assert says(human.stdout, "next pass: reports")
    _private([as_json.output, human.output], demo[1])


def test_an_empty_root_and_roots_that_are_no_archive(tmp_path: Path) -> None:
    empty = tmp_path / "fresh"
    empty.mkdir()
    as_json, data, human = _status(empty)
    assert as_json.exit_code == 0, human.output
    assert data["last_export"]["jobs_archived"] == 0
    assert data["last_export"]["last_job"] is None
    assert data["enrichment"]["as_of"] is None
    assert data["enrichment"]["next_pass"] == "reports"
    assert data["plans"]["total"] == 0
    assert data["audit"]["exists"] is False
    for words in ("no export job archived yet", "no pass recorded", "no audit log yet"):
        assert says(human.stdout, words)

    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "a-file").write_text("x")
    runner = CliRunner()
    for root, why, code in (
        (tmp_path / "nowhere", "it does not exist", 2),
        # Every command's --root is checked first: a file is a configuration error (78).
        (tmp_path / "a-file", "is a file, not a directory", 78),
        (stranger, "is not an archive root", 2),
    ):
        result = runner.invoke(app, ["status", "--root", str(root)], env={"COLUMNS": "40"})
        assert result.exit_code == code, result.output
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1  # one clear line, never wrapped
        assert why in result.stderr
        assert str(root) in result.stderr


def test_live_lists_the_jobs_gladly_would_delete_unarchived(long_tmp: Path, tmp_path: Path) -> None:
    root = long_tmp / tmp_path.name / "live-archive"
    root.mkdir(parents=True)
    missing = CliRunner().invoke(app, ["status", "--root", str(root), "--live"], env={})
    assert missing.exit_code == 2
    assert says(missing.output, "GLADLY_BASE_URL")
    with gladly_sandbox.Sandbox(seed=5, customers=30, rate_limit_per_second=None) as sb:
        env = {
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
        }
        gladly = {j["id"]: j for j in sb.exports.list_jobs(status="COMPLETED")}
        as_json, data, human = _status(root, "--live", env=env)
        jobs = data["unarchived_jobs"]
        assert jobs["source"] == "gladly"
        assert jobs["known"] is True
        assert {j["job"] for j in jobs["jobs"]} == set(gladly)  # nothing archived yet
        now = datetime.fromisoformat(data["now"])
        for job in jobs["jobs"]:
            made = datetime.fromisoformat(gladly[job["job"]]["updatedAt"])
            assert datetime.fromisoformat(job["expires_at"]) == made + timedelta(days=14)
            assert job["days_to_expiry"] == pytest.approx(
                (made + timedelta(days=14) - now) / timedelta(days=1), abs=0.01
            )
        soon = [j for j in jobs["jobs"] if j["days_to_expiry"] <= 2]
        assert jobs["expiring"] == len(soon) > 0  # the schedule's oldest jobs near 14 days
        assert as_json.exit_code == 3
        assert says(human.stdout, f"{len(gladly)} completed jobs not archived (from Gladly)")
        assert says(human.stdout, f"{soon[0]['job']}: Gladly deletes it in")
        assert not says(as_json.output + human.output, sb.api_token)

        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, Archive.open(root)).failed == []
        as_json, data, human = _status(root, "--live", env=env)
        assert as_json.exit_code == 0, human.output
        assert data["unarchived_jobs"]["jobs"] == []
        assert data["unarchived_jobs"]["expiring"] == 0
        assert data["last_export"]["jobs_archived"] == len(gladly)
