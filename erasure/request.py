"""A one-off request as an admin gives it: checked as a whole, normalised, and its identity.

Emails, phones (read the way people type them), customer ids, or a CSV of them; every bad row is
reported by position (never by value) and nothing happens until the request is clean.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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

Scope = Literal["profile", "conversations", "items"]
SCOPES: tuple[str, ...] = ("profile", "conversations", "items")
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
    """A checked request: who, what scope, which items, why."""

    subjects: tuple[Identifier, ...]
    scope: Scope
    item_ids: tuple[str, ...] = ()
    reason: str = ""
    close_open_conversations: bool = False
    request_ref: str = ""  # the person's reference for the request, when given


_PHONEISH = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d[\d\s().-]{5,}\d")


def _looks_like_phone(text: str) -> bool:
    # A ticket reference like INC0012345 is fine; a free-standing run of 7+ digits is not.
    text = re.sub(r"\d{4}-\d{2}-\d{2}", " ", text)  # a date is not a phone number
    return any(sum(c.isdigit() for c in m.group()) >= 7 for m in _PHONEISH.finditer(text))


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
    reason: str = "",
    close_open_conversations: bool = False,
    request_ref: str = "",
    region: str | None = None,
    max_rows: int = MAX_CSV_ROWS,
) -> OneOffRequest:
    """Check the whole request; OneOffInputError lists every problem (row numbers, not values).

    Phones without a country code are read as numbers of `region` (GLADLY_DEFAULT_REGION)."""
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
    if request_ref and (not _REQUEST_REF.match(request_ref) or _looks_like_phone(request_ref)):
        problems.append(
            "--request-id: a short reference (letters, digits and _ . : # / -, at most 64, no "
            "phone number); it is part of the request's identity"
        )
    if csv_path is not None:
        rows, csv_problems = _read_csv(Path(csv_path), region, max_rows)
        subjects.extend(rows)
        problems.extend(csv_problems)
    if scope not in SCOPES:
        problems.append(f"--scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "items" and not item_ids:
        problems.append("--scope items: give the items to redact with --item-id")
    if item_ids and scope != "items":
        problems.append("--item-id: only with --scope items")
    for n, item in enumerate(item_ids, 1):
        if not _GLADLY_ID.match(item.strip()):
            problems.append(f"--item-id #{n}: not a Gladly id")
    if not subjects and not problems:
        problems.append("name at least one customer: --email, --phone, --customer-id or --csv")
    if len(reason) > 200 or "@" in reason or _looks_like_phone(reason):
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
    )


def request_hash(request: OneOffRequest, key: bytes) -> str:
    """The request's stable identity: a keyed hash of what it asks (who, by normalised email,
    phone or id; the scope; the items; whether to close) and of the person's reference. A
    rerun, a retry after a crash or a second worker is the same request."""
    content = {
        "ref": request.request_ref,
        "subjects": sorted({(s.kind, s.value) for s in request.subjects}),
        "scope": request.scope,
        "items": sorted(set(request.item_ids)),
        "close": request.close_open_conversations,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, b"one-off request\n" + text.encode(), hashlib.sha256).hexdigest()


def _csv_row(
    row: dict[str | Any, str | Any], where: str, region: str | None
) -> tuple[str | None, Identifier | None]:
    values = {k.strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
    given = [(k, v) for k, v in values.items() if k in CSV_COLUMNS and v]
    if len(given) != 1:
        return f"{where}: give exactly one of {', '.join(CSV_COLUMNS)}", None
    kind, value = given[0]
    problem, clean = _check(kind, value, region)
    if problem:
        return f"{where}: {problem}", None
    return None, Identifier(kind, clean, where)  # type: ignore[arg-type]


def _read_csv(path: Path, region: str | None, max_rows: int) -> tuple[list[Identifier], list[str]]:
    """Rows streamed from the file, never read whole: past `max_rows` the file is refused."""
    subjects: list[Identifier] = []
    problems: list[str] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            if not [h for h in header if h in CSV_COLUMNS]:
                return [], [f"{path}: the header needs one of the columns {', '.join(CSV_COLUMNS)}"]
            unknown = sorted(set(header) - set(CSV_COLUMNS) - {""})
            if unknown:
                problems.append(f"{path}: unknown column(s) {', '.join(unknown)}")
            for line, row in enumerate(reader, 2):
                if line - 1 > max_rows:
                    return [], [
                        f"{path}: more than {max_rows:,} rows (the limit of one request); split "
                        "it into smaller files, or raise the limit with --max-rows"
                    ]
                problem, subject = _csv_row(row, f"{path.name} row {line}", region)
                if problem:
                    problems.append(problem)
                elif subject is not None:
                    subjects.append(subject)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], [f"{path}: cannot be read ({type(exc).__name__}); give a UTF-8 CSV file"]
    if not subjects and not problems:
        problems.append(f"{path}: no rows")
    return subjects, problems
