"""One-off requests are checked as a whole: every bad input named, no value echoed."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from erasure.request import OneOffInputError, parse_request, request_hash
from erasure.request_metadata import audited_metadata, metadata_hash


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
    assert _problems(csv_path=sheet) == [
        f"{sheet}: the header lacks the columns email, phone, customer_id (one of them is "
        "needed); it has: name"
    ]
    assert "cannot be read" in _problems(csv_path=tmp_path / "missing.csv")[0]


# A ticket system's export: the request's people, and what the ticket says about them.
TICKET_EXPORT = (
    "Ticket,email,Reason,requested_by,notes,phone\n"
    "INC-4411,jane@example.com,GDPR Art. 17,dpo-team,wrote from jane.private@example.org,\n"
    "INC-4411,,GDPR Art. 17,dpo-team,,(851) 555-0142\n"
)
SECRETS = ["jane.private@example.org", "dpo-team", "GDPR Art. 17", "INC-4411"]


def test_extra_columns_are_request_metadata_kept_as_keyed_hashes(tmp_path: Path) -> None:
    sheet = tmp_path / "dsr.csv"
    sheet.write_text(TICKET_EXPORT)
    request = parse_request(csv_path=sheet)
    assert [(s.kind, s.value) for s in request.subjects] == [
        ("email", "jane@example.com"),
        ("phone", "+18515550142"),
    ]
    assert [c.name for c in request.metadata] == ["ticket", "reason", "requested_by", "notes"]
    audited = audited_metadata(request.metadata, b"k")
    assert audited == {
        "ticket": metadata_hash(b"k", "ticket", ["INC-4411"]),
        "reason": metadata_hash(b"k", "reason", ["GDPR Art. 17"]),
        "requested_by": metadata_hash(b"k", "requested_by", ["dpo-team"]),
        "notes": metadata_hash(b"k", "notes", ["wrote from jane.private@example.org"]),
    }
    assert all(len(str(v)) == 64 for v in audited.values())
    assert audited != audited_metadata(request.metadata, b"other key")
    shown = repr(request) + str(audited)
    assert not [s for s in SECRETS if s.casefold() in shown.casefold()]


def test_metadata_is_not_part_of_the_request_identity(tmp_path: Path) -> None:
    with_notes = tmp_path / "a.csv"
    with_notes.write_text(TICKET_EXPORT)
    other_note = tmp_path / "b.csv"
    other_note.write_text(TICKET_EXPORT.replace("wrote from", "called about"))
    bare = tmp_path / "c.csv"
    bare.write_text("email,phone\njane@example.com,\n,(851) 555-0142\n")
    first = parse_request(csv_path=with_notes)
    again = parse_request(csv_path=other_note, keep_reason=True)
    assert audited_metadata(first.metadata, b"k") != audited_metadata(again.metadata, b"k")
    hashes = {request_hash(parse_request(csv_path=p), b"k") for p in (with_notes, bare)}
    assert hashes == {request_hash(again, b"k")}


def test_a_header_lacking_every_identifier_column_names_what_it_has(tmp_path: Path) -> None:
    sheet = tmp_path / "export.csv"
    sheet.write_text("Ticket,Reason,Customer E-mail\nINC-1,GDPR,jane@example.com\n")
    assert _problems(csv_path=sheet) == [
        f"{sheet}: the header lacks the columns email, phone, customer_id (one of them is "
        "needed); it has: ticket, reason, customer e-mail"
    ]


def test_a_file_without_its_header_is_refused_without_echoing_the_first_row(
    tmp_path: Path,
) -> None:
    sheet = tmp_path / "noheader.csv"
    sheet.write_text("jane@example.com,+1 851 555 0142,INC-1\nbob@example.com,,INC-2\n")
    problems = _problems(csv_path=sheet)
    assert problems == [
        f"{sheet}: column 1 of the header is not a column name (a letter, then letters, "
        "digits, spaces and _ . # ( ) / -, at most 64; its text is not shown); does the file "
        "lack its header row?",
        f"{sheet}: column 2 of the header is not a column name (a letter, then letters, "
        "digits, spaces and _ . # ( ) / -, at most 64; its text is not shown); does the file "
        "lack its header row?",
        f"{sheet}: the header lacks the columns email, phone, customer_id (one of them is "
        "needed); it has: inc-1 (and 2 not shown)",
    ]
    assert "jane" not in "\n".join(problems)
    assert "555" not in "\n".join(problems)


def test_a_column_twice_and_a_row_wider_than_the_header_are_refused(tmp_path: Path) -> None:
    twice = tmp_path / "twice.csv"
    twice.write_text("email,notes,Email\na@b.co,x,c@d.co\n")
    assert _problems(csv_path=twice) == [f"{twice}: the column email appears more than once"]
    wide = tmp_path / "wide.csv"
    wide.write_text("email\na@b.co,\nc@d.co,e@f.co\n")
    problems = _problems(csv_path=wide)
    assert problems == ["wide.csv row 3: more values than the header has columns"]


def test_too_many_extra_columns_are_refused(tmp_path: Path) -> None:
    sheet = tmp_path / "wide.csv"
    names = [f"c{n}" for n in range(51)]
    sheet.write_text(",".join(["email", *names]) + "\na@b.co" + "," * 51 + "\n")
    assert (
        "51 columns besides email, phone, customer_id, more than 50" in _problems(csv_path=sheet)[0]
    )


def test_a_reason_with_an_email_is_hashed_but_not_kept_and_never_echoed(tmp_path: Path) -> None:
    sheet = tmp_path / "dsr.csv"
    sheet.write_text(
        "email,reason\n"
        "a@b.co,GDPR\n"
        "c@d.co,asked by jane.private@example.org\n"
        "e@f.co,call +1 415 555 0199\n"
        "g@h.co," + "x" * 201 + "\n"
    )
    hashed = parse_request(csv_path=sheet)  # kept only as a keyed hash: any text will do
    assert audited_metadata(hashed.metadata, b"k")["reason"] == metadata_hash(
        b"k",
        "reason",
        ["GDPR", "asked by jane.private@example.org", "call +1 415 555 0199", "x" * 201],
    )
    problems = _problems(csv_path=sheet, keep_reason=True)
    assert [p.split(":")[0] for p in problems] == [
        "dsr.csv row 3",
        "dsr.csv row 4",
        "dsr.csv row 5",
    ]
    assert all("cannot be kept as given (--keep-reason)" in p for p in problems)
    text = "\n".join(problems)
    assert not [s for s in ("jane.private", "555", "xxxx") if s in text]


def test_keep_reason_keeps_the_reason_column_as_given(tmp_path: Path) -> None:
    sheet = tmp_path / "dsr.csv"
    sheet.write_text(TICKET_EXPORT)
    request = parse_request(csv_path=sheet, keep_reason=True)
    assert audited_metadata(request.metadata, b"k") == {
        "ticket": metadata_hash(b"k", "ticket", ["INC-4411"]),
        "reason": "GDPR Art. 17",  # only the reason: the rest stays keyed hashes
        "requested_by": metadata_hash(b"k", "requested_by", ["dpo-team"]),
        "notes": metadata_hash(b"k", "notes", ["wrote from jane.private@example.org"]),
    }
    assert "GDPR" not in repr(request)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email,reason\na@b.co,GDPR\nc@d.co,\ne@f.co,CCPA\n", "dsr.csv row 4: its reason differs"),
        ("email,notes\na@b.co,GDPR\n", "has no reason column"),
    ],
)
def test_keep_reason_wants_one_reason_column_and_one_reason(
    tmp_path: Path, text: str, expected: str
) -> None:
    sheet = tmp_path / "dsr.csv"
    sheet.write_text(text)
    problems = _problems(csv_path=sheet, keep_reason=True)
    assert any(expected in p for p in problems), problems
    assert "CCPA" not in "\n".join(problems)


def test_keep_reason_needs_a_csv() -> None:
    assert _problems(emails=["a@b.co"], keep_reason=True) == [
        "--keep-reason: only with --csv (it keeps the CSV's reason column)"
    ]


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
