"""Emails and phones as people type them, normalised; their keyed hashes; the key behind them."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Literal

import phonenumbers

from gladly_archive.settings import SettingError

__all__ = [
    "DEFAULT_REGION",
    "DETAIL_KINDS",
    "ENV_AUDIT_KEY",
    "ENV_DEFAULT_REGION",
    "DetailKind",
    "IdentifierError",
    "RegionSettingError",
    "audit_key",
    "default_region",
    "keyed_detail_hash",
    "keyed_hash",
    "normalise",
    "normalise_email",
    "normalise_phone",
    "optional_audit_key",
]

ENV_AUDIT_KEY = "GLADLY_AUDIT_KEY"
# Phone numbers typed without a country code are read as numbers of this region.
ENV_DEFAULT_REGION = "GLADLY_DEFAULT_REGION"
DEFAULT_REGION = "US"


class IdentifierError(ValueError):
    """An email or phone that cannot be read; the message never repeats the value."""


class RegionSettingError(SettingError, IdentifierError):
    """GLADLY_DEFAULT_REGION is not a region code: a setting to fix, not a phone to re-type."""


def default_region(env: Mapping[str, str] | None = None) -> str:
    """The region for phone numbers without a country code (GLADLY_DEFAULT_REGION, else US)."""
    region = (env if env is not None else os.environ).get(ENV_DEFAULT_REGION, "").strip().upper()
    if not region:
        return DEFAULT_REGION
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise RegionSettingError(
            f"{ENV_DEFAULT_REGION}={region!r} is not a region code; use two letters such as "
            "US, CA, GB or DE"
        )
    return region


def normalise_email(value: str) -> str:
    """An email as compared and hashed: trimmed and case-folded."""
    return value.strip().casefold()


def normalise_phone(value: str, region: str | None = None, *, strict: bool = True) -> str:
    """A phone number as compared and hashed: E.164 (+15550100000), read the way people type
    it — `(851) 555-0142`, `216.555.0137`, `1 219 555 0184`, `+1 476-555-0146` — with numbers
    lacking a country code taken as numbers of `region` (default: GLADLY_DEFAULT_REGION).

    `strict`: a number that cannot be read raises IdentifierError (input from a person);
    otherwise (a value Gladly stored) it falls back to its '+' and digits, never failing."""
    try:
        number = phonenumbers.parse(value, region or default_region())
        fit = phonenumbers.is_possible_number_with_reason(number)
    except phonenumbers.NumberParseException:
        fit = None
    if fit == phonenumbers.ValidationResult.IS_POSSIBLE:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not strict:
        return "".join(ch for ch in value if ch.isdigit() or ch == "+")
    raise IdentifierError(
        "not a phone number that can be read: give it whole, with its country code (a leading "
        f"+ and the code, e.g. +44 for the UK), or set {ENV_DEFAULT_REGION} to the region its "
        "national form belongs to"
    )


def normalise(value: str, kind: Literal["email", "phone"], *, strict: bool = False) -> str:
    """An email or phone as compared and hashed (see normalise_email, normalise_phone)."""
    if kind == "email":
        return normalise_email(value)
    return normalise_phone(value, strict=strict)


def keyed_hash(
    value: str, *, kind: Literal["email", "phone"], key: bytes, strict: bool = False
) -> str:
    """HMAC-SHA256 hex of the normalised email or phone, so holds never store it in clear.

    `strict` refuses a phone that cannot be read (a person's input) instead of hashing its
    digits (a value Gladly stored)."""
    if not key:
        raise ValueError("the audit key must not be empty")
    text = normalise(value, kind, strict=strict)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


# The details of a profile that can be unlinked and watched for a refill.
DetailKind = Literal["email", "phone", "external_id"]
DETAIL_KINDS: tuple[str, ...] = ("email", "phone", "external_id")


def keyed_detail_hash(value: str, *, kind: str, key: bytes, strict: bool = False) -> str:
    """HMAC-SHA256 hex of one profile detail: an email or phone exactly as `keyed_hash` (so it
    matches holds and tombstones), an external id trimmed, under its own label (an id that
    looks like a phone number never hashes like one)."""
    if kind in ("email", "phone"):
        return keyed_hash(value, kind=kind, key=key, strict=strict)  # type: ignore[arg-type]
    if kind != "external_id":
        raise ValueError(f"unknown detail kind {kind!r}; one of {', '.join(DETAIL_KINDS)}")
    if not key:
        raise ValueError("the audit key must not be empty")
    text = b"external id\n" + value.strip().encode("utf-8")
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def audit_key(*, required: bool = True, env: Mapping[str, str] | None = None) -> bytes:
    """The secret behind every keyed hash (holds, audit subjects, tombstones); SettingError when
    it is `required` and GLADLY_AUDIT_KEY is not set."""
    key = (env if env is not None else os.environ).get(ENV_AUDIT_KEY, "")
    if not key and not required:
        return b"no-holds"
    if not key:
        raise SettingError(
            f"{ENV_AUDIT_KEY} is not set: emails and phones are kept only as keyed hashes "
            "(holds, audit log, tombstones), so the key is needed; set it in the environment "
            "(the same value every run, kept like a password)"
        )
    return key.encode()


def optional_audit_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The audit key when it is set (checks that only add evidence run without it)."""
    key = (env if env is not None else os.environ).get(ENV_AUDIT_KEY, "")
    return key.encode() if key else None
