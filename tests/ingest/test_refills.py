"""The refill watch against a sandbox: which profile has a watched detail back, and the likely
source named (a lookup adaptor on the same profile, a new contact, or unknown)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from erasure.unlink import run_unlink
from erasure.unlink_request import UnlinkInputError, parse_unlink
from gladly_archive import Archive
from gladly_archive.refill_watch import read_watches
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.enrich import enrich_archive
from ingest.exporting import run_export
from ingest.refills import LOOKUP_ADAPTOR, NEW_CONTACT, UNKNOWN, Refill, match_profiles
from tests._policies import NOW

pytestmark = pytest.mark.integration
KEY = b"refill-test-key"


@dataclass
class World:
    sb: Sandbox
    client: GladlyClient
    archive: Archive

    def record(self, cid: str) -> dict[str, Any]:
        record = self.sb.org.raw_customer(cid)
        assert record is not None
        return record

    def customers(self, *, mapped: bool) -> list[str]:
        return [
            cid
            for cid in self.sb.org.customer_ids()
            if not self.record(cid)["deleted"]
            and self.record(cid).get("emails")
            and bool(self.record(cid).get("externalCustomerIds")) == mapped
        ]

    def unlink(self, customer: str, **detail: str) -> str:
        request = parse_unlink(customer=customer, **detail)
        report = run_unlink(
            request,
            root=str(self.archive.root),
            client=self.client,
            key=KEY,
            actor="t",
            dry_run=False,
        )
        assert report.done, report.note
        return report.watch_id

    def matched(self, *customer_ids: str) -> list[Refill]:
        profiles = [self.client.customers.get(c) for c in customer_ids]
        return match_profiles(read_watches(self.archive), profiles, KEY)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("refills") / "archive"
    with (
        Sandbox(
            seed=23, customers=14, now=NOW, frozen_clock=True, rate_limit_per_second=None
        ) as sb,
        GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client,
    ):
        archive = Archive.open(root)
        assert run_export(client, archive, now=NOW).failed == []
        yield World(sb, client, archive)


def test_enrich_reports_a_lookup_adaptor_refill_on_the_same_profile(world: World) -> None:
    cid = world.customers(mapped=True)[0]
    world.sb.refill(cid, email="second@refill.example")
    watch = world.unlink(cid, email="second@refill.example")
    assert world.matched(cid) == []  # gone, so nothing to report yet
    world.sb.refill(cid, email="Second@Refill.example")
    report = enrich_archive(
        world.client, world.archive, candidates=lambda: [cid], audit_key=KEY, now=NOW
    )
    assert report.refilled == [Refill(cid, "email", watch, cid, LOOKUP_ADAPTOR)]
    assert "adaptor's mapping" in report.refilled[0].explanation
    without_key = enrich_archive(world.client, world.archive, candidates=lambda: [cid], now=NOW)
    assert without_key.refilled == []


def test_a_new_profile_with_the_phone_is_a_new_contact(world: World) -> None:
    cid = world.customers(mapped=False)[0]
    world.sb.refill(cid, phone="+12135550123")
    watch = world.unlink(cid, phone="213.555.0123")
    world.sb.advance(minutes=5)
    fresh = world.sb.org.create_customer({"phones": [{"original": "2135550123", "type": "MOBILE"}]})
    assert world.matched(fresh, cid) == [Refill(fresh, "phone", watch, cid, NEW_CONTACT)]


def test_an_older_other_profile_with_the_email_is_of_unknown_source(world: World) -> None:
    cid, other = world.customers(mapped=False)[1:3]
    world.sb.refill(cid, email="shared@refill.example")
    watch = world.unlink(cid, email="shared@refill.example")
    world.sb.refill(other, email="shared@refill.example")
    assert world.matched(other) == [Refill(other, "email", watch, cid, UNKNOWN)]


def test_a_legacy_external_id_is_unlinked_and_its_refill_found(world: World) -> None:
    cid = world.customers(mapped=False)[3]
    world.sb.org.update_customer(cid, {"externalCustomerId": "legacy-7781"})
    before = world.record(cid)
    watch = world.unlink(cid, external_id="legacy-7781")
    after = world.record(cid)
    assert "externalCustomerId" not in after
    assert (after["emails"], after["phones"]) == (before["emails"], before["phones"])
    world.sb.refill(cid, external_id="legacy-7781")
    assert world.matched(cid) == [Refill(cid, "external_id", watch, cid, LOOKUP_ADAPTOR)]


def test_an_adaptor_mapped_external_id_is_refused_and_nothing_changes(world: World) -> None:
    cid = world.customers(mapped=True)[1]
    before = world.record(cid)
    mapped = next(iter(before["externalCustomerIds"].values()))
    with pytest.raises(UnlinkInputError, match="only as a lookup adaptor"):
        world.unlink(cid, external_id=mapped)
    assert world.record(cid) == before


def test_the_watch_compares_gladly_s_clock(world: World) -> None:
    # The unlink's moment is the profile's updatedAt read back: Gladly's clock, which the
    # export jobs' times are on too (the sandbox's is frozen at NOW, far from ours).
    for watch in read_watches(world.archive):
        assert abs(watch.unlinked_at - NOW) < timedelta(days=1)
