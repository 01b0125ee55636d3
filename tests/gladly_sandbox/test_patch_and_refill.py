"""PATCH customer as the spec says (lists replaced whole, what it may not set), and the control
route through which a lookup adaptor refills a detail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from gladly_sandbox import Sandbox

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(
        seed=11, customers=30, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as s:
        yield s


def _api(sb: Sandbox, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(
        method, f"{sb.base_url}/api/v1{path}", auth=(sb.user, sb.api_token), timeout=10, **kw
    )


def _customer(sb: Sandbox, *, mapped: bool | None = None, legacy: bool | None = None) -> str:
    for cid in sb.org.customer_ids():
        record = sb.org.raw_customer(cid) or {}
        if record.get("deleted") or not record.get("emails"):
            continue
        if mapped is not None and bool(record.get("externalCustomerIds")) != mapped:
            continue
        if legacy is not None and bool(record.get("externalCustomerId")) != legacy:
            continue
        return cid
    raise AssertionError("no such customer in the seeded org")


def test_patch_replaces_emails_whole_and_leaves_the_rest(sb: Sandbox) -> None:
    cid = _customer(sb)
    before = _api(sb, "GET", f"/customer-profiles/{cid}").json()
    keep = {"original": "Kept@Example.org", "primary": True}
    assert (
        _api(sb, "PATCH", f"/customer-profiles/{cid}", json={"emails": [keep]}).status_code == 204
    )
    after = _api(sb, "GET", f"/customer-profiles/{cid}").json()
    assert after["emails"] == [
        {"original": "Kept@Example.org", "normalized": "kept@example.org", "primary": True}
    ]
    for name in ("phones", "name", "address", "customAttributes", "externalCustomerIds"):
        assert after.get(name) == before.get(name)


def test_patch_does_not_set_external_customer_ids(sb: Sandbox) -> None:
    cid = _customer(sb, mapped=True)
    before = _api(sb, "GET", f"/customer-profiles/{cid}").json()["externalCustomerIds"]
    body = {"externalCustomerIds": {"other-app": "999"}}
    assert _api(sb, "PATCH", f"/customer-profiles/{cid}", json=body).status_code == 204
    assert _api(sb, "GET", f"/customer-profiles/{cid}").json()["externalCustomerIds"] == before


def test_external_customer_id_cannot_be_set_on_an_adaptor_mapped_profile(sb: Sandbox) -> None:
    cid = _customer(sb, mapped=True)
    answer = _api(sb, "PATCH", f"/customer-profiles/{cid}", json={"externalCustomerId": "x-1"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["attr"] == "externalCustomerId"
    assert "externalCustomerId" not in _api(sb, "GET", f"/customer-profiles/{cid}").json()


def test_a_legacy_external_id_is_removed_with_null_and_never_set_blank(sb: Sandbox) -> None:
    cid = _customer(sb, legacy=True)
    blank = _api(sb, "PATCH", f"/customer-profiles/{cid}", json={"externalCustomerId": " "})
    assert blank.status_code == 400
    assert "externalCustomerId" in _api(sb, "GET", f"/customer-profiles/{cid}").json()
    cleared = _api(sb, "PATCH", f"/customer-profiles/{cid}", json={"externalCustomerId": None})
    assert cleared.status_code == 204
    assert "externalCustomerId" not in _api(sb, "GET", f"/customer-profiles/{cid}").json()


def test_refill_route_adds_the_detail_back_and_the_person_writes_in(sb: Sandbox) -> None:
    cid = _customer(sb)
    conversations = len(sb.org.conversation_ids(cid))
    profile = sb.refill(cid, email="Back.Again@Example.com", contact=True)
    assert "back.again@example.com" in [e["normalized"] for e in profile["emails"]]
    assert [
        c["id"]
        for c in _api(
            sb, "GET", "/customer-profiles", params={"email": "back.again@example.com"}
        ).json()
    ] == [cid]
    assert len(sb.org.conversation_ids(cid)) == conversations + 1
    # Refilling what the profile has changes nothing.
    again = sb.refill(cid, email="back.again@example.com")
    assert [e["normalized"] for e in again["emails"]] == [
        e["normalized"] for e in profile["emails"]
    ]
    phone = sb.refill(cid, phone="(213) 555-0177")
    assert "+12135550177" in [p["normalized"] for p in phone["phones"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"email": "a@example.com", "phone": "+12135550100"}, 400),
        ({"email": ""}, 400),
        ({"email": "no-at-sign"}, 400),
        ({"nickname": "x"}, 400),
        ({"email": "a@example.com", "contact": "yes"}, 400),
    ],
)
def test_refill_route_refuses_what_it_cannot_do(
    sb: Sandbox, body: dict[str, Any], status: int
) -> None:
    cid = _customer(sb)
    before = sb.org.raw_customer(cid)
    url = f"{sb.base_url}/_sandbox/customers/{cid}/refill"
    answer = requests.post(url, json=body, timeout=10)
    assert answer.status_code == status
    assert answer.json()["errors"][0]["detail"]
    assert sb.org.raw_customer(cid) == before


def test_refill_route_on_an_unknown_customer_is_404_and_get_is_405(sb: Sandbox) -> None:
    url = f"{sb.base_url}/_sandbox/customers/NoSuchCustomer000000/refill"
    assert requests.post(url, json={"email": "a@example.com"}, timeout=10).status_code == 404
    assert requests.get(url, timeout=10).status_code == 405
