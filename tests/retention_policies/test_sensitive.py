"""The sweep's detectors: cards of several issuers as people write them, SSNs, IBANs; and the
look-alikes (orders, tracking ids, phones, dates, bad checksums, longer runs) never found."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retention_policies.sensitive import (
    CANDIDATE_PATTERNS,
    KINDS,
    candidate_pattern,
    card_issuer,
    find_numbers,
    parse_kinds,
)

# The networks' published test numbers (valid Luhn, real issuer ranges, never real accounts).
CARDS = {
    "visa": ["4111111111111111", "4012888888881881"],
    "mastercard": ["5555555555554444", "5105105105105100", "2223003122003222"],
    "amex": ["378282246310005", "371449635398431"],
    "discover": ["6011111111111117", "6011000990139424"],
    "jcb": ["3530111333300000", "3566002020360505"],
    "diners": ["30569309025904", "38520000023237"],
    "unionpay": ["6200000000000005"],
}


def _grouped(digits: str, sep: str) -> str:
    """As printed on the card: 4-6-5 (Amex), 4-6-4 (Diners), else groups of four."""
    if len(digits) in (14, 15):
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _spans(text: str, kinds: tuple[str, ...] = KINDS) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_numbers(text, kinds)]


@pytest.mark.parametrize("issuer", sorted(CARDS))
@pytest.mark.parametrize("sep", ["", " ", "-"])
def test_cards_of_every_issuer_are_found_as_written(issuer: str, sep: str) -> None:
    for digits in CARDS[issuer]:
        assert card_issuer(digits) == issuer
        written = _grouped(digits, sep) if sep else digits
        text = f"Hi, my card is {written}, exp 04/29. Thanks!"
        assert _spans(text) == [("card", written)], (issuer, sep)


def test_a_card_followed_by_its_cvv_or_ending_a_sentence_is_found_without_them() -> None:
    assert _spans("4111 1111 1111 1111 123") == [("card", "4111 1111 1111 1111")]
    assert _spans("card:4111111111111111.") == [("card", "4111111111111111")]
    assert _spans("(5555-5555-5555-4444)") == [("card", "5555-5555-5555-4444")]
    first, second = "4111111111111111", "378282246310005"
    assert _spans(f"{first} and {second}") == [("card", first), ("card", second)]


LOOK_ALIKES = [
    "Your order ORD-4111111111111111 shipped",  # an order id that embeds a valid number
    "order #4111111111111111",  # a reference
    "order 1045873926 is on its way",
    "tracking 1Z999AA10123456784",
    "USPS 9400 1000 0000 0000 0000 00",
    "FedEx 7489 2837 4628 9921",
    "call +1 (415) 555-2671 or 415-555-2671 or +14155552671",
    "+44 20 7946 0958",
    "+4111111111111111",  # a phone-like + prefix
    "on 2026-05-20T09:00:00.123456Z, epoch 1779267600123",
    "dates 20/05/2026 2026-05-20 20260520093000",
    "4111111111111112",  # Luhn fails
    "4111 1111 1111 1112",
    "9411111111111111119",  # a longer run containing a valid card
    "41111111111111110000",
    "4111 1111 1111 1111 1234 5678",  # more 4-digit groups: a longer number
    "1234 5678 9012 3456",  # Luhn fails
    "7777777777777777",  # Luhn-valid, no issuer
    "amount 4111111111111111.50",
    "SSN-like 000-12-3456 666-12-3456 912-34-5678 123-00-4567 078-05-1120",
    "536904399",  # a bare 9-digit run: too often an account or order number
    "IBAN DE89 3704 0044 0532 0130 01",  # bad checksum
    "ZZ89370400440532013000",  # no such country
    "id_4111111111111111 and a/4111111111111111",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_never_found(text: str) -> None:
    assert find_numbers(text) == []


def test_ssns_written_with_dashes_or_spaces() -> None:
    assert _spans("SSN 536-90-4399.") == [("ssn", "536-90-4399")]
    assert _spans("ssn: 536 90 4399") == [("ssn", "536 90 4399")]
    assert _spans("536-90 4399") == []  # mixed separators
    assert _spans("call 555-123-4567") == []


def test_ibans_compact_or_grouped_and_followed_by_words() -> None:
    assert _spans("IBAN DE89370400440532013000 please") == [("iban", "DE89370400440532013000")]
    grouped = "GB82 WEST 1234 5698 7654 32"
    assert _spans(f"to {grouped} BY FRIDAY") == [("iban", grouped)]
    assert _spans(f"REF9 {grouped}") == [("iban", grouped)]


def test_kinds_are_kept_apart() -> None:
    text = "4111111111111111 / 536-90-4399 / DE89370400440532013000"
    assert [k for k, _ in _spans(text, ("ssn",))] == ["ssn"]
    assert [k for k, _ in _spans(text, ("card", "iban"))] == ["card", "iban"]


def test_parse_kinds_names_the_valid_ones() -> None:
    assert parse_kinds("iban, card") == ("card", "iban")
    with pytest.raises(ValueError, match=r"unknown kind.*cvv.*valid kinds: card, ssn, iban"):
        parse_kinds("card,cvv")
    with pytest.raises(ValueError, match="no kind given"):
        parse_kinds(" , ")


def test_the_arrow_filter_selects_every_text_validation_accepts() -> None:
    """RE2 in Arrow must be a superset: no number is lost before validation."""
    found = [
        f"x {_grouped(d, s) if s else d} y"
        for v in CARDS.values()
        for d in v
        for s in ("", " ", "-")
    ]
    found += ["536-90-4399", "536 90 4399", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]
    column = pa.array([*found, "nothing here", None], pa.large_string())
    mask = pc.match_substring_regex(column, candidate_pattern(KINDS))
    assert mask.to_pylist() == [True] * len(found) + [False, None]
    for text in found:
        assert find_numbers(text), text
        # Python's re agrees with RE2 on these patterns (no RE2-only syntax).
        assert any(re.search(p, text) for p in CANDIDATE_PATTERNS.values())
