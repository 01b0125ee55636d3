"""Customer profiles: the stored record, its JSON (API and export shapes), and request bodies."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gladly_sandbox.errors import ApiError

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Email(NamedTuple):
    """One email address of a profile."""

    original: str
    normalized: str
    primary: bool | None = None


class Phone(NamedTuple):
    """One phone number of a profile; `normalized` is E.164."""

    original: str
    normalized: str
    region: str = "US"
    type: str | None = None
    sms: str | None = None
    primary: bool | None = None
    extension: str | None = None


@dataclass(slots=True)
class Customer:
    """One customer profile as the organisation stores it."""

    id: str
    name: str
    address: str
    emails: list[Email]
    phones: list[Phone]
    attrs: dict[str, Any]
    created: int  # microseconds since the epoch
    updated: int
    image: str | None = None
    external_id: str | None = None
    external_ids: dict[str, str] | None = None
    # The address and number the customer wrote from, used when rendering their items; kept
    # apart from `emails` / `phones` so later profile edits don't rewrite history.
    contact_email: str = ""
    contact_phone: str = ""
    deleted: bool = False
    recontacted_as: str | None = None
    conversations: list[int] = field(default_factory=list)
    activities: list[int] = field(default_factory=list)


def normalize_email(original: str) -> str:
    """Gladly's normalized email form (ASSUMPTION: trimmed and lower-cased)."""
    return original.strip().lower()


def normalize_phone(original: str, region: str = "US") -> str | None:
    """E.164 form of a phone number as entered, or None when it can't be read.

    Only NANP national numbers are understood (ASSUMPTION: the sandbox has no numbering plans
    for other regions); anything starting with `+` must already be E.164 once punctuation goes.
    """
    text = original.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        candidate = "+" + digits
    elif region.upper() in ("US", "CA") and len(digits) == 10:
        candidate = "+1" + digits
    elif region.upper() in ("US", "CA") and len(digits) == 11 and digits.startswith("1"):
        candidate = "+" + digits
    else:
        return None
    return candidate if _E164.match(candidate) else None


# --- JSON ---


def customer_json(customer: Customer, created: str, updated: str) -> dict[str, Any]:
    """The customer object of `GET /customer-profiles/{id}` (a fresh copy every time)."""
    out: dict[str, Any] = {"id": customer.id, "name": customer.name}
    if customer.image is not None:
        out["image"] = customer.image
    out["address"] = customer.address
    out["emails"] = [_email_json(email) for email in customer.emails]
    out["phones"] = [_phone_json(phone) for phone in customer.phones]
    out["customAttributes"] = copy.deepcopy(customer.attrs)
    if customer.external_id is not None:
        out["externalCustomerId"] = customer.external_id
    if customer.external_ids is not None:
        out["externalCustomerIds"] = dict(customer.external_ids)
    out["createdAt"] = created
    out["updatedAt"] = updated
    return out


def customer_export_json(customer: Customer) -> dict[str, Any]:
    """The flattened `customers.jsonl` line: plain string lists for emails and phones."""
    out: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "address": customer.address,
        "emailAddresses": [email.original for email in customer.emails],
        "phoneNumbers": [phone.normalized for phone in customer.phones],
    }
    if customer.external_id is not None:
        out["externalCustomerId"] = customer.external_id
    if customer.external_ids is not None:
        out["externalCustomerIds"] = dict(customer.external_ids)
    return out


def _email_json(email: Email) -> dict[str, Any]:
    out: dict[str, Any] = {"original": email.original, "normalized": email.normalized}
    if email.primary is not None:
        out["primary"] = email.primary
    return out


def _phone_json(phone: Phone) -> dict[str, Any]:
    out: dict[str, Any] = {
        "original": phone.original,
        "normalized": phone.normalized,
        "regionCode": phone.region,
    }
    if phone.primary is not None:
        out["primary"] = phone.primary
    if phone.sms is not None:
        out["smsPreference"] = phone.sms
    if phone.type is not None:
        out["type"] = phone.type
    if phone.extension is not None:
        out["extension"] = phone.extension
    return out


# --- request bodies ---

_URL_SAFE_ID = re.compile(r"^[A-Za-z0-9._~-]{1,49}$")
_PROFILE_STRINGS = ("name", "image", "address", "externalCustomerId")


def parse_customer_id(value: Any) -> str:
    """A caller-chosen customer id: URL-safe and under 50 characters, else 400."""
    if not isinstance(value, str) or not _URL_SAFE_ID.match(value):
        raise ApiError(400, "invalid", "id must be URL safe and under 50 characters", attr="id")
    return value


