"""Detectors of payment card numbers, US SSNs and IBANs in text: where they are, never what.

Two stages. `CANDIDATE_PATTERNS` are RE2 patterns (pyarrow.compute's regex engine) that every
number a detector accepts matches as a substring: a whole text column is filtered with them
in Arrow, and only the few rows they select reach `find_numbers`, which validates in Python
with python-stdnum (Luhn, SSN rules, the IBAN checksum and per-country format).

What counts as a number, so that look-alikes (order numbers, tracking ids, phone numbers,
dates, long ids) are not reported:

* A card is 13-19 digits, unbroken, or in groups split by single spaces or single dashes (one
  kind per number) laid out as cards are printed (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4,
  4-4-4-1); it must pass Luhn and start with an issuer's prefix whose lengths include it
  (`ISSUERS`). A longer run of digits that merely contains a valid number is not a card; a
  grouped card may be followed by at most two short groups (an expiry, a CVV) but never by
  another 4-digit group.
* An SSN is written 3-2-4 with dashes or spaces (a bare 9-digit run is too often an order or
  an account number) and passes `stdnum.us.ssn` (no 000/666/9xx area, 00 group, 0000 serial,
  nor the numbers known to be published).
* An IBAN starts with a country code and two check digits, compact or in space-separated
  groups, and passes `stdnum.iban` (mod 97, the country's length and format).

Every number must stand apart: not glued to letters or digits, nor to `+ # $ @ _ / \\ - .`
that make it part of a phone number, a reference, an amount or an identifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

__all__ = [
    "CANDIDATE_PATTERNS",
    "ISSUERS",
    "KINDS",
    "Found",
    "candidate_pattern",
    "card_issuer",
    "find_numbers",
    "parse_kinds",
]

KINDS: tuple[str, ...] = ("card", "ssn", "iban")

# RE2 supersets of what the validators accept (no look-around: RE2 has none).
CANDIDATE_PATTERNS: dict[str, str] = {
    "card": r"[0-9](?:[ -]?[0-9]){12,18}",
    "ssn": r"[0-9]{3}[ -][0-9]{2}[ -][0-9]{4}",
    "iban": r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}",
}

# Issuer identification number ranges (first digits) and the lengths each issuer issues, from
# the networks' published tables (as summarised in ISO/IEC 7812 registries, 2024). Prefix
# ranges are inclusive and compared on the same number of leading digits.
_ANY_LONG = frozenset({16, 17, 18, 19})
ISSUERS: tuple[tuple[str, tuple[tuple[int, int], ...], frozenset[int]], ...] = (
    ("visa", ((4, 4),), frozenset({13, 16, 19})),
    ("mastercard", ((51, 55), (2221, 2720)), frozenset({16})),
    ("amex", ((34, 34), (37, 37)), frozenset({15})),
    ("discover", ((6011, 6011), (644, 649), (65, 65), (622126, 622925)), _ANY_LONG),
    ("jcb", ((3528, 3589),), _ANY_LONG),
    ("diners", ((300, 305), (3095, 3095), (36, 36), (38, 39)), frozenset(range(14, 20))),
    ("unionpay", ((62, 62),), _ANY_LONG),
    (
        "maestro",
        ((5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759),
         (6761, 6763)),
        frozenset(range(13, 20)),
    ),
    ("mir", ((2200, 2204),), _ANY_LONG),
)  # fmt: skip

# Group lengths of a card as printed: Visa/Mastercard/Discover/JCB/UnionPay (16, 19),
# Amex (15), Diners (14), old Visa (13).
_LAYOUTS: tuple[tuple[int, ...], ...] = (
    (4, 4, 4, 4, 3),
    (4, 4, 4, 4),
    (4, 6, 5),
    (4, 6, 4),
    (4, 4, 4, 1),
)
# A run of digit groups joined by one kind of separator (a space or a dash).
_PHRASE = re.compile(r"[0-9]+(?:([ -])[0-9]+(?:\1[0-9]+)*)?")
_IBAN = re.compile(r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}")
# Characters that glue a number to something else: a phone's +, a reference's #, an amount's
# currency, an id's _ / \ - . @.
_GLUE_BEFORE = frozenset("+#$€£@_/\\-.")
_GLUE_AFTER = frozenset("@_/\\-")


@dataclass(frozen=True)
class Found:
    """One number found: its kind and its [start, end) character span in the text."""

    kind: str
    start: int
    end: int


def parse_kinds(value: str | Iterable[str]) -> tuple[str, ...]:
    """`card,ssn` → ("card", "ssn"); an unknown or empty list is a ValueError naming the
    valid kinds."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    kinds = [p.strip().lower() for p in parts if p.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        what = f"unknown kind(s) {', '.join(unknown)}" if unknown else "no kind given"
        raise ValueError(f"--kinds: {what}; valid kinds: {', '.join(KINDS)} (comma-separated)")
    return tuple(k for k in KINDS if k in kinds)


