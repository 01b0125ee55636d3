"""One-off deletions: a data subject's erasure request, or one item with a card number in it.

The admin's input (emails, phones, customer ids, a CSV of them, item ids) is checked as a whole
first — every bad row reported, nothing done until it is clean — then resolved read-only through
the API into a plan of the same shape policies produce, which the same engine executes.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from audit_log.outcomes import ONE_OFF_POLICY
from erasure.subjects import Subjects
from gladly_archive.keyed import IdentifierError, normalise_email, normalise_phone
from gladly_client import GladlyClient
from gladly_client.errors import CustomerMovedError, NotFoundError
from gladly_client.item_models import Item
from retention_policies.holds import HoldRegistry
from retention_policies.plan import TARGET_SCHEMA, Plan
from retention_policies.vocab import DELETABLE_TYPES, REDACTABLE_TYPES

__all__ = [
    "Identifier",
    "OneOffInputError",
    "OneOffPlan",
    "OneOffRequest",
    "build_oneoff_plan",
    "earlier_customers",
    "parse_request",
    "request_hash",
]

Scope = Literal["profile", "conversations", "items"]
SCOPES: tuple[str, ...] = ("profile", "conversations", "items")
POLICY_NAME = ONE_OFF_POLICY
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GLADLY_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
# A person's reference for the request (a ticket, a DSAR number): part of its identity.
_REQUEST_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:#/-]{0,63}$")
UNMATCHED = "not_found"  # the operation of a target that names an identifier matching no one
_ACTIONS = {"profile": "delete_customer", "conversations": "erase_conversation"}
_ACTIONS["items"] = "redact_items"
CSV_COLUMNS = ("email", "phone", "customer_id")


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
        rows, csv_problems = _read_csv(Path(csv_path), region)
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


def _read_csv(path: Path, region: str | None) -> tuple[list[Identifier], list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot be read ({type(exc).__name__}); give a UTF-8 CSV file"]
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    known = [h for h in header if h in CSV_COLUMNS]
    if not known:
        return [], [f"{path}: the header needs one of the columns {', '.join(CSV_COLUMNS)}"]
    unknown = sorted(set(header) - set(CSV_COLUMNS) - {""})
    problems = [f"{path}: unknown column(s) {', '.join(unknown)}"] if unknown else []
    subjects: list[Identifier] = []
    for line, row in enumerate(reader, 2):
        values = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        given = [(k, v) for k, v in values.items() if k in CSV_COLUMNS and v]
        where = f"{path.name} row {line}"
        if len(given) != 1:
            problems.append(f"{where}: give exactly one of {', '.join(CSV_COLUMNS)}")
            continue
        kind, value = given[0]
        problem, clean = _check(kind, value, region)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            subjects.append(Identifier(kind, clean, where))  # type: ignore[arg-type]
    if not subjects and not problems:
        problems.append(f"{path}: no rows")
    return subjects, problems


@dataclass
class OneOffPlan:
    """The plan, plus what could not be resolved and the live profiles seen (for holds)."""

    plan: Plan
    not_found: list[str]
    subjects: Subjects


def _subject_hash(registry: HoldRegistry, subject: Identifier) -> str | None:
    if subject.kind == "email":
        return registry.hash_email(subject.value)
    if subject.kind == "phone":
        return registry.hash_phone(subject.value)
    return None


def earlier_customers(history: pa.Table, request_id: str) -> dict[str, str | None]:
    """Customers earlier runs of this request targeted (rehearsals too: they resolved the same
    identifiers), with the subject hash of the identifier that named each. After a deletion
    Gladly finds nobody by that email any more: this is how a rerun still knows whom it meant."""
    if history.num_rows == 0:
        return {}
    rows = history.filter(
        pc.and_(
            pc.and_(
                pc.equal(history.column("policy_name"), POLICY_NAME),
                pc.equal(history.column("policy_hash"), request_id),
            ),
            pc.equal(history.column("target_type"), "customer"),
        )
    ).select(["target_id", "subject_hash"])
    found: dict[str, str | None] = {}
    for row in rows.to_pylist():
        if row["target_id"] and not str(row["target_id"]).startswith(_UNMATCHED_PREFIX):
            found[row["target_id"]] = found.get(row["target_id"]) or row["subject_hash"]
    return found


_UNMATCHED_PREFIX = "unmatched-"


def build_oneoff_plan(
    request: OneOffRequest,
    client: GladlyClient,
    *,
    key: bytes,
    now: datetime,
    history: pa.Table | None = None,
) -> OneOffPlan:
    """Resolve the request through the API (read-only) into a plan for the engine.

    Its identity is `request_hash`: with the audit log's `history`, customers an earlier run
    of the same request targeted stay targets even when Gladly no longer finds them by email
    or phone (deleted by that run). An identifier that matches no one now and never did is a
    target of its own whose outcome is `not_found`."""
    registry = HoldRegistry.empty(key=key)
    request_id = request_hash(request, key)
    earlier = (
        earlier_customers(history, request_id)
        if history is not None and request.scope == "profile"
        else {}
    )
    subjects = Subjects()
    not_found: list[str] = []
    customers: dict[str, str | None] = {}  # customer id → subject hash of who asked
    unmatched: dict[str, str] = {}  # subject hash → where the identifier was given
    for subject in request.subjects:
        shash = _subject_hash(registry, subject)
        if subject.kind == "customer_id":
            customers.setdefault(subject.value, None)
            continue
        email = subject.value if subject.kind == "email" else None
        phone = subject.value if subject.kind == "phone" else None
        found = client.customers.find(email=email, phone=phone)
        for profile in found:
            subjects.add_profile(profile)
            customers[profile.id] = shash
        before = [cid for cid, h in earlier.items() if h == shash]
        for cid in before:
            customers.setdefault(cid, shash)
        if not found and not before and shash is not None:
            unmatched[shash] = subject.where
            not_found.append(f"{subject.where}: no Gladly profile, now or for an earlier attempt")
    rows: list[dict[str, Any]] = []
    action = _ACTIONS[request.scope]
    head = {"policy_name": POLICY_NAME, "policy_hash": request_id, "action": action}
    for shash in sorted(unmatched):
        pseudo = f"{_UNMATCHED_PREFIX}{shash[:24]}"
        rows.append(_row(head, "customer", pseudo, None, None, UNMATCHED, False, shash))
    if request.scope == "profile":
        for cid, shash in sorted(customers.items()):
            rows.append(_row(head, "customer", cid, cid, None, "delete_customer", True, shash))
            rows[-1]["close_open_conversations"] = request.close_open_conversations
    elif request.scope == "conversations":
        for cid, shash in sorted(customers.items()):
            rows.extend(_conversation_rows(client, head, cid, shash, not_found))
    else:
        for item_id in request.item_ids:
            rows.extend(_item_rows(client, head, item_id, customers, not_found))
    targets = pa.Table.from_pylist(rows, schema=TARGET_SCHEMA)
    policy = {
        "name": POLICY_NAME,
        "version_hash": request_id,
        "resource": {"profile": "customer", "conversations": "conversation"}.get(
            request.scope, "item"
        ),
        "action": action,
        "enabled": True,
        "status": "planned",
        "reason": request.reason or None,
        "population": len(customers),
        "matched": targets.num_rows,
        "held": 0,
        "eligible": targets.num_rows,
    }
    plan = Plan(
        now=now,
        targets=targets,
        held=TARGET_SCHEMA.empty_table(),
        policies=[policy],
        holds_hash=registry.hash,
    )
    return OneOffPlan(plan, not_found, subjects)


def _row(
    head: dict[str, Any],
    target_type: str,
    target_id: str,
    customer_id: str | None,
    conversation_id: str | None,
    operation: str,
    erasable: bool,
    subject_hash: str | None,
    content_type: str | None = None,
) -> dict[str, Any]:
    facts = {"subject_hash": subject_hash} if subject_hash else {}
    return {
        **head,
        "target_type": target_type,
        "target_id": target_id,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "operation": operation,
        "erasable": erasable,
        "content_type": content_type,
        "close_open_conversations": False,
        "matched_facts_json": json.dumps(facts, sort_keys=True),
        "excluded_by_holds": [],
    }


def _operation(content_type: str) -> str:
    if content_type in REDACTABLE_TYPES:
        return "redact"
    if content_type in DELETABLE_TYPES:
        return "delete"
    return "not_erasable_via_api"


def _item_row(head: dict[str, Any], item: Item, shash: str | None) -> dict[str, Any]:
    op = _operation(item.content_type)
    return _row(
        head,
        "item",
        item.id,
        item.customer_id,
        item.conversation_id,
        op,
        op != "not_erasable_via_api",
        shash,
        item.content_type,
    )


def _conversation_rows(
    client: GladlyClient,
    head: dict[str, Any],
    customer_id: str,
    shash: str | None,
    not_found: list[str],
) -> list[dict[str, Any]]:
    try:
        listed = client.conversations.list_for_customer(customer_id)
    except (NotFoundError, CustomerMovedError):
        not_found.append(f"customer {customer_id}: no Gladly profile under this id")
        return []
    rows = []
    if listed.truncated:
        not_found.append(f"customer {customer_id}: more than 100 conversations; only 100 planned")
    for conversation in listed.conversations:
        rows.append(
            _row(
                head,
                "conversation",
                conversation.id,
                customer_id,
                conversation.id,
                "not_erasable_via_api",
                False,
                shash,
            )
        )
        items = client.items.list_for_conversation(conversation.id)
        if items.truncated:
            not_found.append(f"conversation {conversation.id}: more than 1000 items listed")
        rows.extend(_item_row(head, item, shash) for item in items)
    return rows


def _item_rows(
    client: GladlyClient,
    head: dict[str, Any],
    item_id: str,
    customers: dict[str, str | None],
    not_found: list[str],
) -> list[dict[str, Any]]:
    try:
        item = client.items.get(item_id)
    except NotFoundError:
        not_found.append(f"item {item_id}: not found in Gladly")
        return []
    if customers and item.customer_id not in customers:
        not_found.append(f"item {item_id}: belongs to none of the customers named; left alone")
        return []
    return [_item_row(head, item, customers.get(item.customer_id))]
