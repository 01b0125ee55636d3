"""A one-off request as an admin gives it: checked as a whole, normalised, and its identity.

Emails, phones (read the way people type them), customer ids, or a CSV of them; every bad row is
reported by position (never by value) and nothing happens until the request is clean. A CSV's
other columns (a ticket system's reason, ticket, notes…) are request metadata: audited as keyed
hashes, never part of the request's identity.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from erasure.request_metadata import (
    KEPT_COLUMN,
    MAX_EXTRA_COLUMNS,
    ExtraColumn,
    MetadataReader,
    column_name_ok,
    looks_like_phone,
    reason_problem,
)
from gladly_archive.keyed import IdentifierError, normalise_email, normalise_phone

__all__ = [
    "CSV_COLUMNS",
    "MAX_CSV_ROWS",
    "SCOPES",
    "Identifier",
    "OneOffInputError",
    "OneOffRequest",
    "parse_request",
    "request_hash",
]

Scope = Literal["profile", "conversations", "items", "contact"]
SCOPES: tuple[str, ...] = ("profile", "conversations", "items", "contact")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GLADLY_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
# A person's reference for the request (a ticket, a DSAR number): part of its identity.
_REQUEST_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:#/-]{0,63}$")
CSV_COLUMNS = ("email", "phone", "customer_id")
# One request names at most this many people (a CSV past it is refused before any lookup).
MAX_CSV_ROWS = 100_000


class OneOffInputError(ValueError):
    """The request is not usable as given; `problems` says where and why (never the values)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "nothing was deleted; fix these and run again:\n  " + "\n  ".join(problems)
        )


@dataclass(frozen=True)
class Identifier:
    """One identifier the admin gave: kind, value (kept in memory only), where it came from."""

    kind: Literal["email", "phone", "customer_id"]
    value: str = field(repr=False)
    where: str  # "--email #2", "people.csv row 4"


@dataclass(frozen=True)
class OneOffRequest:
    """A checked request: who, what scope, which items or contacts, why (and the CSV's other
    columns)."""

    subjects: tuple[Identifier, ...]
    scope: Scope
    item_ids: tuple[str, ...] = ()
    reason: str = ""
    close_open_conversations: bool = False
    request_ref: str = ""  # the person's reference for the request, when given
    metadata: tuple[ExtraColumn, ...] = ()  # not part of the identity (see request_hash)
    contact_ids: tuple[str, ...] = ()  # scope contact: the contacts to erase


def _check(kind: str, value: str, region: str | None) -> tuple[str | None, str]:
    """(the problem, or None; the value as compared and hashed: emails case-folded, phones in
    E.164 read the way people type them)."""
    text = value.strip()
    if not text:
        return f"the {kind} is empty", text
    if kind == "email":
        if not _EMAIL.match(text):
            return "the email is not an email address (name@domain.tld)", text
        return None, normalise_email(text)
    if kind == "phone":
        try:
            return None, normalise_phone(text, region)
        except IdentifierError as exc:
            return f"the phone is {exc}", text
    if kind == "customer_id" and not _GLADLY_ID.match(text):
        return "the customer_id is not a Gladly id (letters, digits, - and _)", text
    return None, text


