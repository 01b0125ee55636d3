"""Legal holds: what no policy may touch while the hold lasts; emails and phones as keyed hashes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from gladly_archive.keyed import keyed_hash
from retention_policies.loader import (
    PolicyProblem,
    PolicyValidationError,
    read_text_bounded,
    read_yaml_documents,
)
from retention_policies.references import KINDS, References, Unresolved

HOLD_KINDS: tuple[str, ...] = (
    "conversation_id",
    "custom_attribute",
    "customer_id",
    "email_hash",
    "inbox",
    "phone_hash",
    "topic",
)
HOLD_FIELDS: tuple[str, ...] = ("kind", "value", "reason", "reference", "ends_on")
# A holds CSV may list many customers (a litigation export): ten times a YAML page.
MAX_HOLDS_CSV_BYTES = 10 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HASH_HINT = "store its keyed hash instead: run `gladly-pipeline holds hash --{kind} …`"


@dataclass(frozen=True)
class Hold:
    """One legal hold: `kind` and `value` say what it protects, `ends_on` when it lapses.

    ```yaml
    holds:
      - kind: customer_id
        value: aBcD123
        reason: Litigation hold, Smith v. Acme
        reference: LEGAL-42
        ends_on: 2027-01-31
    ```
    """

    kind: str
    value: str
    reason: str
    reference: str
    ends_on: date | None = None

    def applies(self, now: datetime | date) -> bool:
        """True unless `now` is past the hold's end date (the end date itself still holds)."""
        today = now.date() if isinstance(now, datetime) else now
        return self.ends_on is None or today <= self.ends_on

    def as_dict(self) -> dict[str, Any]:
        """The hold as plain data (ends_on as ISO date or None)."""
        return {
            "kind": self.kind,
            "value": self.value,
            "reason": self.reason,
            "reference": self.reference,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
        }


def _looks_clear(value: str) -> Literal["email", "phone"] | None:
    if "@" in value:
        return "email"
    digits = sum(ch.isdigit() for ch in value)
    if digits >= 6 and re.fullmatch(r"[+\d\s().-]+", value):
        return "phone"
    return None


def _check_row(
    row: dict[str, Any], label: str, line: int | None, prefix: str
) -> tuple[Hold | None, list[PolicyProblem]]:
    problems: list[PolicyProblem] = []

    def bad(key: str, message: str, choices: list[str] | None = None) -> None:
        problems.append(PolicyProblem(label, line, f"{prefix}{key}", message, choices or []))

    for key in row:
        if key not in HOLD_FIELDS:
            bad(str(key), f"unknown key {key!r}", sorted(HOLD_FIELDS))
    kind = row.get("kind")
    raw_value = row.get("value")
    value = "" if raw_value is None else str(raw_value).strip()
    if kind in ("email", "phone"):
        bad(
            "kind",
            f"clear {kind}s may not be stored; {_HASH_HINT.format(kind=kind)}",
            [f"{kind}_hash"],
        )
    elif kind not in HOLD_KINDS:
        bad(
            "kind", f"unknown hold kind {kind!r}" if kind else "missing hold kind", list(HOLD_KINDS)
        )
    if not value:
        bad("value", "missing value")
    elif kind in ("email_hash", "phone_hash") and not _HEX64.match(value):
        clear = _looks_clear(value)
        hint = _HASH_HINT.format(kind=kind.removesuffix("_hash"))
        # Never echo the value: it may be personal data.
        if clear:
            bad("value", f"looks like a clear {clear}; {hint}")
        else:
            bad("value", f"must be a 64-hex-digit keyed hash; {hint}")
    elif kind in ("customer_id", "conversation_id", "topic", "inbox") and _looks_clear(value):
        bad("value", f"looks like an email or phone number, not a {kind}")
    elif kind == "custom_attribute" and "=" not in value:
        bad("value", "a custom_attribute hold is written key=value")
    for key in ("reason", "reference"):
        if not str(row.get(key) or "").strip():
            bad(key, f"missing {key} (every hold says why and under which ticket)")
    ends_on = row.get("ends_on")
    parsed: date | None = None
    if isinstance(ends_on, datetime):
        parsed = ends_on.date()
    elif isinstance(ends_on, date):
        parsed = ends_on
    elif ends_on not in (None, ""):
        try:
            parsed = date.fromisoformat(str(ends_on).strip())
        except ValueError:
            bad("ends_on", f"{ends_on!r} is not a date (YYYY-MM-DD)")
    if problems:
        return None, problems
    hold = Hold(str(kind), value, str(row["reason"]).strip(), str(row["reference"]).strip(), parsed)
    return hold, []


