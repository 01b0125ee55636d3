"""The deletion engine against the sandbox: what it deletes, what it refuses, what it leaves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from audit_log import AuditLog, verify_chain
from audit_log import outcomes as o
from audit_log.fields import MAX_TEXT
from erasure.engine import TARGETS_PHASE, PlanRefusedError
from erasure.execution import run_apply, run_delete
from erasure.request import OneOffInputError, parse_request
from erasure.request_metadata import metadata_hash
from gladly_archive import Archive
from gladly_archive.keyed import keyed_hash
from gladly_archive.purge import purge_phase
from gladly_archive.tombstones import read_tombstones
from gladly_client import GladlyClient
from ingest.exporting import run_export
from retention_policies import HoldRegistry
from tests._policies import CALLS, INACTIVE, INACTIVE_AND_CALLS, NOW
from tests._progress import ProgressLog
from tests._world import KEY, World, sandbox_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with sandbox_world(tmp_path, monkeypatch) as w:
        yield w


def _one_outcome_each(report: o.RunReport, targets: list[dict[str, Any]]) -> None:
    keys = [o_.key for o_ in report.outcomes]
    assert len(keys) == len(set(keys)) == len(targets)
    assert set(keys) == {(t["policy_name"], t["target_type"], t["target_id"]) for t in targets}


def test_policy_deletion_deletes_verifies_and_erases_our_copy(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="false"))
    customers = [t["target_id"] for t in targets]
    assert len(customers) >= 5
    items = Archive(world.root).dataset("items").to_table(columns=["customer_id"])
    report = run_apply(
        plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client
    )
    _one_outcome_each(report, targets)
    by_outcome = {x.target_id: x.outcome for x in report.outcomes}
    deleted = [c for c, x in by_outcome.items() if x == o.DELETED]
    assert deleted
    for cid, outcome in by_outcome.items():
        truth = world.customer(cid)
        if outcome == o.DELETED:
            assert truth["deleted"] is True
        else:
            assert outcome == o.BLOCKED_OPEN, outcome  # the only other reason here
            assert truth["deleted"] is False
            statuses = {
                world.sandbox.org.get_conversation(v)["status"]
                for v in world.sandbox.org.conversation_ids(cid)
            }
            assert statuses - {"CLOSED"}
    # Three calls a profile: pre-flight list, delete, verification search.
    assert report.api_calls.get("DELETE", 0) == len(deleted)
    assert sum(report.api_calls.values()) <= 3 * len(customers)
    # Our own archive: tombstones for the deleted, and none of their rows left.
    stones = read_tombstones(Archive(world.root))
    assert set(deleted) <= set(stones.column("customer_id").to_pylist())
    after = Archive(world.root).dataset("items").to_table(columns=["customer_id"])
    gone = pc.is_in(after.column("customer_id"), value_set=pc.cast(deleted, "string"))
    assert pc.sum(gone).as_py() in (0, None)
    kept = pc.invert(pc.is_in(items.column("customer_id"), value_set=pc.cast(deleted, "string")))
    assert after.num_rows == pc.sum(kept).as_py()
    assert verify_chain(world.root, key=KEY.encode()).ok
    assert report.chain_ok
    # The planner's saved facts held the erased customers' contacts: gone with the purge.
    assert not (world.root / "_facts").exists()


def test_a_rerun_of_the_same_plan_does_nothing_twice(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="false"))
    first = run_apply(plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client)
    world.sandbox.reset_stats()
    again = run_apply(plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client)
    assert again.resumed == len(targets) == len(first.outcomes)
    assert again.outcomes == []
    assert world.sandbox.stats()["total"] == 0
    assert verify_chain(world.root, key=KEY.encode()).ok


def test_progress_counts_the_targets_then_the_purge_of_our_copy(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="true"))
    progress = ProgressLog()
    report = run_apply(
        plan_dir,
        plan_hash,
        root=str(world.root),
        dry_run=False,
        client=world.client,
        progress=progress,
    )
    (run,) = progress.runs(TARGETS_PHASE)
    assert [done for done, _ in run] == list(range(len(targets) + 1))
    assert progress.final(TARGETS_PHASE) == len(report.outcomes) == len(targets)
    # Then our archive's purge, per dataset: the files it changed.
    assert progress.phases()[0] == TARGETS_PHASE
    purged = progress.phases()[1:]
    assert purge_phase("items") in purged
    changed = report.purge["files_rewritten"]["items"] + report.purge["files_deleted"]["items"]
    assert progress.final(purge_phase("items")) == changed > 0
    for phase in purged:
        progress.runs(phase)
    # Nothing personal names a phase (ids would be allowed; none is needed).
    text = " ".join(progress.phases())
    assert "@" not in text
    assert not [t["target_id"] for t in targets if t["target_id"] in text]
    # A rerun has nothing left to do: its targets are 0 of 0.
    rerun = ProgressLog()
    run_apply(
        plan_dir,
        plan_hash,
        root=str(world.root),
        dry_run=False,
        client=world.client,
        progress=rerun,
    )
    assert rerun.calls == [(TARGETS_PHASE, 0, 0)]


def test_open_conversations_block_unless_the_policy_closes_them(world: World) -> None:
    # Quiet for a day: some of these customers still have an open conversation.
    recent = INACTIVE.replace("older_than: 400", "older_than: 1")
    plan_dir, plan_hash, targets = world.plan(recent.format(close="false"), "keep-open")
    report = run_apply(
        plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client
    )
    blocked = [x.target_id for x in report.outcomes if x.outcome == o.BLOCKED_OPEN]
    assert blocked
    assert report.api_calls.get("PATCH", 0) == 0
    assert not any(world.customer(c)["deleted"] for c in blocked)
    plan_dir, plan_hash, targets = world.plan(recent.format(close="true"), "close")
    report = run_apply(
        plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client
    )
    _one_outcome_each(report, targets)
    assert {x.outcome for x in report.outcomes} == {o.DELETED}
    assert report.api_calls.get("PATCH", 0) >= 1  # at least one customer had an open one
    for t in targets:
        assert world.customer(t["target_id"])["deleted"] is True


def test_dry_run_changes_nothing(world: World) -> None:
    plan_dir, plan_hash, _ = world.plan(INACTIVE_AND_CALLS)
    counts = world.sandbox.org.counts()
    archive_files = sorted(p.relative_to(world.root) for p in world.root.rglob("*.parquet"))
    world.sandbox.reset_stats()
    report = run_apply(plan_dir, plan_hash, root=str(world.root), client=world.client)
    assert report.dry_run
    assert {x.outcome for x in report.outcomes} <= {o.DRY_RUN, o.NOT_ERASABLE}
    assert world.sandbox.org.counts() == counts
    assert world.sandbox.stats()["total"] == 0  # not even a read
    kept = sorted(
        p.relative_to(world.root) for p in world.root.rglob("*.parquet") if "_audit" not in p.parts
    )
    assert kept == archive_files
    assert verify_chain(world.root, key=KEY.encode()).ok


def test_wrong_hash_or_changed_plan_is_refused_before_any_call(world: World) -> None:
    plan_dir, plan_hash, _ = world.plan(INACTIVE.format(close="false"))
    world.sandbox.reset_stats()
    with pytest.raises(PlanRefusedError, match="approved"):
        run_apply(plan_dir, "f" * 64, root=str(world.root), dry_run=False, client=world.client)
    with pytest.raises(PlanRefusedError, match="at least"):
        run_apply(plan_dir, "", root=str(world.root), dry_run=False, client=world.client)
    targets = pq.read_table(plan_dir / "targets.parquet")
    pq.write_table(targets.slice(1), plan_dir / "targets.parquet")
    with pytest.raises(PlanRefusedError, match="changed"):
        run_apply(plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client)
    assert world.sandbox.stats()["total"] == 0
    assert world.sandbox.org.counts()["deleted_customers"] == 0


def test_holds_added_after_planning_win(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="true"))
    by_id, by_email = targets[0]["target_id"], targets[1]["target_id"]
    email = world.customer(by_email)["emails"][0]["original"]
    registry = HoldRegistry.empty(key=KEY.encode())
    registry = registry.add("customer_id", by_id, reason="litigation", reference="L-1")
    registry = registry.add("email", email, reason="regulator", reference="L-2")
    holds = world.tmp / "holds.yaml"
    registry.write(holds)
    report = run_apply(
        plan_dir,
        plan_hash,
        root=str(world.root),
        dry_run=False,
        holds_path=holds,
        client=world.client,
    )
    outcome = {x.target_id: x for x in report.outcomes}
    assert outcome[by_id].outcome == o.HELD
    assert "L-1" in (outcome[by_id].detail or "")
    assert outcome[by_email].outcome == o.HELD
    assert "L-2" in (outcome[by_email].detail or "")
    assert world.customer(by_id)["deleted"] is False
    assert world.customer(by_email)["deleted"] is False
    assert email not in (outcome[by_email].detail or "")


def test_item_redaction_is_verified(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(CALLS)
    assert targets
    report = run_apply(
        plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client
    )
    _one_outcome_each(report, targets)
    assert {x.outcome for x in report.outcomes} == {o.REDACTED}
    for t in targets:
        content = world.sandbox.org.get_item(t["target_id"])["content"]
        assert content["recordingStatus"] == "DELETED"
        assert "recordingUrl" not in content


def test_one_off_by_email_deletes_and_audits_only_a_hash(world: World) -> None:
    cid = world.sandbox.org.customer_ids()[3]
    record = world.customer(cid)
    email = record["emails"][0]["original"]
    request = parse_request(emails=[email], reason="DSR-77", close_open_conversations=True)
    run = run_delete(request, root=str(world.root), dry_run=False, client=world.client)
    assert [x.outcome for x in run.report.outcomes] == [o.DELETED]
    assert world.customer(cid)["deleted"] is True
    events = AuditLog(world.root, key=KEY.encode()).events()
    hashes = {h for h in events.column("subject_hash").to_pylist() if h}
    assert hashes == {keyed_hash(email, kind="email", key=KEY.encode())}
    for path in (world.root / "_audit").rglob("*"):
        if path.is_file():
            assert email.encode() not in path.read_bytes()


def test_one_off_follows_a_merged_id(world: World) -> None:
    old_id, survivor = next(
        (old, rec["merged_into"])
        for old in world.sandbox.org.customer_ids()
        if (rec := world.customer(old)).get("merged_into")
    )
    request = parse_request(customer_ids=[old_id], close_open_conversations=True)
    run = run_delete(request, root=str(world.root), dry_run=False, client=world.client)
    [outcome] = run.report.outcomes
    assert outcome.outcome == o.DELETED
    assert survivor in (outcome.detail or "")
    assert world.customer(survivor)["deleted"] is True


def test_a_csv_with_bad_rows_deletes_nothing(world: World) -> None:
    good = world.customer(world.sandbox.org.customer_ids()[0])["emails"][0]["original"]
    sheet = world.tmp / "people.csv"
    sheet.write_text(f"email,phone\n{good},\nnot-an-email,\n,12\n{good},+15550100000\n")
    world.sandbox.reset_stats()
    with pytest.raises(OneOffInputError) as caught:
        parse_request(csv_path=sheet)
    problems = "\n".join(caught.value.problems)
    assert "row 3" in problems
    assert "row 4" in problems
    assert "row 5" in problems
    assert "row 2" not in problems
    assert good not in str(caught.value)
    assert "not-an-email" not in str(caught.value)
    assert world.sandbox.stats()["total"] == 0


def test_a_clean_csv_deletes_each_row(world: World) -> None:
    ids = world.sandbox.org.customer_ids()[5:8]
    emails = [world.customer(c)["emails"][0]["original"] for c in ids]
    sheet = world.tmp / "people.csv"
    sheet.write_text("email\n" + "\n".join(emails) + "\n")
    request = parse_request(csv_path=sheet, close_open_conversations=True)
    run = run_delete(request, root=str(world.root), dry_run=False, client=world.client)
    assert sorted(x.target_id for x in run.report.outcomes) == sorted(ids)
    assert all(world.customer(c)["deleted"] for c in ids)


def test_faults_on_many_calls_still_give_one_terminal_outcome_each(world: World) -> None:
    from gladly_sandbox import FaultSpec

    plan_dir, plan_hash, targets = world.plan(INACTIVE_AND_CALLS)
    sb = world.sandbox
    sb.configure(
        faults={"*": FaultSpec(error_rate=0.1, reset_rate=0.04, throttle_rate=0.04)},
        fault_seed=99,
    )
    sb.reset_stats()
    # The client's backoff and throttle waits are skipped, never slept for real.
    with GladlyClient(
        sb.base_url,
        sb.user,
        sb.api_token,
        requests_per_second=500.0,
        sleep=lambda _: None,
        max_attempts=8,
    ) as client:
        report = run_apply(plan_dir, plan_hash, root=str(world.root), dry_run=False, client=client)
    stats = sb.stats()
    faults = sum(stats["faults"].values())
    assert faults / stats["total"] >= 0.10
    assert {"error", "reset", "throttle"} <= set(stats["faults"])
    _one_outcome_each(report, targets)
    assert not [x for x in report.outcomes if x.outcome in (o.FAILED, o.VERIFY_FAILED)]
    events = AuditLog(world.root, key=KEY.encode()).events().to_pylist()
    finals = [
        (e["policy_name"], e["target_type"], e["target_id"])
        for e in events
        if e["step"] == "outcome"
    ]
    assert len(finals) == len(set(finals)) == len(targets)
    assert verify_chain(world.root, key=KEY.encode()).ok


def test_a_deleted_customer_who_comes_back_is_reported_by_the_next_export(world: World) -> None:
    from datetime import timedelta

    sb = world.sandbox
    sb.configure(contact_again=True)
    cid = sb.org.customer_ids()[4]
    email = world.customer(cid)["emails"][0]["original"]
    request = parse_request(emails=[email], close_open_conversations=True)
    run = run_delete(request, root=str(world.root), dry_run=False, client=world.client)
    [outcome] = run.report.outcomes
    assert outcome.outcome == o.DELETED
    assert "reappeared" in (outcome.detail or "")  # the verification search saw the new profile
    fresh = world.customer(cid)["recontacted_as"]
    assert fresh
    assert fresh != cid
    sb.advance(days=2)
    export = run_export(
        world.client,
        Archive.open(world.root),
        now=NOW + timedelta(days=2),
        audit_key=KEY.encode(),
    )
    assert export.archived
    assert export.reappeared is not None
    found = {(r.customer_id, r.tombstoned_id) for r in export.reappeared.reappeared}
    assert (fresh, cid) in found
    assert export.reappeared.repurged == []


def test_erased_ids_an_old_export_brings_back_are_purged_again(world: World) -> None:
    from datetime import UTC, datetime

    from gladly_archive.tombstones import write_tombstones
    from ingest.reappeared import check_reappeared

    archive = Archive(world.root)
    items = archive.dataset("items").to_table(columns=["customer_id", "job_id"])
    row = items.slice(0, 1).to_pylist()[0]
    cid, job = row["customer_id"], row["job_id"]
    # As if the customer had been erased after this job's window but before it was archived.
    write_tombstones(
        archive,
        [{"customer_id": cid, "deleted_at": datetime.now(UTC), "plan_hash": "c" * 64}],
        run_id="r1",
    )
    found = check_reappeared(archive, [job], None)
    assert found.repurged == [cid]
    assert found.rows_repurged > 0
    assert not found.hashes_checked
    left = archive.dataset("items").to_table(columns=["customer_id"]).column("customer_id")
    assert cid not in left.to_pylist()


def test_an_auditor_finds_a_policy_deletion_by_the_persons_email(world: World) -> None:
    from evidence.pack import build_evidence

    plan_dir, plan_hash, _ = world.plan(INACTIVE.format(close="true"))
    report = run_apply(
        plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client
    )
    cid = next(x.target_id for x in report.outcomes if x.outcome == o.DELETED)
    email = world.customer(cid)["emails"][0]["original"]
    pack = build_evidence(str(world.root), subject_email=email, key=KEY.encode())
    # No subject hash was recorded (a policy, not a request): the tombstone names the customer.
    assert pack.summary["scope"]["tombstoned_customers"] == [cid]
    assert pack.summary["outcomes"]["total"] == {o.DELETED: 1}
    for path in pack.out_dir.rglob("*"):
        if path.is_file():
            assert email.encode() not in path.read_bytes()


def test_a_wide_ticket_export_is_audited_in_parts_that_fit_the_audit_log(world: World) -> None:
    cid = world.sandbox.org.customer_ids()[9]
    names = [f"ticket field {n:02d} " + "x" * 48 for n in range(50)]  # 64 characters each
    sheet = world.tmp / "wide.csv"
    sheet.write_text(",".join(["customer_id", *names]) + "\n" + ",".join([cid, *names]) + "\n")
    request = parse_request(csv_path=sheet)
    run = run_delete(request, root=str(world.root), dry_run=True, client=world.client)
    events = AuditLog(world.root, key=KEY.encode()).events().to_pylist()
    parts = [e for e in events if e["step"] == "request_metadata"]
    assert len(parts) > 1
    assert all(len(e["detail"]) <= MAX_TEXT for e in parts)
    assert {e["policy_hash"] for e in parts} == {run.request_id}
    audited = {k: v for e in parts for k, v in json.loads(e["detail"])["metadata"].items()}
    assert audited == {n: metadata_hash(KEY.encode(), n, [n]) for n in names}
    assert verify_chain(world.root, key=KEY.encode()).ok
