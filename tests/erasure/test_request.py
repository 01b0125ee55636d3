"""One-off requests are checked as a whole: every bad input named, no value echoed."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from erasure.request import OneOffInputError, parse_request, request_hash


def _problems(**kw: object) -> list[str]:
    with pytest.raises(OneOffInputError) as caught:
        parse_request(**kw)  # type: ignore[arg-type]
    assert "nothing was deleted" in str(caught.value)
    return caught.value.problems


def test_a_clean_request() -> None:
    request = parse_request(
        emails=[" A@B.co "], phones=["+1 (555) 010-0000"], customer_ids=["abcDEF123_-"]
    )
    assert [(s.kind, s.value) for s in request.subjects] == [
        ("email", "a@b.co"),
        ("phone", "+15550100000"),
        ("customer_id", "abcDEF123_-"),
    ]
    assert request.scope == "profile"


@pytest.mark.parametrize(
    "typed",
    ["(851) 555-0142", "+1 851-555-0142", "851.555.0142", "1 851 555 0142", "+18515550142"],
)
def test_phones_as_people_type_them_are_one_number(typed: str) -> None:
    [subject] = parse_request(phones=[typed]).subjects
    assert subject.value == "+18515550142"


def test_the_default_region_reads_national_numbers() -> None:
    [subject] = parse_request(phones=["020 7946 0958"], region="GB").subjects
    assert subject.value == "+442079460958"


def test_the_request_identity_is_stable_and_keyed() -> None:
    first = parse_request(emails=["Jane@Example.com"], phones=["(851) 555-0142"])
    again = parse_request(phones=["+1 851 555 0142"], emails=[" jane@example.com"])
    assert request_hash(first, b"k") == request_hash(again, b"k")
    assert request_hash(first, b"k") != request_hash(first, b"other key")
    referenced = parse_request(
        emails=["jane@example.com"], phones=["8515550142"], request_ref="D-1"
    )
    assert request_hash(referenced, b"k") != request_hash(first, b"k")
    assert len(request_hash(first, b"k")) == 64


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"emails": ["nobody"]}, "--email #1: the email is not an email address"),
        ({"phones": ["12"]}, "--phone #1: the phone is not a phone number"),
        ({"phones": ["555-0100"]}, "--phone #1: the phone is not a phone number"),
        ({"emails": ["a@b.co"], "request_ref": "+1 555 010 0000"}, "--request-id"),
        ({"customer_ids": ["a b"]}, "--customer-id #1: the customer_id is not a Gladly id"),
        ({"emails": ["a@b.co"], "scope": "all"}, "--scope: 'all' is not one of"),
        ({"emails": ["a@b.co"], "scope": "items"}, "give the items to redact with --item-id"),
        ({"emails": ["a@b.co"], "item_ids": ["x1234567"]}, "--item-id: only with --scope items"),
        ({}, "name at least one customer"),
        ({"emails": ["a@b.co"], "reason": "call me at +1 555 010 0000"}, "--reason"),
        ({"emails": ["a@b.co"], "reason": "for x@y.com"}, "--reason"),
    ],
)
def test_each_bad_input_is_named(kw: dict[str, object], expected: str) -> None:
    problems = _problems(**kw)
    assert any(expected in p for p in problems), problems


def test_ticket_references_and_dates_are_fine_reasons() -> None:
    assert parse_request(emails=["a@b.co"], reason="INC0012345 of 2026-11-29").reason


def test_every_bad_csv_row_is_reported_without_its_value(tmp_path: Path) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text(
        "email,phone,customer_id\n"
        "good@example.com,,\n"
        "secret.person at example.com,,\n"
        ",+1 555 0100 000,abcdefgh\n"
        ",,\n"
        ",555,\n"
    )
    problems = _problems(csv_path=sheet)
    assert [p.split(":")[0] for p in problems] == [
        "people.csv row 3",
        "people.csv row 4",
        "people.csv row 5",
        "people.csv row 6",
    ]
    assert "secret.person" not in "\n".join(problems)


def test_csv_header_and_file_problems(tmp_path: Path) -> None:
    sheet = tmp_path / "x.csv"
    sheet.write_text("name\nSomeone\n")
    assert "needs one of the columns" in _problems(csv_path=sheet)[0]
    assert "cannot be read" in _problems(csv_path=tmp_path / "missing.csv")[0]
    extra = tmp_path / "y.csv"
    extra.write_text("email,notes\na@b.co,vip\n")
    assert "unknown column(s) notes" in _problems(csv_path=extra)[0]


def test_a_two_million_row_csv_is_refused_with_the_cap_and_read_no_further(
    tmp_path: Path,
) -> None:
    sheet = tmp_path / "everyone.csv"
    with sheet.open("w") as out:
        out.write("email\n")
        out.writelines(f"person{n}@example.com\n" for n in range(2_000_000))
    tracemalloc.start()
    try:
        problems = _problems(csv_path=sheet)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems == [
        f"{sheet}: more than 100,000 rows (the limit of one request); split it into smaller "
        "files, or raise the limit with --max-rows"
    ]
    assert peak < 100 * 2**20  # streamed: never the whole file in memory


def test_the_row_cap_is_configurable(tmp_path: Path) -> None:
    sheet = tmp_path / "three.csv"
    sheet.write_text("email\na@b.co\nc@d.co\ne@f.co\n")
    assert "more than 2 rows" in _problems(csv_path=sheet, max_rows=2)[0]
    assert len(parse_request(csv_path=sheet, max_rows=3).subjects) == 3
