"""Pure evaluation: policies + fact tables + holds + now → Plan (no I/O, no clock)."""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from retention_policies.compile import (
    FETCHED_FACTS,
    FetchedLeaf,
    compile_filters,
    fetched_leaves,
    population_sql,
    reads_rollups,
)
from retention_policies.contact_facts import ensure_contacts
from retention_policies.facts import FACT_FIELDS, Progress, Tables
from retention_policies.hold_tables import hold_rows, prepare_holds
from retention_policies.loader import dotted, named_values
from retention_policies.model import Limits
from retention_policies.plan import _ORDER, TARGET_SCHEMA, Plan
from retention_policies.references import References, Unresolved
from retention_policies.vocab import DELETABLE_TYPES, REDACTABLE_TYPES

__all__ = ["POLICIES_PHASE", "HoldsLike", "evaluate"]

NO_HOLDS_HASH = hashlib.sha256(b"no holds").hexdigest()
# progress(POLICIES_PHASE, policies evaluated, policies)
POLICIES_PHASE = "policies evaluated"


class HoldsLike(Protocol):
    """What evaluate needs of a hold registry (retention_policies.holds.HoldRegistry)."""

    @property
    def hash(self) -> str: ...

    def active(self, now: datetime) -> Sequence[Any]: ...


# A customer's inbox / topic / status roll-ups are built only when a policy reads them
# (Tables.ensure_rollups), so they are not part of its facts: the plan must not depend on it.
_FACT_LISTS = {
    "customer": ["channels"],
    "conversation": ["channels", "topic_ids"],
    "contact": ["channels"],
    "item": [],
}
# A contact's item targets name their contact as a one-off `delete --contact` names it.
_FACT_ALIASES = {"contact": {"contact": "contact_id", "contact_kind": "kind"}}


def _facts_json(resource: str, alias: str = "m") -> str:
    cols = {c: c for c in sorted(FACT_FIELDS[resource]) + _FACT_LISTS[resource]}
    cols.update(_FACT_ALIASES.get(resource, {}))
    return (
        "CAST(to_json(struct_pack("
        + ", ".join(f'"{k}" := {alias}."{c}"' for k, c in cols.items())
        + ")) AS VARCHAR)"
    )


def _matched_columns(resource: str) -> list[str]:
    own = sorted(FACT_FIELDS[resource] | set(_FACT_LISTS[resource]))
    head = ["_id", "_customer_id", "_conversation_id", "_conv_last", "_conv_closed"]
    return [*head, "_inbox_ids", *own]


_HOLD_JOIN = {
    "customer": ("LEFT JOIN _held_customer h ON h.id = p._id", "h.labels"),
    "conversation": ("LEFT JOIN _held_conversation h ON h.id = p._id", "h.labels"),
    "contact": ("LEFT JOIN _held_conversation h ON h.id = p._conversation_id", "h.labels"),
    "item": (
        "LEFT JOIN _held_conversation hc ON hc.id = p._conversation_id "
        "LEFT JOIN _held_customer_direct hd "
        "ON p._conversation_id IS NULL AND hd.id = p._customer_id",
        "coalesce(hc.labels, hd.labels)",
    ),
}
_COLUMNS = ", ".join(TARGET_SCHEMA.names)
_OPERATION = (
    "CASE WHEN {a}.redactable THEN 'redact' WHEN {a}.deletable THEN 'delete' "
    "ELSE 'not_erasable_via_api' END"
)


def _rows_sql(resource: str, action: Any, held: bool, head: list[Any]) -> tuple[str, list[Any]]:
    """SELECT producing TARGET_SCHEMA rows from `_m` (the matched population) for one action."""
    kind = str(action.type)
    where = "m._labels IS NOT NULL" if held else "m._labels IS NULL"
    labels = "coalesce(m._labels, [])"
    facts = _facts_json(resource)
    if resource == "customer":
        close = bool(getattr(action, "close_open_conversations", False))
        erasable = "false" if held else f"(NOT m.has_open_conversation OR {close})"
        return (
            f"""SELECT 'customer', m._id, m._customer_id, NULL, ?, ?, ?, ?, {erasable}, NULL,
                NULL, m.last_activity, NULL, m.has_open_conversation, {close}, {facts}, {labels}
            FROM _m m WHERE {where}""",
            [*head, kind],
        )
    inbox = "m._inbox_ids[1]"
    if resource == "contact":
        return _contact_rows_sql(where, facts, labels, inbox), [*head]
    if held or resource == "conversation":
        target_type = "'conversation'" if resource == "conversation" else "'item'"
        operation = "?" if held else "'not_erasable_via_api'"
        content = "m.content_type" if resource == "item" else "NULL"
        last = (
            "m.last_activity"
            if resource == "conversation"
            else 'coalesce(m._conv_last, m."timestamp")'
        )
        closed = "m.closed_at" if resource == "conversation" else "m._conv_closed"
        own = f"""SELECT {target_type}, m._id, m._customer_id, m._conversation_id, ?, ?, ?,
                {operation}, false, {content}, {inbox}, {last}, {closed}, NULL, NULL, {facts},
                {labels}
            FROM _m m WHERE {where}"""
        if held:
            return own, [*head, kind]
        erase = _OPERATION.format(a="i")
        items = f"""SELECT 'item', i.item_id, m._customer_id, m._id, ?, ?, ?, {erase},
                i.redactable OR i.deletable, i.content_type, {inbox}, m.last_activity, m.closed_at,
                NULL, NULL, {facts}, {labels}
            FROM _m m JOIN items i ON i.conversation_id = m._id WHERE {where}"""
        return f"{own} UNION ALL {items}", head + head
    types = sorted(getattr(action, "content_types", None) or [])
    scope = "(NOT (m.redactable OR m.deletable)" + (
        " OR list_contains(?::VARCHAR[], m.content_type))" if types else " OR true)"
    )
    return (
        f"""SELECT 'item', m._id, m._customer_id, m._conversation_id, ?, ?, ?,
            {_OPERATION.format(a="m")}, m.redactable OR m.deletable, m.content_type, {inbox},
            coalesce(m._conv_last, m."timestamp"), m._conv_closed, NULL, NULL, {facts}, {labels}
        FROM _m m WHERE {where} AND {scope}""",
        [*head, types] if types else head,
    )


