"""The refill watch through the command line: a detail `unlink` removed that a lookup adaptor
fills back in is reported by the next export (exit 3, the customer, the likely source), and
an export that brings the customer back without it reports nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gladly_archive import Archive
from ingest.refills import LOOKUP_ADAPTOR, read_refills
from tests._console import says
from tests._scan import traces
from tests.erasure._erasure_world import KEY, ErasureWorld, erasure_world

pytestmark = pytest.mark.integration


class NarrowWorld(ErasureWorld):
    """The CLI on a 40-column terminal."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "COLUMNS": "40"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErasureWorld]:
    with erasure_world(tmp_path_factory.mktemp("refill"), customers=10, seed=7) as w:
        yield NarrowWorld(w.sandbox, w.root, w.base_url)


def _adaptor_linked(world: ErasureWorld) -> list[str]:
    """Live customers with an email whose profile a lookup adaptor links (an external id)."""
    out = []
    for cid in world.sandbox.org.customer_ids():
        record: dict[str, Any] = world.customer(cid)
        linked = record.get("externalCustomerId") or record.get("externalCustomerIds")
        if not record["deleted"] and record.get("emails") and linked:
            out.append(cid)
    return out


def _unlink_second_email(world: ErasureWorld, cid: str, address: str) -> None:
    world.sandbox.refill(cid, email=address)  # a second email, so the first one stays
    result = world.cli("unlink", "--customer", cid, "--email", address, "--execute")
    assert result.returncode == 0, result.stderr
    emails = [e["normalized"] for e in world.customer(cid)["emails"]]
    assert address not in emails


def test_an_export_that_brings_the_customer_back_without_the_detail_reports_nothing(
    world: ErasureWorld,
) -> None:
    cid = _adaptor_linked(world)[0]
    _unlink_second_email(world, cid, "gone.for.good@example.org")
    # The person writes in again; the adaptor fills in something else, not the detail.
    world.sandbox.refill(cid, phone="+12135550199", contact=True)
    world.sandbox.advance(days=1)
    result = world.cli("export")
    assert result.returncode == 0, result.stderr
    assert "REFILLED" not in result.stderr
    # The customer's row in that export is there, so the check had something to look at.
    rows = Archive(world.root).dataset("customers").to_table().to_pylist()
    assert sum(1 for r in rows if r["customer_id"] == cid) >= 2
    assert read_refills(Archive(world.root), KEY) == []


def test_a_lookup_adaptor_refill_is_reported_by_the_next_export(world: ErasureWorld) -> None:
    cid = _adaptor_linked(world)[1]
    address = "comes.back@example.org"
    _unlink_second_email(world, cid, address)
    world.sandbox.refill(cid, email=address.upper(), contact=True)
    assert address in [e["normalized"] for e in world.customer(cid)["emails"]]
    world.sandbox.advance(days=1)
    result = world.cli("export")
    assert result.returncode == 3, result.stderr
    assert says(result.stderr, f"REFILLED customer {cid}")
    assert says(result.stderr, "a lookup adaptor refills it")
    assert address not in result.stderr.lower()
    assert address not in result.stdout.lower()
    [found] = read_refills(Archive(world.root), KEY)
    assert (found.customer_id, found.kind, found.source) == (cid, "email", LOOKUP_ADAPTOR)
    # What the watch and the audit log hold of it are keyed hashes only.
    assert traces(world.root / "_audit", [address]) == []
    assert traces(world.root / "refill_watch", [address]) == []


def test_a_new_profile_an_export_brings_with_the_phone_is_a_new_contact(
    world: ErasureWorld,
) -> None:
    cid = _adaptor_linked(world)[2]
    world.sandbox.refill(cid, phone="+12135550166")
    result = world.cli("unlink", "--customer", cid, "--phone", "213-555-0166", "--execute")
    assert result.returncode == 0, result.stderr
    world.sandbox.advance(minutes=10)
    # The person writes in from that number as someone Gladly does not know: a new profile.
    fresh = world.sandbox.org.create_customer({"phones": [{"original": "+12135550166"}]})
    world.sandbox.refill(fresh, email="new.contact@example.org", contact=True)
    world.sandbox.advance(days=1)
    exported = world.cli("export")
    assert exported.returncode == 3, exported.stderr
    assert says(exported.stderr, f"REFILLED customer {fresh}")
    assert says(exported.stderr, f"unlinked from {cid}")
    assert says(exported.stderr, "a new contact brought it back")
    assert "2135550166" not in exported.stderr.replace("-", "")


def test_enrich_reports_a_refilled_detail_on_the_profiles_it_fetches(world: ErasureWorld) -> None:
    cid = _adaptor_linked(world)[3]
    address = "enrich.finds@example.org"
    _unlink_second_email(world, cid, address)
    world.sandbox.refill(cid, email=address)  # no contact: no export would carry it
    result = world.cli("enrich", "--all-profiles")
    assert result.returncode == 3, result.stderr
    assert says(result.stderr, f"REFILLED customer {cid}")
    assert says(result.stderr, "a lookup adaptor refills it")
    assert address not in result.stderr.lower()
