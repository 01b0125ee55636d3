"""`gladly-pipeline unlink` judged by the sandbox's own record and a byte scan of the archive:
one detail goes, every other stays, rehearsals and bad input change nothing, a kill resumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from audit_log import AuditLog
from gladly_archive import Archive
from gladly_archive.refill_watch import read_watches
from tests._console import says
from tests._scan import traces
from tests.erasure._erasure_world import KEY, ErasureWorld, erasure_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErasureWorld]:
    with erasure_world(tmp_path_factory.mktemp("unlink"), customers=12, seed=5) as w:
        yield NarrowWorld(w.sandbox, w.root, w.base_url)


class NarrowWorld(ErasureWorld):
    """The CLI on a 40-column terminal."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "COLUMNS": "40"}


def _details(record: dict[str, Any]) -> dict[str, Any]:
    """Every contact detail of a sandbox record, as the sandbox keeps it."""
    return {
        "emails": record.get("emails") or [],
        "phones": record.get("phones") or [],
        "external": (record.get("externalCustomerId"), record.get("externalCustomerIds")),
        "name": record.get("name"),
        "address": record.get("address"),
        "attributes": record.get("customAttributes"),
    }


def _with(world: ErasureWorld, emails: int = 0, phones: int = 0) -> list[str]:
    """Live customers with at least these many emails and phones."""
    out = []
    for cid in world.sandbox.org.customer_ids():
        record = world.customer(cid)
        if record["deleted"] or record.get("merged_into"):
            continue
        if len(record.get("emails") or []) >= emails and len(record.get("phones") or []) >= phones:
            out.append(cid)
    return out


def _add_email(world: ErasureWorld, cid: str, address: str) -> None:
    """A second email on the profile, so one can go while another stays."""
    world.sandbox.refill(cid, email=address)


def _unlinks(world: ErasureWorld) -> list[dict[str, Any]]:
    events = AuditLog(world.root, key=KEY).events().to_pylist()
    return [e for e in events if e["policy_name"] == "unlink"]


def test_unlink_removes_only_that_email_and_keeps_every_other_detail(
    world: ErasureWorld,
) -> None:
    cid = _with(world, emails=1, phones=1)[0]
    _add_email(world, cid, "Second.Address@Example.NET")
    before = _details(world.customer(cid))
    personal = world.personal(cid)
    first = before["emails"][0]["original"]
    result = world.cli(
        "unlink", "--customer", cid, "--email", "second.address@example.net", "--execute"
    )
    assert result.returncode == 0, result.stderr
    assert says(result.stderr, "UNLINKED")
    after = _details(world.customer(cid))
    assert [e["normalized"] for e in after["emails"]] == [first.lower()]
    assert after["emails"] == before["emails"][:1]
    assert {k: v for k, v in after.items() if k != "emails"} == {
        k: v for k, v in before.items() if k != "emails"
    }
    watches = [w for w in read_watches(Archive(world.root)) if w.customer_id == cid]
    assert [w.kind for w in watches] == ["email"]
    # The address was never exported: no file under the archive root holds it, in any form.
    assert traces(world.root, ["second.address@example.net"]) == []
    # What unlink wrote (the audit log, the watch) holds none of the customer's details.
    assert traces(world.root / "_audit", personal) == []
    assert traces(world.root / "refill_watch", personal) == []
    outcomes = [
        e["outcome"] for e in _unlinks(world) if e["step"] == "outcome" and e["target_id"] == cid
    ]
    assert outcomes == ["unlinked"]


def test_a_rehearsal_changes_nothing_and_counts_as_nothing(world: ErasureWorld) -> None:
    cid = _with(world, phones=1)[1]
    before = _details(world.customer(cid))
    phone = before["phones"][0]["normalized"]
    result = world.cli("unlink", "--customer", cid, "--phone", phone)
    assert result.returncode == 0, result.stderr
    assert says(result.stderr, "REHEARSAL")
    assert _details(world.customer(cid)) == before
    assert not [w for w in read_watches(Archive(world.root)) if w.customer_id == cid]


