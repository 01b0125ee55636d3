"""The live re-check: one subject's facts against its policy's filters, with the planner's SQL."""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from retention_policies.compile import (
    children,
    compile_filters,
    describe,
    field_of,
    population_sql,
    reads_rollups,
)
from retention_policies.contact_facts import CONTACT_FACTS, ensure_contacts
from retention_policies.facts import CONVERSATION_FACTS, CUSTOMER_FACTS, ITEM_FACTS, Tables

__all__ = [
    "CHANGED",
    "HOLDS",
    "LIVE_CONVERSATIONS",
    "LIVE_PROFILE",
    "UNKNOWN",
    "FilterResult",
    "PolicyLike",
    "Recheck",
    "Rechecker",
    "SubjectFacts",
    "describe",
    "live_sources",
    "recheck",
]

HOLDS = "holds"  # the filter is true for the subject's live facts
CHANGED = "changed"  # false: the facts it reads changed since planning
UNKNOWN = "unknown"  # NULL (a fact it reads is unknown) or no row: cannot be confirmed

# What a policy's filters may read from Gladly just before a call: the subject's conversations
# (inbox, status, topics, closed time) and the customer's profile (custom attributes).
LIVE_CONVERSATIONS = "conversations"
LIVE_PROFILE = "profile"

# Facts a `value` filter may compare that a live conversation read changes, per resource.
_LIVE_VALUES = {
    "customer": frozenset({"conversation_count", "has_open_conversation"}),
    "conversation": frozenset({"status", "inbox_id", "closed_at"}),
    "contact": frozenset(),
    "item": frozenset(),
}
_CONVERSATION_KINDS = frozenset({"inbox", "topic", "conversation_status"})
_SCHEMAS = (
    ("customers", CUSTOMER_FACTS),
    ("conversations", CONVERSATION_FACTS),
    ("items", ITEM_FACTS),
    ("contacts", CONTACT_FACTS),
)
# The fact tables each resource's population view reads.
_READS: dict[str, set[str]] = {
    "customer": {"customers"},
    "conversation": {"customers", "conversations"},
    "contact": {"customers", "conversations", "contacts"},
    "item": {"customers", "conversations", "items"},
}
_MAX_DETAIL = 600  # characters of a re-check's detail (several filters may fail at once)


class PolicyLike(Protocol):
    """What the re-check needs of a policy (retention_policies.model.Policy)."""

    @property
    def resource(self) -> str: ...

    @property
    def filters(self) -> Sequence[Any]: ...


def live_sources(filters: Sequence[Any], resource: str) -> frozenset[str]:
    """Which live reads the filters depend on (nested filters included): LIVE_CONVERSATIONS,
    LIVE_PROFILE. A policy on ages and item kinds alone depends on none."""
    found: set[str] = set()
    for flt in filters:
        kind = field_of(flt, "type")
        name = field_of(flt, "field")
        if kind == "custom_attribute":
            found.add(LIVE_PROFILE)
        elif (
            kind in _CONVERSATION_KINDS
            or (kind == "age" and name == "conversation_closed")
            or (kind == "value" and name in _LIVE_VALUES.get(resource, ()))
        ):
            found.add(LIVE_CONVERSATIONS)
        found |= live_sources(children(flt), resource)
    return frozenset(found)


@dataclass(frozen=True)
class SubjectFacts:
    """One subject's fact rows (CUSTOMER_FACTS, CONVERSATION_FACTS, ITEM_FACTS as dicts): the
    archive's, with what Gladly says now in their place; a contact's (CONTACT_FACTS) as the
    contact rule finds it in Gladly's live list. Missing keys are null."""

    customers: Sequence[Mapping[str, Any]] = ()
    conversations: Sequence[Mapping[str, Any]] = ()
    items: Sequence[Mapping[str, Any]] = ()
    contacts: Sequence[Mapping[str, Any]] = ()  # CONTACT_FACTS, from the live contact


@dataclass(frozen=True)
class FilterResult:
    """One top-level filter's answer for the subject: HOLDS, CHANGED or UNKNOWN."""

    index: int
    state: str
    text: str  # describe(filter)

    @property
    def why(self) -> str:
        """The filter and what became of it, for the audit log."""
        if self.state == CHANGED:
            return f"filters[{self.index}] {self.text} no longer holds live"
        return f"filters[{self.index}] {self.text} could not be confirmed live"