def parse_request(
    *,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    customer_ids: Sequence[str] = (),
    csv_path: str | Path | None = None,
    scope: str = "profile",
    item_ids: Sequence[str] = (),
    contact_ids: Sequence[str] = (),
    reason: str = "",
    close_open_conversations: bool = False,
    request_ref: str = "",
    region: str | None = None,
    max_rows: int = MAX_CSV_ROWS,
    keep_reason: bool = False,
) -> OneOffRequest:
    """Check the whole request; OneOffInputError lists every problem (row numbers, not values).

    Phones without a country code are read as numbers of `region` (GLADLY_DEFAULT_REGION). A
    CSV's columns besides email, phone and customer_id are kept as request metadata, audited
    as keyed hashes (`audited_metadata`); with `keep_reason` its `reason` column is kept as
    given, after the checks --reason gets, and every row must give the same one. Contacts
    (--contact) imply the scope contact."""
    problems: list[str] = []
    subjects: list[Identifier] = []
    for kind, values in (("email", emails), ("phone", phones), ("customer_id", customer_ids)):
        for n, value in enumerate(values, 1):
            where = f"--{kind.replace('_', '-')} #{n}"
            problem, clean = _check(kind, value, region)
            if problem:
                problems.append(f"{where}: {problem}")
            else:
                subjects.append(Identifier(kind, clean, where))  # type: ignore[arg-type]
    if request_ref and (not _REQUEST_REF.match(request_ref) or looks_like_phone(request_ref)):
        problems.append(
            "--request-id: a short reference (letters, digits and _ . : # / -, at most 64, no "
            "phone number); it is part of the request's identity"
        )
    metadata: tuple[ExtraColumn, ...] = ()
    if csv_path is not None:
        rows, metadata, csv_problems = _read_csv(Path(csv_path), region, max_rows, keep_reason)
        subjects.extend(rows)
        problems.extend(csv_problems)
        if keep_reason and not csv_problems and KEPT_COLUMN not in {c.name for c in metadata}:
            problems.append(f"--keep-reason: {csv_path} has no {KEPT_COLUMN} column")
    elif keep_reason:
        problems.append(f"--keep-reason: only with --csv (it keeps the CSV's {KEPT_COLUMN} column)")
    if contact_ids and scope == "profile":
        scope = "contact"  # --contact names what to erase: the default scope gives way
    if scope not in SCOPES:
        problems.append(f"--scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "items" and not item_ids:
        problems.append("--scope items: give the items to redact with --item-id")
    if item_ids and scope != "items":
        problems.append("--item-id: only with --scope items")
    for n, item in enumerate(item_ids, 1):
        if not _GLADLY_ID.match(item.strip()):
            problems.append(f"--item-id #{n}: not a Gladly id")
    if scope == "contact" and not contact_ids:
        problems.append("--scope contact: give the contact to erase with --contact")
    if contact_ids and scope != "contact":
        problems.append("--contact: only with --scope contact (or without --scope)")
    for n, contact in enumerate(contact_ids, 1):
        if not _GLADLY_ID.match(contact.strip()):
            problems.append(f"--contact #{n}: not a Gladly id (a chat session's or a call's id)")
    if not subjects and not problems:
        problems.append("name at least one customer: --email, --phone, --customer-id or --csv")
    if reason and reason_problem(reason):
        problems.append(
            "--reason: keep it a short ticket reference (≤ 200 characters, no email or phone); "
            "it is written to the audit log"
        )
    if problems:
        raise OneOffInputError(problems)
    return OneOffRequest(
        tuple(dict.fromkeys(subjects)),
        scope,  # type: ignore[arg-type]
        tuple(dict.fromkeys(i.strip() for i in item_ids)),
        reason.strip(),
        close_open_conversations,
        request_ref,
        metadata,
        tuple(dict.fromkeys(c.strip() for c in contact_ids)),
    )


def request_hash(request: OneOffRequest, key: bytes) -> str:
    """The request's stable identity: a keyed hash of what it asks (who, by normalised email,
    phone or id; the scope; the items; whether to close) and of the person's reference. A
    rerun, a retry after a crash or a second worker is the same request. Why it is asked is
    not what it asks: neither --reason nor the CSV's other columns (metadata) are part of it,
    so a rerun with another note or reason resumes the same request."""
    content = {
        "ref": request.request_ref,
        "subjects": sorted({(s.kind, s.value) for s in request.subjects}),
        "scope": request.scope,
        "items": sorted(set(request.item_ids)),
        "close": request.close_open_conversations,
    }
    if request.contact_ids:  # only then: every earlier request keeps its identity
        content["contacts"] = sorted(set(request.contact_ids))
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, b"one-off request\n" + text.encode(), hashlib.sha256).hexdigest()


