"""The audit event's caller-supplied fields and the privacy guard that screens every value."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from audit_log.files import AUDIT_EVENTS, AuditError

__all__ = [
    "CALLER_FIELDS",
    "FILLED_FIELDS",
    "MAX_TEXT",
    "PHASES",
    "TARGET_TYPES",
    "check_fields",
    "check_value",
]

FILLED_FIELDS = ("run_id", "seq", "time", "prev_hash", "hash")
CALLER_FIELDS = tuple(name for name in AUDIT_EVENTS.names if name not in FILLED_FIELDS)
TARGET_TYPES = ("archive", "conversation", "customer", "item", "run")
PHASES = ("intent", "result")
MAX_TEXT = 2000

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # also a file name
_OPAQUE_ID = re.compile(r"[A-Za-z0-9_.:=-]{1,128}")  # Gladly ids are base64url
_HEX = {
    "subject_hash": re.compile(r"[0-9a-f]{64}"),
    # At least 32 digits, so no phone number can pass as a "hash".
    "policy_hash": re.compile(r"[0-9a-f]{32,128}"),
    "plan_hash": re.compile(r"[0-9a-f]{32,128}"),
}
_ENUMS = {"target_type": TARGET_TYPES, "phase": PHASES}
_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# 7+ digits with optional +, spaces, dashes, parentheses; not inside a longer word or decimal,
# so hex digests, base64 ids and float fractions are not mistaken for phone numbers.
_PHONE = re.compile(r"(?<![\w+])(?<!\d\.)\+?\(?\d[\d\s()-]{5,}\d(?!\w)(?!\.\d)")
# ISO dates and timestamps look like "2025-03-01" (8 digits and dashes): not phones.
_ISO_TIME = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)


def _refuse(name: str, why: str) -> AuditError:
    # Never echo the value: the point of refusing is that it may be personal data.
    return AuditError(f"audit field {name!r} refused: {why} (the value is not shown)")


def _looks_like_phone(text: str, *, whole: bool) -> bool:
    if whole:
        match = _PHONE.fullmatch(text)
        return match is not None and sum(c.isdigit() for c in text) >= 7
    stripped = _ISO_TIME.sub("_", text)
    return any(sum(c.isdigit() for c in m.group()) >= 7 for m in _PHONE.finditer(stripped))


def check_value(name: str, value: Any) -> Any:
    """The value as stored, or AuditError; strings are screened for personal data."""
    if value is None:
        return None
    if name in ("http_status", "attempt"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(name, f"must be an int, not {type(value).__name__}")
        if not -(2**31) <= value < 2**31:
            raise _refuse(name, "is outside the int32 range")
        return value
    if name == "duration_ms":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(name, f"must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise _refuse(name, "must be a finite number")
        return float(value)  # hashed as a float, exactly as Parquet gives it back
    if not isinstance(value, str):
        raise _refuse(name, f"must be a str, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise _refuse(name, f"is {len(value)} characters long, over {MAX_TEXT}: no transcript text")
    if name in _HEX:
        if not _HEX[name].fullmatch(value):
            raise _refuse(name, "must be a lowercase hex digest (hash emails/phones with HMAC)")
        return value
    opaque = name in ("run_id", "target_id", "customer_id")
    if _EMAIL.search(value):
        raise _refuse(name, "looks like an email address; audit events hold no personal data")
    if _looks_like_phone(value, whole=opaque):
        raise _refuse(name, "looks like a phone number; audit events hold no personal data")
    if name == "run_id" and not _RUN_ID.fullmatch(value):
        raise _refuse(name, "must be 1-128 letters, digits, '_', '.', '-' (it names a file)")
    if opaque and not _OPAQUE_ID.fullmatch(value):
        raise _refuse(name, "must be an opaque id: 1-128 letters, digits and _ . : = -")
    if name in _ENUMS and value not in _ENUMS[name]:
        raise _refuse(name, f"must be one of {', '.join(_ENUMS[name])}")
    return value


def check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate caller-supplied event fields: known names, types, and no personal data."""
    clean = {}
    for name, value in fields.items():
        if name in FILLED_FIELDS:
            raise AuditError(f"audit field {name!r} is filled in by the audit log, not the caller")
        if name not in CALLER_FIELDS:
            raise AuditError(
                f"unknown audit field {name!r}; valid fields: {', '.join(CALLER_FIELDS)}"
            )
        clean[name] = check_value(name, value)
    return clean