def _contact_rows_sql(where: str, facts: str, labels: str, inbox: str) -> str:
    """One row per item of each matched contact (an item inside two of them once, under the
    first contact's facts), operations as for a conversation's items."""
    redactable = ", ".join(f"'{t}'" for t in sorted(REDACTABLE_TYPES))
    deletable = ", ".join(f"'{t}'" for t in sorted(DELETABLE_TYPES))
    operation = (
        f"CASE WHEN ci.content_type IN ({redactable}) THEN 'redact' "
        f"WHEN ci.content_type IN ({deletable}) THEN 'delete' ELSE 'not_erasable_via_api' END"
    )
    return f"""SELECT 'item', ci.item_id, m._customer_id, m._conversation_id, ?, ?, ?,
            {operation}, ci.content_type IN ({redactable}, {deletable}), ci.content_type,
            {inbox}, m.last_activity, m._conv_closed, NULL, NULL, {facts}, {labels}
        FROM _m m JOIN contact_items ci
            ON ci.contact_id = m._id AND ci.conversation_id = m._conversation_id
        WHERE {where}
        QUALIFY row_number() OVER (PARTITION BY ci.item_id ORDER BY m._id) = 1"""


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, policy: Any, resource: str, held: bool
) -> None:
    action = policy.actions[0]
    head = [policy.name, policy.version_hash, str(action.type)]
    sql, params = _rows_sql(resource, action, held, head)
    con.execute(f"INSERT INTO {table} ({_COLUMNS}) {sql}", params)