def test_a_phone_as_people_type_it_by_the_customers_email(world: ErasureWorld) -> None:
    cid = _with(world, emails=1, phones=1)[2]
    before = _details(world.customer(cid))
    email = before["emails"][0]["original"]
    digits = before["phones"][0]["normalized"][2:]  # +1NXXNXXXXXX → national
    typed = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    result = world.cli("unlink", "--customer", email.upper(), "--phone", typed, "--execute")
    assert result.returncode == 0, result.stderr
    after = _details(world.customer(cid))
    assert after["phones"] == before["phones"][1:]
    phone = before["phones"][0]
    needles = [phone["normalized"], phone["original"], typed, email]
    assert traces(world.root / "_audit", needles) == []
    assert after["emails"] == before["emails"]
    # A rerun is the same request: finished, nothing called again.
    again = world.cli("unlink", "--customer", email, "--phone", typed, "--execute")
    assert again.returncode == 0, again.stderr
    assert says(again.stderr, "finished by an earlier run")


@pytest.mark.parametrize(
    ("args", "says_what"),
    [
        (["--customer", "{cid}"], "exactly one detail"),
        (
            ["--customer", "{cid}", "--email", "nobody-here@example.com", "--execute"],
            "not on customer",
        ),
        (
            ["--customer", "NeverExisted0000000000", "--email", "a@example.com", "--execute"],
            "no Gladly profile",
        ),
        (["--customer", "{cid}", "--email", "not-an-email", "--execute"], "not an email"),
        (
            ["--customer", "{cid}", "--email", "a@example.com", "--phone", "+12135550100"],
            "exactly one detail",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    world: ErasureWorld, args: list[str], says_what: str
) -> None:
    cid = _with(world, emails=1)[3]
    before = _details(world.customer(cid))
    events = len(AuditLog(world.root, key=KEY).events())
    result = world.cli("unlink", *[a.format(cid=cid) for a in args])
    assert result.returncode == 2, result.stderr
    assert says(result.stderr, says_what)
    assert "Traceback" not in result.stderr
    assert _details(world.customer(cid)) == before
    assert len(AuditLog(world.root, key=KEY).events()) == events


@pytest.mark.parametrize("kill_at", [3, 4, 7])
def test_a_kill_between_patch_and_record_is_finished_by_the_rerun(
    world: ErasureWorld, kill_at: int
) -> None:
    cid = _with(world, emails=1)[{3: 4, 4: 5, 7: 6}[kill_at]]
    address = f"kill{kill_at}@example.org"
    _add_email(world, cid, address)
    before = _details(world.customer(cid))
    killed = world.cli(
        "unlink", "--customer", cid, "--email", address, "--execute", kill_at=kill_at
    )
    assert killed.returncode < 0  # SIGKILLed
    rerun = world.cli("unlink", "--customer", cid, "--email", address, "--execute")
    assert rerun.returncode == 0, rerun.stderr
    after = _details(world.customer(cid))
    assert after["emails"] == [e for e in before["emails"] if e["normalized"] != address]
    finals = [
        e
        for e in _unlinks(world)
        if e["step"] == "outcome" and e["target_id"] == cid and e["outcome"] == "unlinked"
    ]
    assert len(finals) == 1
    intents = [
        e
        for e in _unlinks(world)
        if e["step"] == "unlink" and e["phase"] == "intent" and e["target_id"] == cid
    ]
    if kill_at == 3:  # killed before the PATCH was sent: the rerun sends it
        assert len(intents) == 2
        assert world.sandbox.stats()["by_route"]["PATCH /customer-profiles/{customerId}"]
    else:  # the PATCH landed: the rerun re-reads the profile and records it, sending nothing
        assert len(intents) == 1
        assert "recovered" in (finals[0]["detail"] or "")
    watches = [w for w in read_watches(Archive(world.root)) if w.customer_id == cid]
    assert len(watches) == 1
