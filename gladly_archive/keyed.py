"""Keyed hashes of emails and phones, and the secret key behind every one we store."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Literal

__all__ = ["ENV_AUDIT_KEY", "audit_key", "keyed_hash", "normalise", "optional_audit_key"]

ENV_AUDIT_KEY = "GLADLY_AUDIT_KEY"


def normalise(value: str, kind: Literal["email", "phone"]) -> str:
    """Email: trimmed and lower-cased; phone: only '+' and digits kept."""
    if kind == "email":
        return value.strip().lower()
    return "".join(ch for ch in value if ch.isdigit() or ch == "+")


def keyed_hash(value: str, *, kind: Literal["email", "phone"], key: bytes) -> str:
    """HMAC-SHA256 hex of the normalised email or phone, so holds never store it in clear."""
    if not key:
        raise ValueError("the audit key must not be empty")
    return hmac.new(key, normalise(value, kind).encode("utf-8"), hashlib.sha256).hexdigest()


def audit_key(*, required: bool = True, env: Mapping[str, str] | None = None) -> bytes:
    """The secret behind every keyed hash (holds, audit subjects, tombstones)."""
    key = (env if env is not None else os.environ).get(ENV_AUDIT_KEY, "")
    if not key and not required:
        return b"no-holds"
    if not key:
        raise ValueError(
            f"{ENV_AUDIT_KEY} is not set: emails and phones are kept only as keyed hashes "
            "(holds, audit log, tombstones), so the key is needed; set it in the environment "
            "(the same value every run, kept like a password)"
        )
    return key.encode()


def optional_audit_key() -> bytes | None:
    """The audit key when it is set (checks that only add evidence run without it)."""
    key = os.environ.get(ENV_AUDIT_KEY, "")
    return key.encode() if key else None
