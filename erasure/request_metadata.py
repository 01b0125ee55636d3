"""Why a request is asked, as the audit log may hold it: a reason as given, and a request
file's other columns (a ticket system's reason, ticket, notes…) as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from audit_log.fields import check_value
from audit_log.files import AuditError

__all__ = [
    "KEPT_COLUMN",
    "MAX_EXTRA_COLUMNS",
    "ExtraColumn",
    "MetadataReader",
    "audited_metadata",
    "column_name_ok",
    "looks_like_phone",
    "metadata_hash",
    "reason_problem",
]

# Other columns a request file may carry; each costs ~65 bytes of memory per distinct value.
MAX_EXTRA_COLUMNS = 50
# The one extra column that `keep_reason` keeps as given (checked like --reason).
KEPT_COLUMN = "reason"
# A header cell that may be named in errors and the audit log: a name, never an email or phone.
_COLUMN_NAME = re.compile(r"^[^\W\d_][\w .#()/-]{0,63}$")
_PHONEISH = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d[\d\s().-]{5,}\d")


def looks_like_phone(text: str) -> bool:
    """Whether the text holds a phone number (7+ digits standing free; not a date)."""
    # A ticket reference like INC0012345 is fine; a free-standing run of 7+ digits is not.
    text = re.sub(r"\d{4}-\d{2}-\d{2}", " ", text)  # a date is not a phone number
    return any(sum(c.isdigit() for c in m.group()) >= 7 for m in _PHONEISH.finditer(text))


def reason_problem(text: str) -> bool:
    """Whether a reason may not be written to the audit log as given: over 200 characters, an
    email or a phone in it."""
    if len(text) > 200 or "@" in text or looks_like_phone(text):
        return True
    try:  # and the audit log's own guard, so a reason never stops a run half-way
        check_value("detail", text)
    except AuditError:
        return True
    return False


def column_name_ok(name: str) -> bool:
    """Whether a header cell is a column name we may show and audit (a file without its header
    row has a person's email where a column name should be)."""
    return bool(_COLUMN_NAME.match(name)) and not looks_like_phone(name)


@dataclass(frozen=True)
class ExtraColumn:
    """A request file's column besides the identifiers, as this process holds it: the sha256
    of each distinct value its rows gave, never the values; with `keep_reason`, the `reason`
    as given (checked like --reason)."""

    name: str
    digests: frozenset[bytes] = field(default=frozenset(), repr=False)
    kept: str | None = field(default=None, repr=False)


def metadata_hash(key: bytes, column: str, values: Iterable[str]) -> str | None:
    """The keyed hash an extra column is audited as: HMAC-SHA256 (the audit key) over its name
    and the distinct values its rows gave (each trimmed; empty ones left out); None when no row
    gave one. With the key, the ticket a request was filed under finds it in the log."""
    return _metadata_mac(key, column, {_digest(v) for v in values if v.strip()})


def audited_metadata(columns: Iterable[ExtraColumn], key: bytes) -> dict[str, str | None]:
    """The columns as the audit log holds them: name → keyed hash (metadata_hash), or the
    reason as given when it was kept; None for a column no row filled in."""
    return {
        c.name: c.kept if c.kept is not None else _metadata_mac(key, c.name, c.digests)
        for c in columns
    }


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.strip().encode()).digest()


def _metadata_mac(key: bytes, column: str, digests: Iterable[bytes]) -> str | None:
    ordered = sorted(set(digests))
    if not ordered:
        return None
    text = "\n".join([column, *(d.hex() for d in ordered)])
    return hmac.new(key, b"request metadata\n" + text.encode(), hashlib.sha256).hexdigest()


class MetadataReader:
    """The extra columns' values as a file's rows are read: digests only, and the reason kept
    (`keep_reason`: one per request, checked row by row, never echoed)."""

    def __init__(self, names: Iterable[str], keep_reason: bool) -> None:
        self._digests: dict[str, set[bytes]] = {n: set() for n in names}
        self._keep = keep_reason and KEPT_COLUMN in self._digests
        self._kept: tuple[str, int] | None = None  # the reason kept, and the row that gave it

    def add(self, cells: Mapping[str, str], where: str, line: int) -> list[str]:
        """Take one row's values (trimmed); the problems of its reason, by row."""
        for name, seen in self._digests.items():
            if cells.get(name):
                seen.add(_digest(cells[name]))
        reason = cells.get(KEPT_COLUMN, "")
        if not self._keep or not reason:
            return []
        if reason_problem(reason):
            return [
                f"{where}: the {KEPT_COLUMN} cannot be kept as given (--keep-reason): it is "
                "written to the audit log, so it must be a short ticket reference (≤ 200 "
                "characters, no email or phone); shorten it, or leave out --keep-reason"
            ]
        if self._kept is None:
            self._kept = (reason, line)
        elif reason != self._kept[0]:
            return [
                f"{where}: its {KEPT_COLUMN} differs from row {self._kept[1]}'s; with "
                "--keep-reason a request keeps one reason: make them agree, or leave out "
                "--keep-reason"
            ]
        return []

    def columns(self) -> tuple[ExtraColumn, ...]:
        """The columns read, in the header's order."""
        kept = self._kept[0] if self._keep and self._kept else None
        return tuple(
            ExtraColumn(name, frozenset(seen), kept if name == KEPT_COLUMN else None)
            for name, seen in self._digests.items()
        )