# Appended to a hold's label when it holds because it could not be evaluated (a fact never
# fetched): unknown is never "does not match".
UNEVALUABLE = " (cannot be evaluated: not fetched)"


def hold_label(hold: Hold) -> str:
    """How plans, audit events and reports name a hold: `kind=value [reference]`."""
    return f"{hold.kind}={hold.value} [{hold.reference}]"


@dataclass(frozen=True)
class HeldConversation:
    """What a conversation-level hold looks at: the conversation's id, inbox and topics
    (`inbox_id` None: not known, which an inbox hold treats as held)."""

    conversation_id: str
    inbox_id: str | None = None
    topic_ids: tuple[str, ...] = ()


def _attr_text(value: Any) -> str:
    # As the planner compares attributes: JSON text of the value (strings bare, booleans lower).
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class HoldRegistry:
    """The legal holds in force, with the key that hashes emails and phones for comparison."""

    holds: tuple[Hold, ...]
    key: bytes

    @classmethod
    def empty(cls, *, key: bytes) -> HoldRegistry:
        """A registry without holds."""
        return cls((), key)

    @classmethod
    def load(
        cls, path: str | Path, *, key: bytes, references: References | None = None
    ) -> HoldRegistry:
        """Read holds from YAML (`holds: [...]`) or CSV (kind,value,reason,reference,ends_on).

        With `references` (the archive's inboxes and topics) an inbox or topic hold must name
        one that exists: an unknown name is a problem listing the valid ones, never a hold
        that silently protects nothing."""
        if not key:
            raise ValueError("the audit key must not be empty")
        file = Path(path)
        label = str(file)
        if file.suffix.lower() == ".csv":
            rows, problems = _read_csv(file, label)
        else:
            rows, problems = _read_yaml(file, label)
        if references is not None:
            for hold, line, where in rows:
                if hold.kind not in KINDS:
                    continue
                resolved = references.resolve(hold.kind, hold.value)
                if isinstance(resolved, Unresolved):
                    problems.append(
                        PolicyProblem(
                            label, line, f"{where}value", resolved.message, resolved.choices
                        )
                    )
        if problems:
            raise PolicyValidationError(sorted(problems, key=lambda p: p.line or 0))
        return cls(tuple(hold for hold, _, _ in rows), key)

    def add(
        self,
        kind: str,
        value: str,
        *,
        reason: str,
        reference: str,
        ends_on: date | None = None,
    ) -> HoldRegistry:
        """A registry with one more hold; kind "email"/"phone" takes a clear value and stores
        only its keyed hash."""
        row: dict[str, Any] = {"kind": kind, "value": value, "reason": reason}
        row |= {"reference": reference, "ends_on": ends_on}
        if kind == "email":
            row |= {"kind": "email_hash", "value": self.hash_email(value)}
        elif kind == "phone":
            row |= {"kind": "phone_hash", "value": self.hash_phone(value)}
        hold, problems = _check_row(row, "(new hold)", None, "")
        if hold is None:
            raise PolicyValidationError(problems)
        return replace(self, holds=(*self.holds, hold))

    def write(self, path: str | Path) -> None:
        """Write the holds as YAML (hashes only, never a clear email or phone)."""
        data = {"holds": [h.as_dict() for h in self.holds]}
        Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def active(self, now: datetime | date) -> list[Hold]:
        """The holds that still apply at `now`."""
        return [h for h in self.holds if h.applies(now)]

    def active_values(self, kind: str, now: datetime | date) -> frozenset[str]:
        """The values of the active holds of one kind."""
        return frozenset(h.value for h in self.active(now) if h.kind == kind)

    def matching(
        self,
        now: datetime | date,
        *,
        customer_id: str | None = None,
        email_hashes: Iterable[str] = (),
        phone_hashes: Iterable[str] = (),
        custom_attributes: Mapping[str, Any] | None = None,
        attributes_known: bool = True,
        conversations: Iterable[HeldConversation] = (),
        names: Mapping[str, Mapping[str, Iterable[str]]] | None = None,
    ) -> list[str]:
        """Labels (`kind=value [reference]`, the planner's) of the active holds that protect
        this subject: the customer itself, one of its email/phone hashes, a custom attribute,
        or any of its conversations (by id, inbox or topic). The deletion engine calls this
        just before each call, with what it has just seen live.

        A hold that cannot be evaluated holds: a custom_attribute hold when the attributes were
        never fetched (`attributes_known` false), an inbox hold for a conversation whose inbox
        is unknown (`inbox_id` None); their labels say so (UNEVALUABLE).
        `names` maps "inboxes"/"topics" to {name: [ids]} so holds may name either ids or names.
        """
        emails, phones = set(email_hashes), set(phone_hashes)
        attrs = {str(k): _attr_text(v) for k, v in (custom_attributes or {}).items()}
        convs = list(conversations)
        lookups = names or {}
        labels = []
        for hold in self.active(now):
            kind, value = hold.kind, hold.value
            unknown = False
            if kind == "customer_id":
                hit = value == customer_id
            elif kind == "email_hash":
                hit = value in emails
            elif kind == "phone_hash":
                hit = value in phones
            elif kind == "custom_attribute":
                key, _, wanted = value.partition("=")
                hit = attrs.get(key) == wanted
                unknown = not hit and not attributes_known
            elif kind == "conversation_id":
                hit = any(c.conversation_id == value for c in convs)
            else:  # inbox or topic, by id or by name
                ids = {
                    value,
                    *lookups.get("topics" if kind == "topic" else "inboxes", {}).get(value, ()),
                }
                if kind == "inbox":
                    hit = any(c.inbox_id in ids for c in convs)
                    unknown = not hit and any(c.inbox_id is None for c in convs)
                else:
                    hit = any(ids.intersection(c.topic_ids) for c in convs)
            if hit:
                labels.append(hold_label(hold))
            elif unknown:
                labels.append(hold_label(hold) + UNEVALUABLE)
        return sorted(set(labels))

    def hash_email(self, email: str) -> str:
        """The keyed hash an `email_hash` hold stores for this email."""
        return keyed_hash(email, kind="email", key=self.key)

    def hash_phone(self, phone: str) -> str:
        """The keyed hash a `phone_hash` hold stores for this phone number."""
        return keyed_hash(phone, kind="phone", key=self.key)

    @property
    def hash(self) -> str:
        """sha256 over the canonical, sorted holds (order and layout of the file don't matter)."""
        rows = sorted(json.dumps(h.as_dict(), sort_keys=True) for h in self.holds)
        return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


