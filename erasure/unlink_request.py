"""An unlink request as an admin gives it: which customer, which one detail, and its identity."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from erasure.request import Identifier
from gladly_archive.keyed import IdentifierError, normalise_email, normalise_phone
from gladly_client.models import Customer, CustomerEmail, CustomerPhone

__all__ = [
    "UnlinkInputError",
    "UnlinkRequest",
    "detail_on",
    "in_adaptor_map",
    "kept_emails",
    "kept_phones",
    "other_details",
    "parse_unlink",
    "unlink_request_hash",
]

DetailKind = Literal["email", "phone", "external_id"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GLADLY_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
# An external id is the system of record's key: printable, no spaces, at most 200 characters.
_EXTERNAL_ID = re.compile(r"^[!-~]{1,200}$")
_OPTIONS = {"email": "--email", "phone": "--phone", "external_id": "--external-id"}


class UnlinkInputError(ValueError):
    """The request cannot be carried out as given; one line: what, where, how to fix (never
    the value). Nothing was changed."""


@dataclass(frozen=True)
class UnlinkRequest:
    """Whose profile (an id, or an email or phone that finds it) loses which one detail."""

    customer: Identifier
    kind: DetailKind
    detail: str = field(repr=False)  # normalised: email case-folded, phone E.164, id trimmed

    @property
    def option(self) -> str:
        """The option that named the detail (--email, --phone, --external-id)."""
        return _OPTIONS[self.kind]


def _customer(value: str, region: str | None) -> Identifier:
    """--customer read as an email (has @), a Gladly id, or else a phone number."""
    text = value.strip()
    if not text:
        raise UnlinkInputError("--customer is empty: give the customer's id, email or phone")
    if "@" in text:
        if not _EMAIL.match(text):
            raise UnlinkInputError("--customer: not an email address (name@domain.tld)")
        return Identifier("email", normalise_email(text), "--customer")
    if _GLADLY_ID.match(text) and not text.lstrip("+").isdigit():
        return Identifier("customer_id", text, "--customer")
    try:
        return Identifier("phone", normalise_phone(text, region), "--customer")
    except IdentifierError as exc:
        raise UnlinkInputError(
            f"--customer: neither a Gladly id, an email nor a phone ({exc})"
        ) from None


def _detail(kind: DetailKind, value: str, region: str | None) -> str:
    text = value.strip()
    option = _OPTIONS[kind]
    if not text:
        raise UnlinkInputError(f"{option} is empty: give the detail to remove from the profile")
    if kind == "email":
        if not _EMAIL.match(text):
            raise UnlinkInputError(f"{option}: not an email address (name@domain.tld)")
        return normalise_email(text)
    if kind == "phone":
        try:
            return normalise_phone(text, region)
        except IdentifierError as exc:
            raise UnlinkInputError(f"{option}: {exc}") from None
    if not _EXTERNAL_ID.match(text):
        raise UnlinkInputError(
            f"{option}: an external id is 1-200 visible characters without spaces"
        )
    return text


def parse_unlink(
    *,
    customer: str | None,
    email: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    region: str | None = None,
) -> UnlinkRequest:
    """Check the request whole, before any call; UnlinkInputError says what is wrong."""
    if customer is None:
        raise UnlinkInputError("--customer is required: the customer's id, email or phone")
    options: tuple[tuple[DetailKind, str | None], ...] = (
        ("email", email),
        ("phone", phone),
        ("external_id", external_id),
    )
    given = [(kind, value) for kind, value in options if value is not None]
    if len(given) != 1:
        raise UnlinkInputError(
            "name exactly one detail to unlink: --email, --phone or --external-id "
            f"({len(given)} given)"
        )
    kind, value = given[0]
    return UnlinkRequest(_customer(customer, region), kind, _detail(kind, value, region))


def unlink_request_hash(request: UnlinkRequest, key: bytes) -> str:
    """The request's stable identity: a keyed hash of whose profile (as named) and which
    detail (normalised). A rerun, or a retry after a crash, is the same request and resumes."""
    content = {
        "customer": [request.customer.kind, request.customer.value],
        "kind": request.kind,
        "detail": request.detail,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, b"unlink request\n" + text.encode(), hashlib.sha256).hexdigest()


# -- the detail on a live profile (one predicate per kind, so "present" and "removed" agree) --


def _email_is(entry: CustomerEmail, detail: str) -> bool:
    forms = (entry.original, entry.normalized or "")
    return detail in {normalise_email(f) for f in forms if f.strip()}


def _phone_is(entry: CustomerPhone, detail: str) -> bool:
    forms = [entry.normalized or ""]
    if entry.original.strip():
        forms.append(normalise_phone(entry.original, entry.region_code, strict=False))
    return detail in {normalise_phone(f, strict=False) for f in forms if f.strip()}


def detail_on(request: UnlinkRequest, customer: Customer) -> bool:
    """Whether the detail is on the profile (an email or phone in any of its forms; the legacy
    externalCustomerId as given)."""
    if request.kind == "email":
        return any(_email_is(e, request.detail) for e in customer.emails)
    if request.kind == "phone":
        return any(_phone_is(p, request.detail) for p in customer.phones)
    return (customer.external_customer_id or "").strip() == request.detail


def in_adaptor_map(request: UnlinkRequest, customer: Customer) -> bool:
    """Whether the external id is one a newer adaptor set (externalCustomerIds)."""
    values = {v.strip() for v in customer.external_customer_ids.values()}
    return request.kind == "external_id" and request.detail in values


def kept_emails(request: UnlinkRequest, customer: Customer) -> list[CustomerEmail]:
    """The profile's emails but the detail, each with all its fields as read."""
    if request.kind != "email":
        return list(customer.emails)
    return [e for e in customer.emails if not _email_is(e, request.detail)]


def kept_phones(request: UnlinkRequest, customer: Customer) -> list[CustomerPhone]:
    """The profile's phones but the detail, each with all its fields as read."""
    if request.kind != "phone":
        return list(customer.phones)
    return [p for p in customer.phones if not _phone_is(p, request.detail)]


def other_details(request: UnlinkRequest, customer: Customer) -> tuple[Any, ...]:
    """Every detail but the one unlinked, as compared before and after the PATCH."""
    external = None if request.kind == "external_id" else customer.external_customer_id
    return (
        tuple(kept_emails(request, customer)),
        tuple(kept_phones(request, customer)),
        external,
        tuple(sorted(customer.external_customer_ids.items())),
    )