def parse_profile(body: Any) -> dict[str, Any]:
    """The profile fields present in a create / update body, validated (unknown keys ignored).

    Returns Customer attribute names → new values. Errors are 400s naming the field.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", "request body must be a JSON object")
    fields: dict[str, Any] = {}
    for key in _PROFILE_STRINGS:
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise ApiError(400, "invalid", f"{key} must be a string", attr=key)
    for key, attr in (("name", "name"), ("image", "image"), ("address", "address")):
        if key in body:
            fields[attr] = body[key] if key == "image" else (body[key] or "")
    if "externalCustomerId" in body:
        fields["external_id"] = body["externalCustomerId"]
    if "externalCustomerIds" in body:
        ids = body["externalCustomerIds"]
        if ids is not None and not (
            isinstance(ids, dict) and all(isinstance(v, str) for v in ids.values())
        ):
            raise ApiError(
                400, "invalid", "externalCustomerIds must map strings", attr="externalCustomerIds"
            )
        fields["external_ids"] = dict(ids) if ids is not None else None
    if "customAttributes" in body:
        attrs = body["customAttributes"]
        if not isinstance(attrs, dict):
            raise ApiError(
                400, "invalid", "customAttributes must be an object", attr="customAttributes"
            )
        fields["attrs"] = copy.deepcopy(attrs)
    if "emails" in body:
        fields["emails"] = _parse_emails(body["emails"])
    if "phones" in body:
        fields["phones"] = _parse_phones(body["phones"])
    return fields


def _parse_emails(value: Any) -> list[Email]:
    if not isinstance(value, list):
        raise ApiError(400, "invalid", "emails must be a list", attr="emails")
    result = []
    for entry in value:
        original = entry.get("original") if isinstance(entry, dict) else None
        if not isinstance(original, str) or not original.strip():
            raise ApiError(400, "blank", "email original cannot be blank", attr="emails.original")
        if "@" not in original:
            raise ApiError(400, "invalid", "email address is invalid", attr="emails.original")
        primary = entry.get("primary")
        if primary is not None and not isinstance(primary, bool):
            raise ApiError(400, "invalid", "primary must be a boolean", attr="emails.primary")
        result.append(Email(original.strip(), normalize_email(original), primary))
    if sum(1 for email in result if email.primary) > 1:
        raise ApiError(400, "invalid", "at most one primary email", attr="emails.primary")
    return result


def _parse_phones(value: Any) -> list[Phone]:
    if not isinstance(value, list):
        raise ApiError(400, "invalid", "phones must be a list", attr="phones")
    result = []
    for entry in value:
        original = entry.get("original") if isinstance(entry, dict) else None
        if not isinstance(original, str) or not original.strip():
            raise ApiError(400, "blank", "phone original cannot be blank", attr="phones.original")
        assert isinstance(entry, dict)
        region = entry.get("regionCode") or "US"
        normalized = normalize_phone(original, str(region))
        if normalized is None:
            raise ApiError(400, "invalid", "phone number is invalid", attr="phones.original")
        kind = entry.get("type")
        if kind is not None and kind not in ("HOME", "MOBILE", "OFFICE"):
            raise ApiError(
                400, "invalid", "type must be HOME, MOBILE or OFFICE", attr="phones.type"
            )
        sms = entry.get("smsPreference")
        if sms is not None and sms not in ("ON", "OFF", "FORBIDDEN"):
            raise ApiError(
                400,
                "invalid",
                "smsPreference must be ON, OFF or FORBIDDEN",
                attr="phones.smsPreference",
            )
        primary = entry.get("primary")
        if primary is not None and not isinstance(primary, bool):
            raise ApiError(400, "invalid", "primary must be a boolean", attr="phones.primary")
        extension = entry.get("extension")
        if extension is not None and not isinstance(extension, str):
            raise ApiError(400, "invalid", "extension must be a string", attr="phones.extension")
        result.append(
            Phone(original.strip(), normalized, str(region), kind, sms, primary, extension)
        )
    return result


def patchable(fields: dict[str, Any], customer: Customer) -> dict[str, Any]:
    """What PATCH may change. `externalCustomerIds` is not in the PATCH schema (ignored, like
    any unknown key); `externalCustomerId` "cannot be set" on a profile of an adaptor installed
    after 2021-05-12 (ASSUMPTION: 400 invalid), and is removed with null (ASSUMPTION: Gladly
    documents no way; an empty string is refused as blank rather than stored)."""
    fields = {k: v for k, v in fields.items() if k != "external_ids"}
    if "external_id" in fields:
        value = fields["external_id"]
        attr = "externalCustomerId"
        if value is not None and not value.strip():
            raise ApiError(400, "blank", "externalCustomerId cannot be blank", attr=attr)
        if value is not None and customer.external_ids is not None:
            raise ApiError(
                400, "invalid", "externalCustomerId cannot be set on this profile", attr=attr
            )
    return fields