def evaluate(
    policies: Sequence[Any],
    tables: Tables,
    holds: HoldsLike | None,
    now: datetime,
    *,
    progress: Progress | None = None,
) -> Plan:
    """Evaluate `policies` against `tables` at `now`; holds always win, limits block.

    Per enabled policy: its filters (ANDed) select rows of the resource's fact table; rows under
    an active hold go to `held` (never to `targets`); if what is left exceeds `max_targets` or
    `max_percent` of the population the policy is blocked and contributes no targets.
    `erase_conversation` expands to one row per item (redact / delete / not_erasable_via_api)
    plus a not_erasable_via_api row for the conversation record itself; `erase_contact` to one
    row per item of the contact (retention_policies.contacts), its id in the row's facts.
    `progress` hears the policies evaluated (POLICIES_PHASE).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if any(
        p.enabled and str(p.resource) == "customer" and reads_rollups(p.filters) for p in policies
    ):
        tables.ensure_rollups()
    if any(p.enabled and str(p.resource) == "contact" for p in policies):
        ensure_contacts(tables)
    con = tables.con.cursor()
    try:
        con.execute("SET TimeZone='UTC'")
        references = References.from_connection(con)
        lookups = references.lookups()
        active = list(holds.active(now)) if holds is not None else []
        prepare_holds(con, hold_rows(active, lookups), getattr(holds, "key", None))
        ddl = ", ".join(f"{f.name} {_ddl(f.type)}" for f in TARGET_SCHEMA)
        con.execute(f"CREATE TEMP TABLE _targets ({ddl})")
        con.execute(f"CREATE TEMP TABLE _held ({ddl})")
        outcomes: list[dict[str, Any]] = []
        for policy in policies:
            if progress is not None:
                progress(POLICIES_PHASE, len(outcomes), len(policies))
            outcomes.append(_evaluate_one(con, policy, references, now))
        if progress is not None:
            progress(POLICIES_PHASE, len(outcomes), len(policies))
        targets = con.sql(f"SELECT * FROM _targets ORDER BY {_ORDER}").to_arrow_table()
        held = con.sql(f"SELECT * FROM _held ORDER BY {_ORDER}").to_arrow_table()
    finally:
        con.close()
    return Plan(
        now=now,
        targets=targets,
        held=held,
        policies=sorted(outcomes, key=lambda o: str(o["name"])),
        holds_hash=str(holds.hash) if holds is not None else NO_HOLDS_HASH,
    )


def _ddl(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_list(kind):
        return "VARCHAR[]"
    return "VARCHAR"


def _evaluate_one(
    con: duckdb.DuckDBPyConnection, policy: Any, references: References, now: datetime
) -> dict[str, Any]:
    resource = str(policy.resource)
    action = policy.actions[0]
    outcome: dict[str, Any] = {
        "name": policy.name,
        "version_hash": policy.version_hash,
        # What the engine re-checks live just before each call (its filters), hashed with
        # the plan so an approval covers the policy text as well as its targets.
        "definition": policy.canonical(),
        "resource": resource,
        "action": str(action.type),
        "enabled": bool(policy.enabled),
        "status": "disabled",
        "reason": None,
        "population": 0,
        "matched": 0,
        "held": 0,
        "eligible": 0,
    }
    if not policy.enabled:
        return outcome
    table = {
        "customer": "customers",
        "conversation": "conversations",
        "contact": "contacts",
        "item": "items",
    }[resource]
    pop_row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    population = int(pop_row[0]) if pop_row else 0
    outcome["population"] = population
    # A name that resolves to nothing would match nothing: the policy is blocked instead (the
    # loader refuses it first; this guards callers that evaluate without the loader).
    unresolved = [
        f"{dotted(path)}: {found.message}"
        for kind, value, path in named_values(policy.filters, ("filters",))
        if isinstance(found := references.resolve(kind, value), Unresolved)
    ]
    if unresolved:
        outcome.update(status="blocked", reason="; ".join(unresolved))
        return outcome
    compiled = compile_filters(policy.filters, resource, now, references.lookups())
    join, labels = _HOLD_JOIN[resource]
    # Only what the target rows read: materialising every population column costs seconds.
    cols = ", ".join(f'p."{c}"' for c in _matched_columns(resource))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _m AS SELECT {cols}, {labels} AS _labels
        FROM ({population_sql(resource)}) p {join} WHERE {compiled.sql}""",
        compiled.params,
    )
    row = con.execute("SELECT count(*), count(_labels) FROM _m").fetchone()
    matched, held = (int(row[0]), int(row[1])) if row else (0, 0)
    eligible = matched - held
    outcome.update(population=population, matched=matched, held=held, eligible=eligible)
    _insert(con, "_held", policy, resource, held=True)
    limits = policy.limits
    reason = _undecided(con, policy, resource, compiled.sql, compiled.params, population, table)
    if reason is None and eligible > limits.max_targets:
        reason = f"{eligible} targets exceed max_targets {limits.max_targets}"
        reason += _default_note(limits, "max_targets")
    elif reason is None and eligible * 100 > limits.max_percent * population:
        percent = 100 * eligible / population if population else 0.0
        reason = (
            f"{eligible} of {population} {table} ({percent:.2f}%) exceed "
            f"max_percent {limits.max_percent}"
        ) + _default_note(limits, "max_percent")
    if reason is not None:
        outcome.update(status="blocked", reason=reason)
    else:
        outcome["status"] = "planned"
        _insert(con, "_targets", policy, resource, held=False)
    con.execute("DROP TABLE _m")
    return outcome


_FETCH_HINT = (
    "fetch them with `gladly-pipeline enrich` (repeat until it reports no backlog) and plan again"
)


def _undecided(
    con: duckdb.DuckDBPyConnection,
    policy: Any,
    resource: str,
    where: str,
    params: list[Any],
    population: int,
    table: str,
) -> str | None:
    """Why the policy cannot be decided for some of its population, or None when it can.

    A filter over a fact only the API gives (inbox, custom attributes) is unknown where that
    fact was never fetched; a row whose selection depends on it is neither selected nor left
    out: the whole policy is blocked, naming each such filter and how many rows it leaves open.
    """
    leaves: list[FetchedLeaf] = fetched_leaves(policy.filters)
    if not leaves:
        return None
    kinds = sorted({leaf.kind for leaf in leaves})
    counts = ", ".join(f"count(*) FILTER (WHERE {FETCHED_FACTS[k].unknown_sql})" for k in kinds)
    row = con.execute(
        f"SELECT count(*), {counts} FROM ({population_sql(resource)}) p WHERE ({where}) IS NULL",
        params,
    ).fetchone()
    if not row or not row[0]:
        return None
    unknown = dict(zip(kinds, (int(n) for n in row[1:]), strict=True))
    parts = [
        f"{leaf.path} ({leaf.description}) needs {FETCHED_FACTS[leaf.kind].name}, never fetched "
        f"for {unknown[leaf.kind]}"
        for leaf in leaves
        if unknown[leaf.kind]
    ]
    return (
        f"policy {policy.name}: cannot decide {int(row[0])} of {population} {table}: "
        + "; ".join(parts)
        + "; "
        + _FETCH_HINT
    )


def _default_note(limits: Limits, name: str) -> str:
    if limits.declared(name):
        return ""
    return f" (the default; declare `limits: {{{name}: …}}` in the policy to allow more)"