def _header_problems(path: Path, names: list[str]) -> list[str]:
    """What is wrong with the header, naming columns by number when their text may not be shown
    (a file without a header has a person's email where a column name should be)."""
    problems = []
    shown = [n for n in names if n and column_name_ok(n)]
    hidden = [i for i, n in enumerate(names, 1) if n and not column_name_ok(n)]
    for number in hidden:
        problems.append(
            f"{path}: column {number} of the header is not a column name (a letter, then "
            "letters, digits, spaces and _ . # ( ) / -, at most 64; its text is not shown); "
            "does the file lack its header row?"
        )
    for name in sorted({n for n in shown if shown.count(n) > 1}):
        problems.append(f"{path}: the column {name} appears more than once")
    if not set(CSV_COLUMNS) & set(shown):
        has = ", ".join(shown) or "no column names"
        if hidden:
            has += f" (and {len(hidden)} not shown)"
        problems.append(
            f"{path}: the header lacks the columns {', '.join(CSV_COLUMNS)} (one of them is "
            f"needed); it has: {has}"
        )
    extra = [n for n in dict.fromkeys(shown) if n not in CSV_COLUMNS]
    if len(extra) > MAX_EXTRA_COLUMNS:
        problems.append(
            f"{path}: {len(extra)} columns besides {', '.join(CSV_COLUMNS)}, more than "
            f"{MAX_EXTRA_COLUMNS}; leave out those the request does not need"
        )
    return problems


def _csv_row(
    cells: Mapping[str, str], where: str, region: str | None
) -> tuple[str | None, Identifier | None]:
    given = [(k, v) for k, v in cells.items() if k in CSV_COLUMNS and v]
    if len(given) != 1:
        return f"{where}: give exactly one of {', '.join(CSV_COLUMNS)}", None
    kind, value = given[0]
    problem, clean = _check(kind, value, region)
    if problem:
        return f"{where}: {problem}", None
    return None, Identifier(kind, clean, where)  # type: ignore[arg-type]


def _too_many_rows(path: Path, max_rows: int) -> str:
    return (
        f"{path}: more than {max_rows:,} rows (the limit of one request); split it into smaller "
        "files, or raise the limit with --max-rows"
    )


def _read_csv(
    path: Path, region: str | None, max_rows: int, keep_reason: bool = False
) -> tuple[list[Identifier], tuple[ExtraColumn, ...], list[str]]:
    """Rows streamed from the file, never read whole: past `max_rows` the file is refused.
    Columns besides email, phone and customer_id are metadata; a column without a name is
    left out (spreadsheets export trailing empty ones)."""
    subjects: list[Identifier] = []
    problems: list[str] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            names = [h.strip().lower() for h in next(reader, [])]
            header = _header_problems(path, names)
            if header:
                return [], (), header
            metadata = MetadataReader(
                (n for n in dict.fromkeys(names) if n and n not in CSV_COLUMNS), keep_reason
            )
            for line, row in enumerate(reader, 2):
                if line - 1 > max_rows:
                    return [], (), [_too_many_rows(path, max_rows)]
                if not row:
                    continue  # a blank line
                where = f"{path.name} row {line}"
                if any(v.strip() for v in row[len(names) :]):
                    problems.append(f"{where}: more values than the header has columns")
                    continue
                cells = {n: v.strip() for n, v in zip(names, row, strict=False) if n}
                problem, subject = _csv_row(cells, where, region)
                if problem:
                    problems.append(problem)
                elif subject is not None:
                    subjects.append(subject)
                problems.extend(metadata.add(cells, where, line))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], (), [f"{path}: cannot be read ({type(exc).__name__}); give a UTF-8 CSV file"]
    if not subjects and not problems:
        problems.append(f"{path}: no rows")
    return subjects, metadata.columns(), problems
