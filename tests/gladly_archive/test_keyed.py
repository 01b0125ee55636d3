"""Emails and phones as people type them: one normalised form, one keyed hash."""

from __future__ import annotations

import pytest

from gladly_archive.keyed import (
    IdentifierError,
    default_region,
    keyed_hash,
    normalise_email,
    normalise_phone,
)


@pytest.mark.parametrize(
    "typed", ["(851) 555-0142", "851.555.0142", "1 851 555 0142", "+1 851-555-0142", "8515550142"]
)
def test_a_phone_typed_any_way_is_one_number_and_one_hash(typed: str) -> None:
    assert normalise_phone(typed, "US") == "+18515550142"
    assert keyed_hash(typed, kind="phone", key=b"k") == keyed_hash(
        "+18515550142", kind="phone", key=b"k"
    )


def test_national_numbers_follow_the_region() -> None:
    assert normalise_phone("020 7946 0958", "GB") == "+442079460958"
    assert default_region({"GLADLY_DEFAULT_REGION": "gb"}) == "GB"
    assert default_region({}) == "US"


@pytest.mark.parametrize("typed", ["555-0100", "12", "call me", "+1 555"])
def test_an_unreadable_phone_is_refused_without_echoing_it(typed: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        normalise_phone(typed, "US")
    assert typed not in str(caught.value)
    # A value Gladly stored is never refused: it is hashed by its digits instead.
    assert normalise_phone(typed, "US", strict=False) == "".join(
        c for c in typed if c.isdigit() or c == "+"
    )


def test_an_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(IdentifierError, match="GLADLY_DEFAULT_REGION"):
        default_region({"GLADLY_DEFAULT_REGION": "Atlantis"})


def test_emails_are_trimmed_and_case_folded() -> None:
    assert normalise_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