@dataclass(frozen=True)
class Recheck:
    """Every top-level filter's answer; the subject may be acted on only if all hold."""

    results: tuple[FilterResult, ...] = field(default_factory=tuple)

    @property
    def holds(self) -> bool:
        """Whether every filter still holds."""
        return all(r.state == HOLDS for r in self.results)

    @property
    def failing(self) -> list[FilterResult]:
        """The filters that changed or could not be confirmed, in the policy's order."""
        return [r for r in self.results if r.state != HOLDS]

    @property
    def detail(self) -> str | None:
        """Which filters no longer hold (or cannot be confirmed), None when all hold."""
        text = "; ".join(r.why for r in self.failing)
        if len(text) > _MAX_DETAIL:
            text = text[: _MAX_DETAIL - 1] + "…"
        return text or None


class Rechecker:
    """Evaluates re-checks, each on its thread's own DuckDB connection.

    Opening a connection costs about as much as a Gladly call; refilling its four small
    tables costs a few milliseconds, so each thread keeps one until `close`.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Tables] = []

    def _tables(self) -> Tables:
        tables: Tables | None = getattr(self._local, "tables", None)
        if tables is None:
            tables = Tables.from_arrow(
                customers=CUSTOMER_FACTS.empty_table(),
                conversations=CONVERSATION_FACTS.empty_table(),
                items=ITEM_FACTS.empty_table(),
            )
            tables.con.execute("SET threads=1")
            ensure_contacts(tables)  # empty, filled per re-check like the others
            self._local.tables = tables
            self._local.filled = set()
            with self._lock:
                self._opened.append(tables)
        return tables

    def check(
        self,
        policy: PolicyLike,
        subject_id: str,
        facts: SubjectFacts,
        now: datetime,
        lookups: Mapping[str, Mapping[str, list[str]]] | None = None,
    ) -> Recheck:
        """Each of the policy's top-level filters, compiled as the planner compiles it, for the
        row `subject_id` of the policy's resource built from `facts` only."""
        resource = str(policy.resource)
        population = population_sql(resource)  # an unknown resource fails here
        rollups = resource == "customer" and reads_rollups(policy.filters)
        tables = self._tables()
        con = tables.con
        read = _READS[resource] | ({"conversations"} if rollups else set())
        filled: set[str] = self._local.filled
        for name, schema in _SCHEMAS:
            rows = list(getattr(facts, name)) if name in read else []
            if not rows and name not in filled:
                continue  # empty already: refilling costs milliseconds for nothing
            con.execute(f"DELETE FROM {name}")
            filled.discard(name)
            if rows:
                con.register("_recheck_rows", pa.Table.from_pylist(rows, schema=schema))
                try:
                    con.execute(f"INSERT INTO {name} SELECT * FROM _recheck_rows")
                finally:
                    con.unregister("_recheck_rows")
                filled.add(name)
        if rollups:
            # The customer's inbox / topic / status roll-ups, from the conversations just given.
            Tables(con, rollups_pending=[True]).ensure_rollups()
        # Each top-level filter compiled on its own (the planner's SQL), all in one query.
        compiled = [compile_filters([f], resource, now, lookups or {}) for f in policy.filters]
        columns = ", ".join(f"{c.sql} AS f{i}" for i, c in enumerate(compiled))
        params = [p for c in compiled for p in c.params]
        found = con.execute(
            f"SELECT {columns} FROM ({population}) p WHERE p._id = ?",
            [*params, subject_id],
        ).fetchall()
        values = found[0] if found else (None,) * len(compiled)
        results = []
        for index, (flt, value) in enumerate(zip(policy.filters, values, strict=True)):
            state = UNKNOWN if value is None else (HOLDS if value else CHANGED)
            results.append(FilterResult(index, state, describe(flt)))
        return Recheck(tuple(results))

    def close(self) -> None:
        """Close every thread's connection (the rechecker may not be used afterwards)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for tables in opened:
            tables.con.close()


def recheck(
    policy: PolicyLike,
    subject_id: str,
    facts: SubjectFacts,
    now: datetime,
    lookups: Mapping[str, Mapping[str, list[str]]] | None = None,
) -> Recheck:
    """One re-check on a connection of its own (`Rechecker` reuses one per thread)."""
    checker = Rechecker()
    try:
        return checker.check(policy, subject_id, facts, now, lookups)
    finally:
        checker.close()
