"""Gladly-style ids and timestamps, generated deterministically from a seeded RNG."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime

# Gladly's examples mix fraction lengths: none, ".07", ".000", ".07272933". So do we, so that
# clients are exercised on all of them.
FRACTION_DIGITS = (0, 1, 2, 3, 3, 3, 5, 6, 8)


def make_id(rng: random.Random) -> str:
    """A 22-character URL-safe base64 id, like `OOrlNMXeS72gs_WEX2TtMg`."""
    return base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()[:22]


def format_timestamp(when: datetime, digits: int = 3) -> str:
    """RFC 3339 UTC with exactly `digits` fraction digits (0 = none), `Z` suffix."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return base + "Z"
    micro = f"{when.microsecond:06d}"
    fraction = micro[:digits] if digits <= 6 else micro + "7" * (digits - 6)
    return f"{base}.{fraction}Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with any fraction length into an aware UTC datetime."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