def candidate_pattern(kinds: Iterable[str]) -> str:
    """One RE2 pattern that selects every text that may hold a number of these kinds."""
    return "|".join(f"(?:{CANDIDATE_PATTERNS[k]})" for k in kinds)


def card_issuer(digits: str) -> str | None:
    """The issuer whose prefix and lengths fit these digits, if any (no Luhn check here)."""
    for name, ranges, lengths in ISSUERS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            width = len(str(low))
            if low <= int(digits[:width]) <= high:
                return name
    return None


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and card_issuer(digits) is not None and luhn.is_valid(digits)


def _apart(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] stands apart from what is around it (see the module doc)."""
    if start > 0:
        before = text[start - 1]
        if before.isalnum() or before in _GLUE_BEFORE:
            return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after in _GLUE_AFTER:
            return False
        # "…1111.50" or "…1111,50" is an amount or a list of digits, "…1111." ends a sentence.
        if after in ".," and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True


def _cards_and_ssns(text: str, kinds: frozenset[str]) -> list[Found]:
    found: list[Found] = []
    for match in _PHRASE.finditer(text):
        start, end = match.span()
        if not _apart(text, start, end):
            continue
        phrase = match.group(0)
        sep = match.group(1)
        groups = phrase.split(sep) if sep else [phrase]
        if "ssn" in kinds and sep and [len(g) for g in groups] == [3, 2, 4]:
            if stdnum_ssn.is_valid("".join(groups)):
                found.append(Found("ssn", start, end))
            continue
        if "card" not in kinds:
            continue
        if not sep:
            if _is_card(phrase):
                found.append(Found("card", start, end))
            continue
        span = _grouped_card(groups)
        if span is not None:
            found.append(Found("card", start, start + span))
    return found


def _grouped_card(groups: list[str]) -> int | None:
    """The length in characters of the card the groups start with, if they do."""
    lengths = [len(g) for g in groups]
    for layout in _LAYOUTS:
        n = len(layout)
        if tuple(lengths[:n]) != layout:
            continue
        rest = lengths[n:]
        # An expiry or a CVV may follow; another 4-digit group means a longer number.
        if len(rest) > 2 or (rest and rest[0] == 4) or any(r > 4 for r in rest):
            continue
        if _is_card("".join(groups[:n])):
            return sum(layout) + n - 1
    return None


def _ibans(text: str) -> list[Found]:
    found: list[Found] = []
    position = 0
    while (match := _IBAN.search(text, position)) is not None:
        start = match.start()
        # No match here: look again one character on (a code-like word may precede the IBAN).
        position = start + 1
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] in _GLUE_BEFORE):
            continue
        chunks = match.group(0).split(" ")
        # The longest run of whole chunks that is a valid IBAN (a word may follow it).
        for n in range(len(chunks), 0, -1):
            candidate = " ".join(chunks[:n])
            end = start + len(candidate)
            if _apart(text, start, end) and stdnum_iban.is_valid(candidate):
                found.append(Found("iban", start, end))
                position = end
                break
    return found


def find_numbers(text: str | None, kinds: Iterable[str] = KINDS) -> list[Found]:
    """Every valid number of `kinds` in `text`, in order of position (spans never overlap)."""
    if not text:
        return []
    wanted = frozenset(kinds)
    found = _cards_and_ssns(text, wanted) if wanted & {"card", "ssn"} else []
    if "iban" in wanted:
        taken = [(f.start, f.end) for f in found]
        found += [f for f in _ibans(text) if not any(s < f.end and f.start < e for s, e in taken)]
    return sorted(found, key=lambda f: (f.start, f.kind))