_Row = tuple[Hold, int | None, str]  # a hold, its line, its key prefix


def _read_yaml(file: Path, label: str) -> tuple[list[_Row], list[PolicyProblem]]:
    docs, problems = read_yaml_documents(file, label)
    holds: list[_Row] = []
    for data, located in docs:
        if not isinstance(data, dict) or set(data) != {"holds"}:
            extra = sorted(set(data) - {"holds"}) if isinstance(data, dict) else []
            key = extra[0] if extra else "(document)"
            message = f"unknown key {key!r}" if extra else "expected a mapping with `holds: [...]`"
            problems.append(PolicyProblem(label, located.line((key,)), key, message, ["holds"]))
            continue
        rows = data["holds"]
        if not isinstance(rows, list):
            problems.append(PolicyProblem(label, located.line(("holds",)), "holds", "not a list"))
            continue
        for i, row in enumerate(rows):
            line = located.line(("holds", i))
            if not isinstance(row, dict):
                problems.append(PolicyProblem(label, line, f"holds[{i}]", "expected a mapping"))
                continue
            hold, found = _check_row(row, label, line, f"holds[{i}].")
            for p in found:
                key = p.key.removeprefix(f"holds[{i}].")
                problems.append(replace(p, line=located.line(("holds", i, key)) or line))
            if hold is not None:
                holds.append((hold, located.line(("holds", i, "value")) or line, f"holds[{i}]."))
    return holds, problems


def _read_csv(file: Path, label: str) -> tuple[list[_Row], list[PolicyProblem]]:
    text = read_text_bounded(file, label, MAX_HOLDS_CSV_BYTES)
    if isinstance(text, PolicyProblem):
        return [], [text]
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    problems = [
        PolicyProblem(label, 1, str(col), f"unknown column {col!r}", list(HOLD_FIELDS))
        for col in header
        if col not in HOLD_FIELDS
    ]
    if problems:
        return [], problems
    holds: list[_Row] = []
    for row in reader:
        line = reader.line_num
        hold, found = _check_row(dict(row), label, line, f"row {line - 1}.")
        problems += found
        if hold is not None:
            holds.append((hold, line, f"row {line - 1}."))
    return holds, problems
