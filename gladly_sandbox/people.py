"""Synthetic people: names, emails, phones, addresses and attributes drawn from small word lists."""

from __future__ import annotations

import random
import uuid
from typing import Any, TypeVar

from gladly_sandbox.profiles import Email, Phone

FIRST_NAMES = (
    "Dana", "Chidi", "Amara", "Bruno", "Carmen", "Dmitri", "Elena", "Farah", "Gideon", "Hana",
    "Idris", "Jonah", "Keiko", "Luca", "Maya", "Nils", "Olga", "Priya", "Quinn", "Rafael",
    "Sofia", "Tariq", "Uma", "Viktor", "Wren", "Xavier", "Yara", "Zane", "Ada", "Beatriz",
    "Cyrus", "Delia", "Emeka", "Fiona", "Gustavo", "Helga", "Ines", "Jasper", "Kwame", "Leona",
    "Marek", "Noor", "Oskar", "Paloma", "Rosa", "Soren", "Thea", "Ulrich", "Vera", "Wanda",
)  # fmt: skip
LAST_NAMES = (
    "Rivera", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Novak", "Haddad", "Costa", "Brennan",
    "Yilmaz", "Kowalski", "Nakamura", "Abara", "Delgado", "Fischer", "Gallo", "Ivanova", "Jensen",
    "Khan", "Larsen", "Mendes", "Nguyen", "Oduya", "Petrov", "Quintero", "Rossi", "Sato",
    "Torres", "Urquhart", "Vance", "Weber", "Xu", "Young", "Zapata", "Achebe", "Bianchi",
    "Castillo", "Dubois", "Eriksen", "Ferreira", "Grant", "Horvat", "Iqbal", "Jovanovic",
)  # fmt: skip
STREETS = (
    "Maple", "Cedar", "Harbor", "Juniper", "Lark", "Mill", "Orchard", "Pine", "Quarry", "Ridge",
    "Spruce", "Tulip", "Willow", "Aspen", "Brook", "Canyon", "Elm", "Fern", "Granite", "Hollow",
)  # fmt: skip
STREET_SUFFIXES = ("St", "Ave", "Rd", "Ln", "Blvd", "Way", "Ct", "Dr")
CITIES = (
    ("Springfield", "IL", "627"), ("Riverton", "WY", "825"), ("Fairview", "OR", "970"),
    ("Lakewood", "CO", "802"), ("Greenville", "SC", "296"), ("Franklin", "TN", "370"),
    ("Clinton", "MA", "015"), ("Madison", "WI", "537"), ("Georgetown", "TX", "786"),
    ("Salem", "NH", "030"), ("Oakland", "CA", "946"), ("Ashland", "KY", "411"),
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
LOYALTY_TIERS = (("gold", 15), ("silver", 35), ("bronze", 50))
REGIONS = ("north", "south", "east", "west", "emea")
EXTERNAL_APPS = ("shopify-store-1", "loyalty-hub", "orders-db")
PHONE_TYPES = ("MOBILE", "HOME", "OFFICE", None)  # None = Gladly's "other" (field absent)

# US numbers in the 555-0100..555-0199 block are reserved for fiction; one block per area code.
AREA_CODES = tuple(
    f"{a}{b}{c}" for a in range(2, 10) for b in range(9) for c in range(10) if not (b == 1 == c)
)
FICTIONAL_NUMBERS = len(AREA_CODES) * 100
T = TypeVar("T")
_MOBILE_STRIDE = 7919  # prime, coprime with FICTIONAL_NUMBERS: walks the pool in a scrambled order


def fictional_number(slot: int) -> tuple[str, str]:
    """Area code and line (`555-01xx`) of pool slot `slot`."""
    return AREA_CODES[slot // 100], f"555-01{slot % 100:02d}"


def mobile_slot(nth: int) -> int:
    """The pool slot of the `nth` mobile number handed out; distinct for distinct `nth`."""
    return (nth * _MOBILE_STRIDE + 1234) % FICTIONAL_NUMBERS


def format_national(area: str, line: str, style: int) -> str:
    """One of the ways people type a US number."""
    local = line.replace("-", "")
    styles = (
        f"({area}) {line}",
        f"{area}-{line}",
        f"{area}.{line[:3]}.{line[4:]}",
        f"{area}{local}",
        f"+1 {area}-{line}",
        f"1 ({area}) {line}",
    )
    return styles[style % len(styles)]


class PeopleFactory:
    """Draws customer fields from one seeded RNG; keeps emails and mobiles unique."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._taken_emails: set[str] = set()
        self._mobiles_handed_out = 0
        self._tier_cumulative = _cumulative(LOYALTY_TIERS)

    def name(self) -> tuple[str, str]:
        """A first and a last name."""
        rng = self._rng
        return _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)

    def address(self) -> str:
        """A street address; some profiles have none (empty string, as Gladly shows it)."""
        rng = self._rng
        if rng.random() < 0.12:
            return ""
        city, state, zip_prefix = _pick(rng, CITIES)
        street = f"{_between(rng, 10, 9900)} {_pick(rng, STREETS)} "
        street += _pick(rng, STREET_SUFFIXES)
        if rng.random() < 0.3:
            street += f" Apt {_between(rng, 1, 40)}"
        return f"{street}, {city}, {state} {zip_prefix}{_between(rng, 0, 100):02d}"

    def emails(self, first: str, last: str, number: int) -> list[Email]:
        """One or two addresses at example.* domains, with varied case; unique org-wide.

        `number` must differ between customers: numbered addresses can then never clash, and
        plain ones (no digits) are checked against those already handed out.
        """
        rng = self._rng
        count = 2 if rng.random() < 0.25 else 1
        pattern = _between(rng, 0, 4)
        domain = int(rng.random() * len(EMAIL_DOMAINS))
        result: list[Email] = []
        for n in range(count):
            local = _email_local(first, last, (pattern + n) % 4)
            host = EMAIL_DOMAINS[(domain + n) % len(EMAIL_DOMAINS)]
            plain = f"{local}@{host}".lower()
            if n == 0 and rng.random() < 0.3 and plain not in self._taken_emails:
                self._taken_emails.add(plain)
                typed = f"{local}@{host}"
            else:
                typed = f"{local}{number}@{host}"
            if count > 1:
                primary: bool | None = n == 0
            else:
                primary = True if rng.random() < 0.5 else None
            result.append(Email(_vary_case(typed, rng), typed.lower(), primary))
        return result

    def phones(self) -> list[Phone]:
        """Zero to two numbers; MOBILE numbers are unique across the organisation."""
        rng = self._rng
        roll = rng.random()
        count = 0 if roll < 0.25 else (1 if roll < 0.85 else 2)
        result: list[Phone] = []
        for n in range(count):
            kind = "MOBILE" if n == 0 else _pick(rng, PHONE_TYPES)
            if rng.random() < 0.25:
                kind = _pick(rng, PHONE_TYPES)
            has_mobile = any(p.type == "MOBILE" for p in result)
            if kind == "MOBILE" and (has_mobile or self._mobiles_handed_out >= FICTIONAL_NUMBERS):
                kind = "HOME"  # one mobile each, and the fictional pool may be used up
            if kind == "MOBILE":
                slot = mobile_slot(self._mobiles_handed_out)
                self._mobiles_handed_out += 1
                sms_roll = rng.random()
                sms: str | None = (
                    "ON" if sms_roll < 0.7 else ("OFF" if sms_roll < 0.9 else "FORBIDDEN")
                )
            else:
                slot = _between(rng, 0, FICTIONAL_NUMBERS)  # landlines may be shared
                sms = None
            area, line = fictional_number(slot)
            original = format_national(area, line, _between(rng, 0, 6))
            normalized = "+1" + area + line.replace("-", "")
            primary = (n == 0) if count > 1 else None
            extension = None
            if kind == "OFFICE" and rng.random() < 0.3:
                extension = str(_between(rng, 100, 999))
            result.append(Phone(original, normalized, "US", kind, sms, primary, extension))
        return result

    def external(self) -> tuple[str | None, dict[str, str] | None]:
        """A legacy `externalCustomerId` (~10%), an `externalCustomerIds` map (~65%), or neither."""
        rng = self._rng
        roll = rng.random()
        if roll < 0.10:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4)), None
        if roll < 0.75:
            app = _pick(rng, EXTERNAL_APPS)
            return None, {app: str(_between(rng, 1_000_000, 9_999_999))}
        return None, None

    def attributes(self, created_year: int) -> dict[str, Any]:
        """customAttributes varied enough for retention policies to filter on."""
        rng = self._rng
        if rng.random() < 0.08:
            return {}
        tier_roll = rng.random() * self._tier_cumulative[-1]
        tier = next(
            name
            for (name, _), top in zip(LOYALTY_TIERS, self._tier_cumulative, strict=True)
            if tier_roll < top
        )
        return {
            "loyaltyTier": tier,
            "region": _pick(rng, REGIONS),
            "marketingOptIn": "true" if rng.random() < 0.55 else "false",
            "memberSince": str(created_year - _between(rng, 0, 6)),
        }

    def image(self, first: str) -> str | None:
        """An avatar URL for about one profile in five."""
        if self._rng.random() < 0.2:
            return (
                f"https://cdn.example.com/avatars/{first.lower()}{_between(self._rng, 0, 1000)}.png"
            )
        return None


def _pick(rng: random.Random, choices: tuple[T, ...]) -> T:
    """One of `choices` (faster than rng.choice; generation draws millions of these)."""
    return choices[int(rng.random() * len(choices))]


def _between(rng: random.Random, low: int, high: int) -> int:
    """An int in [low, high) (faster than rng.randrange)."""
    return low + int(rng.random() * (high - low))


def _cumulative(weights: tuple[tuple[str, int], ...]) -> list[int]:
    total = 0
    result = []
    for _, weight in weights:
        total += weight
        result.append(total)
    return result


def _email_local(first: str, last: str, pattern: int) -> str:
    if pattern == 0:
        return f"{first}.{last}"
    if pattern == 1:
        return f"{first[0]}{last}"
    if pattern == 2:
        return f"{first}_{last[0]}"
    return f"{first}{last}"


def _vary_case(address: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return address.lower()
    if roll < 0.9:
        return address  # names keep their capitals, as people type them
    return address.upper()
