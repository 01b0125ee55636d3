"""One-off erasure through the command line, judged by the sandbox's truth and a byte scan:
crashes mid-request, ids that never existed, phones as people type them, rehearsals."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from audit_log import AuditLog
from erasure.request_metadata import metadata_hash
from tests._console import says
from tests._scan import traces
from tests.erasure._erasure_world import KEY, ErasureWorld, deletable, erasure_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErasureWorld]:
    with erasure_world(tmp_path_factory.mktemp("erasure"), customers=40) as w:
        yield w


def _email(world: ErasureWorld, cid: str) -> str:
    return str(world.customer(cid)["emails"][0]["original"])


# A one-off profile deletion's audit events, in order: run_started 1, hold_check 2, pre-flight
# intent 3 and result 4, hold_check 5, DELETE intent 6 and result 7, verification intent 8 and
# result 9, outcome 10, tombstone 11, purge intent 12 and result 13.
@pytest.mark.parametrize("kill_at", [6, 7, 10, 12])
def test_a_kill_mid_request_is_finished_by_the_rerun(world: ErasureWorld, kill_at: int) -> None:
    cid = deletable(world)[kill_at]
    email = _email(world, cid)
    personal = world.personal(cid)
    killed = world.cli("delete", "--email", email, "--execute", kill_at=kill_at)
    assert killed.returncode < 0  # SIGKILLed
    rerun = world.cli("delete", "--email", email.upper(), "--execute")
    assert rerun.returncode == 0, rerun.stderr
    assert world.customer(cid)["deleted"] is True
    per_target = {t: n for (r, t), n in world.final_outcomes_per_target().items() if t == cid}
    assert per_target == {cid: 1}
    assert world.tombstones()[cid] == 1
    assert [e["outcome"] for e in world.outcomes() if e["target_id"] == cid] == ["deleted"]
    assert traces(world.root, personal) == []


def test_an_id_that_never_existed_is_not_found_and_not_done(world: ErasureWorld) -> None:
    result = world.cli("delete", "--customer-id", "NeverExisted0000000000", "--execute")
    assert result.returncode == 3, result.stderr
    assert says(result.stderr, "matched no one in Gladly")
    outcomes = [e for e in world.outcomes() if e["target_id"] == "NeverExisted0000000000"]
    assert [e["outcome"] for e in outcomes] == ["not_found"]
    assert world.tombstones()["NeverExisted0000000000"] == 0


def test_an_email_that_matches_no_one_is_not_found(world: ErasureWorld) -> None:
    result = world.cli("delete", "--email", "nobody.at.all@example.invalid", "--execute")
    assert result.returncode == 3, result.stderr
    assert says(result.stderr, "matched no one in Gladly")
    assert "nobody.at.all" not in result.stderr + result.stdout


def test_phones_typed_five_ways_each_find_their_customer(world: ErasureWorld) -> None:
    chosen = deletable(world, with_phone=True)[-5:]
    assert len(chosen) == 5
    typed = []
    for n, cid in enumerate(chosen):
        e164 = str(world.customer(cid)["phones"][0]["normalized"])  # +1NXXNXXXXXX
        area, exchange, line = e164[2:5], e164[5:8], e164[8:]
        typed.append(
            [
                f"({area}) {exchange}-{line}",
                f"+1 {area}-{exchange}-{line}",
                f"{area}.{exchange}.{line}",
                f"1 {area} {exchange} {line}",
                f"{area}{exchange}{line}",
            ][n]
        )
    personal = [v for cid in chosen for v in world.personal(cid)]
    args = [a for phone in typed for a in ("--phone", phone)]
    result = world.cli("delete", *args, "--execute")
    assert result.returncode == 0, result.stderr
    assert all(world.customer(cid)["deleted"] for cid in chosen)
    assert traces(world.root, personal) == []


def test_an_unreadable_phone_is_refused_and_changes_nothing(world: ErasureWorld) -> None:
    before = AuditLog(world.root, key=KEY).events().num_rows
    result = world.cli("delete", "--phone", "555-01", "--execute")
    assert result.returncode == 2
    assert says(result.stderr, "--phone #1: the phone is not a phone number")
    assert AuditLog(world.root, key=KEY).events().num_rows == before


def test_a_rehearsal_is_never_counted_as_done(world: ErasureWorld, tmp_path: Path) -> None:
    cid = deletable(world)[20]
    email = _email(world, cid)
    rehearsal = world.cli("delete", "--email", email)
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert says(rehearsal.stderr, "REHEARSAL")
    assert world.customer(cid)["deleted"] is False
    pack = world.cli("audit", "report", "--subject-email", email, "--out", str(tmp_path / "pack"))
    summary = (tmp_path / "pack" / "summary.json").read_text()
    assert '"rehearsal"' in summary
    assert pack.returncode == 3, pack.stderr  # the request still needs doing
    done = world.cli("delete", "--email", email, "--execute")
    assert done.returncode == 0, done.stderr
    assert world.customer(cid)["deleted"] is True
    assert [e["outcome"] for e in world.outcomes() if e["target_id"] == cid] == ["deleted"]


def test_audit_verify_and_head_catch_a_dropped_tail(world: ErasureWorld, tmp_path: Path) -> None:
    head = world.cli("audit", "head")
    assert head.returncode == 0, head.stderr
    kept = head.stdout.strip()
    assert world.cli("audit", "verify", "--expect-head", kept).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(world.root / "_audit", copy / "_audit")
    newest = sorted((copy / "_audit" / "runs").glob("*.parquet"))[-1]
    newest.unlink()
    env_root = ["--root", str(copy)]
    assert world.cli("audit", "verify", *env_root).returncode == 0  # a shorter chain is a chain
    cut = world.cli("audit", "verify", *env_root, "--expect-head", kept)
    assert cut.returncode == 1
    assert says(cut.stderr, "the newest events were removed")


def test_audit_verify_with_no_audit_log_fails(world: ErasureWorld, tmp_path: Path) -> None:
    empty = world.cli("audit", "verify", "--root", str(tmp_path))
    assert empty.returncode == 1
    assert says(empty.stderr, "no audit log")
    missing = world.cli("audit", "verify", "--root", str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    assert says(missing.stderr, "does not exist")


def test_a_redacted_items_text_leaves_the_archive_too(world: ErasureWorld) -> None:
    glob = f"{world.root}/items/**/*.parquet"
    items = duckdb.execute(
        """
        SELECT item_id, customer_id, text FROM read_parquet($glob, hive_partitioning = true)
        WHERE content_type = 'CHAT_MESSAGE' AND length(text) > 30
          AND text NOT LIKE '%"%' AND text NOT LIKE '%\\%'
          AND text IN (SELECT text FROM read_parquet($glob, hive_partitioning = true)
                       GROUP BY text HAVING count(*) = 1)
        ORDER BY item_id
        """,
        {"glob": glob},
    ).fetchall()
    safe = set(deletable(world))  # other tests delete some of these; take one they never touch
    item_id, customer_id, text = next(row for row in items if row[1] not in safe)
    assert traces(world.root / "items", [text])  # the scan sees it before
    assert traces(world.root / "transcripts", [text])
    result = world.cli(
        "delete",
        "--customer-id",
        customer_id,
        "--scope",
        "items",
        "--item-id",
        item_id,
        "--execute",
    )
    assert result.returncode == 0, result.stderr
    assert [e["outcome"] for e in world.outcomes() if e["target_id"] == item_id] == ["redacted"]
    assert traces(world.root, [text]) == []
    again = world.cli(
        "delete",
        "--customer-id",
        customer_id,
        "--scope",
        "items",
        "--item-id",
        item_id,
        "--execute",
    )
    assert again.returncode == 0, again.stderr
    purged = [
        e
        for e in AuditLog(world.root, key=KEY).events().to_pylist()
        if e["step"] == "archive_purge" and e["target_id"] == item_id
    ]
    assert [e["outcome"] for e in purged] == ["ok"]  # erased from our copy once


def _metadata_events(world: ErasureWorld, request_id: str) -> list[dict[str, object]]:
    """The request's metadata as each run audited it (run id, the detail's metadata)."""
    return [
        {"run": e["run_id"], **json.loads(e["detail"])}
        for e in AuditLog(world.root, key=KEY).events().to_pylist()
        if e["step"] == "request_metadata" and e["policy_hash"] == request_id
    ]


def _request_id(world: ErasureWorld, cid: str) -> str:
    [request_id] = {str(e["policy_hash"]) for e in world.outcomes() if e["target_id"] == cid}
    return request_id


def test_a_ticket_export_is_a_request_whose_other_columns_are_only_keyed_hashes(
    world: ErasureWorld, tmp_path: Path
) -> None:
    by_email, by_id = deletable(world)[14], deletable(world)[15]
    extra = {
        "ticket": "INC-7731-QZX",
        "reason": "Art. 17 erasure via the privacy portal QZX",
        "requested_by": "privacy-desk-qzx",
        "notes": "wrote from jane.qzx.private@example.org, call +1 415 555 0199",
    }
    sheet = tmp_path / "export.csv"
    sheet.write_text(
        "Ticket,email,customer_id,Reason,Requested_By,Notes\n"
        f"{extra['ticket']},{_email(world, by_email)},,{extra['reason']},"
        f'{extra["requested_by"]},"{extra["notes"]}"\n'
        f"{extra['ticket']},,{by_id},{extra['reason']},{extra['requested_by']},\n"
    )
    rehearsal = world.cli("delete", "--csv", str(sheet))
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert says(rehearsal.stderr, "REHEARSAL")
    assert says(rehearsal.stderr, "audited as keyed hashes: ticket, reason, requested_by, notes")
    executed = world.cli("delete", "--csv", str(sheet), "--execute")
    assert executed.returncode == 0, executed.stderr
    assert world.customer(by_email)["deleted"] is True
    assert world.customer(by_id)["deleted"] is True

    request_id = _request_id(world, by_email)
    assert _request_id(world, by_id) == request_id
    hashed = {name: metadata_hash(KEY, name, [value]) for name, value in extra.items()}
    audited = _metadata_events(world, request_id)
    assert len(audited) == 2  # the rehearsal and the real run, each with the request's identity
    assert [a["metadata"] for a in audited] == [hashed, hashed]
    outputs = rehearsal.stdout + rehearsal.stderr + executed.stdout + executed.stderr
    assert not [v for v in extra.values() if v.casefold() in outputs.casefold()]
    assert traces(world.root, extra.values()) == []  # every file the runs wrote

    # Another note on a rerun is the same request: resumed, nothing done twice.
    sheet.write_text(sheet.read_text().replace("wrote from", "phoned from"))
    rerun = world.cli("delete", "--csv", str(sheet), "--execute")
    assert rerun.returncode == 0, rerun.stderr
    assert says(rerun.stderr, "finished by an earlier run")
    assert len(_metadata_events(world, request_id)) == 3
    per_target = world.final_outcomes_per_target()
    assert per_target[(request_id, by_email)] == per_target[(request_id, by_id)] == 1


def test_keep_reason_audits_the_reason_as_given_and_refuses_one_with_an_email(
    world: ErasureWorld, tmp_path: Path
) -> None:
    cid = deletable(world)[16]
    email = _email(world, cid)
    reason, ticket = "DSR-8812 erasure QZY", "INC-8812-QZY"
    refused_sheet = tmp_path / "refused.csv"
    refused_sheet.write_text(
        f"email,reason,ticket\n{email},{reason},{ticket}\n"
        f"{email},forwarded by jane.qzy.private@example.org,{ticket}\n"
    )
    before = AuditLog(world.root, key=KEY).events().num_rows
    refused = world.cli("delete", "--csv", str(refused_sheet), "--keep-reason", "--execute")
    assert refused.returncode == 2
    assert says(refused.stderr, "refused.csv row 3: the reason cannot be kept as given")
    assert "jane.qzy" not in refused.stderr + refused.stdout
    assert AuditLog(world.root, key=KEY).events().num_rows == before
    assert world.customer(cid)["deleted"] is False

    sheet = tmp_path / "kept.csv"
    sheet.write_text(f"email,reason,ticket\n{email},{reason},{ticket}\n")
    result = world.cli("delete", "--csv", str(sheet), "--keep-reason", "--execute")
    assert result.returncode == 0, result.stderr
    assert says(result.stderr, "audited as given: reason")
    assert world.customer(cid)["deleted"] is True
    [audited] = _metadata_events(world, _request_id(world, cid))
    assert audited["metadata"] == {
        "reason": reason,
        "ticket": metadata_hash(KEY, "ticket", [ticket]),
    }
    assert traces(world.root, [reason])  # kept, as asked
    assert traces(world.root, [ticket, "jane.qzy"]) == []
