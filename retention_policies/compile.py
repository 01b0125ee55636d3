"""Policy filters compiled to DuckDB SQL over a population view, with bound parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from retention_policies.facts import FACT_FIELDS
from retention_policies.vocab import parse_duration

__all__ = [
    "FETCHED_FACTS",
    "Compiled",
    "FetchedLeaf",
    "UnsupportedFilter",
    "children",
    "compile_filters",
    "describe",
    "fetched_leaves",
    "field_of",
    "population_sql",
    "reads_rollups",
]


class UnsupportedFilter(ValueError):
    """A filter this evaluator cannot compile for the policy's resource (a bug, never skipped)."""


# Every population view exposes the same columns: `_id` plus the facts filters read.
# `_last_activity` is always the customer's last activity (Gladly's "last contact").
# Facts only the API gives are NULL while never fetched — unknown, which is not "absent":
# `_inbox_ids` (a conversation's inbox; for a customer, NULL when any of its conversations'
# is unknown) and `_attrs` (the customer's custom attributes, "{}" once fetched and empty).
_POPULATION: dict[str, str] = {
    "customer": """
        SELECT c.customer_id AS _id, c.customer_id AS _customer_id,
            CAST(NULL AS VARCHAR) AS _conversation_id,
            c.last_activity AS _last_activity, c.first_activity AS _conv_created,
            CAST(NULL AS TIMESTAMPTZ) AS _conv_closed, c.last_activity AS _conv_last,
            CAST(NULL AS TIMESTAMPTZ) AS _item_time, c.conversation_statuses AS _statuses,
            c.inbox_ids AS _inbox_ids, c.topic_ids AS _topic_ids, c.channels AS _channels,
            c.custom_attributes AS _attrs, c.*
        FROM customers c""",
    "conversation": """
        SELECT v.conversation_id AS _id, v.customer_id AS _customer_id,
            v.conversation_id AS _conversation_id,
            c.last_activity AS _last_activity, v.created_at AS _conv_created,
            v.closed_at AS _conv_closed, v.last_activity AS _conv_last,
            CAST(NULL AS TIMESTAMPTZ) AS _item_time,
            CASE WHEN v.status IS NULL THEN [] ELSE [v.status] END AS _statuses,
            CASE WHEN v.inbox_id IS NOT NULL THEN [v.inbox_id] END AS _inbox_ids,
            v.topic_ids AS _topic_ids, v.channels AS _channels,
            v.custom_attributes AS _attrs, v.*
        FROM conversations v LEFT JOIN customers c ON c.customer_id = v.customer_id""",
    # A contact's own columns are its first and last item's times; the rest as an item's.
    "contact": """
        SELECT t.contact_id AS _id, t.customer_id AS _customer_id,
            t.conversation_id AS _conversation_id,
            c.last_activity AS _last_activity, v.created_at AS _conv_created,
            v.closed_at AS _conv_closed, v.last_activity AS _conv_last,
            CAST(NULL AS TIMESTAMPTZ) AS _item_time,
            t.started_at AS _contact_started, t.last_activity AS _contact_last,
            CASE WHEN v.status IS NULL THEN [] ELSE [v.status] END AS _statuses,
            CASE WHEN v.inbox_id IS NOT NULL THEN [v.inbox_id] END AS _inbox_ids,
            coalesce(v.topic_ids, []) AS _topic_ids, t.channels AS _channels,
            c.custom_attributes AS _attrs, t.*
        FROM contacts t
        LEFT JOIN conversations v ON v.conversation_id = t.conversation_id
        LEFT JOIN customers c ON c.customer_id = t.customer_id""",
    "item": """
        SELECT i.item_id AS _id, i.customer_id AS _customer_id,
            i.conversation_id AS _conversation_id,
            c.last_activity AS _last_activity, v.created_at AS _conv_created,
            v.closed_at AS _conv_closed, v.last_activity AS _conv_last,
            i."timestamp" AS _item_time,
            CASE WHEN v.status IS NULL THEN [] ELSE [v.status] END AS _statuses,
            CASE WHEN i.conversation_id IS NULL THEN []
                WHEN v.inbox_id IS NOT NULL THEN [v.inbox_id] END AS _inbox_ids,
            coalesce(v.topic_ids, []) AS _topic_ids, [i.content_type] AS _channels,
            c.custom_attributes AS _attrs, i.*
        FROM items i
        LEFT JOIN conversations v ON v.conversation_id = i.conversation_id
        LEFT JOIN customers c ON c.customer_id = i.customer_id""",
}

_AGE_COLUMNS = {
    "last_activity": "_last_activity",
    "conversation_created": "_conv_created",
    "conversation_closed": "_conv_closed",
    "conversation_last_activity": "_conv_last",
    "item_time": "_item_time",
    "contact_started": "_contact_started",
    "contact_last_activity": "_contact_last",
}
_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def population_sql(resource: str) -> str:
    """The SELECT giving one row per `resource` (customer, conversation, contact, item) with its
    facts (a contact's need retention_policies.contact_facts.ensure_contacts first)."""
    if resource not in _POPULATION:
        raise UnsupportedFilter(f"unknown resource {resource!r}")
    return _POPULATION[resource]


@dataclass
class Compiled:
    """A boolean SQL expression over the population view and its positional parameters."""

    sql: str
    params: list[Any] = field(default_factory=list)


def field_of(flt: Any, name: str) -> Any:
    """A filter's field, whether the filter is a model or its canonical dict."""
    if isinstance(flt, Mapping):
        return flt.get(name)
    if name == "in":
        return getattr(flt, "in_", None)
    return getattr(flt, name, None)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(days=value)
    raise UnsupportedFilter(f"duration {value!r} is not normalised")


class _Compiler:
    def __init__(
        self, resource: str, now: datetime, lookups: Mapping[str, Mapping[str, list[str]]]
    ) -> None:
        self.resource = resource
        self.now = now
        self.lookups = lookups
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def all_of(self, filters: Sequence[Any]) -> str:
        return "(" + " AND ".join(self.one(f) for f in filters) + ")"

    def one(self, flt: Any) -> str:
        kind = field_of(flt, "type")
        if kind == "and":
            return self.all_of(field_of(flt, "filters"))
        if kind == "or":
            return "(" + " OR ".join(self.one(f) for f in field_of(flt, "filters")) + ")"
        if kind == "not":
            return f"(NOT {self.one(field_of(flt, 'filter'))})"
        # A leaf over a fact the archive holds is two-valued: a missing fact makes it false.
        # A leaf over a fact only the API gives is NULL (unknown) while that fact was never
        # fetched, and AND / OR / NOT keep it unknown unless the other filters decide alone.
        sql = f"coalesce(({self.leaf(kind, flt)}), false)"
        fetched = FETCHED_FACTS.get(kind)
        if fetched is None:
            return sql
        return f"(CASE WHEN NOT ({fetched.unknown_sql}) THEN {sql} END)"

    def leaf(self, kind: str, flt: Any) -> str:
        if kind == "age":
            column = _AGE_COLUMNS.get(field_of(flt, "field"))
            if column is None:
                raise UnsupportedFilter(f"unknown age field {field_of(flt, 'field')!r}")
            older, newer = field_of(flt, "older_than"), field_of(flt, "newer_than")
            if older is not None:
                return f"{column} < {self.bind(self.now - _duration(older))}"
            return f"{column} >= {self.bind(self.now - _duration(newer))}"
        if kind == "inbox":
            return self.listed(
                "_inbox_ids", field_of(flt, "in"), field_of(flt, "not_in"), "inboxes"
            )
        if kind == "channel":
            return self.listed("_channels", field_of(flt, "in"), field_of(flt, "not_in"), None)
        if kind == "topic":
            any_of, none_of = field_of(flt, "any_of"), field_of(flt, "none_of")
            return self.listed("_topic_ids", any_of, none_of, "topics")
        if kind == "conversation_status":
            return self.listed("_statuses", field_of(flt, "in"), None, None)
        if kind == "custom_attribute":
            key = str(field_of(flt, "key"))
            path = self.bind('$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')
            return self.compare(f"json_extract_string(_attrs, {path})", flt, attribute=True)
        if kind == "value":
            name = field_of(flt, "field")
            if name not in FACT_FIELDS.get(self.resource, frozenset()):
                raise UnsupportedFilter(f"field {name!r} is not a {self.resource} fact")
            return self.compare(f'"{name}"', flt, attribute=False)
        raise UnsupportedFilter(f"unknown filter type {kind!r}")

    def listed(
        self, column: str, yes: list[str] | None, no: list[str] | None, lookup: str | None
    ) -> str:
        values = yes if yes is not None else no
        names = self.lookups.get(lookup, {}) if lookup else {}
        resolved = sorted({v for value in values or [] for v in [value, *names.get(value, [])]})
        hit = f"list_has_any({column}, {self.bind(resolved)}::VARCHAR[])" if resolved else "false"
        return hit if yes is not None else f"NOT {hit}"

    def compare(self, column: str, flt: Any, *, attribute: bool) -> str:
        op, value = field_of(flt, "op"), field_of(flt, "value")
        if op == "exists":
            return f"{column} IS NOT NULL"
        if op == "missing":
            return f"{column} IS NULL"
        if attribute:
            # Attributes are JSON: compare as text, or as numbers when the value is a number.
            numeric = _numeric(value)
            column = f"TRY_CAST({column} AS DOUBLE)" if numeric else column
            value = _attr_value(value, numeric)
        if op in ("in", "not_in"):
            test = f"list_contains({self.bind(list(value))}, {column})"
            return test if op == "in" else f"NOT {test}"
        if op not in _COMPARE:
            raise UnsupportedFilter(f"unknown op {op!r}")
        return f"{column} {_COMPARE[op]} {self.bind(value)}"


def _numeric(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def _attr_value(value: Any, numeric: bool) -> Any:
    def one(v: Any) -> Any:
        if numeric:
            return float(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    return [one(v) for v in value] if isinstance(value, list) else one(value)


_ROLLUP_FILTERS = frozenset({"inbox", "topic", "conversation_status"})


def reads_rollups(filters: Sequence[Any]) -> bool:
    """Whether a customer policy's filters read the customers' inbox / topic / status roll-ups."""
    for flt in filters:
        kind = field_of(flt, "type")
        if kind in _ROLLUP_FILTERS or reads_rollups(children(flt)):
            return True
    return False


@dataclass(frozen=True)
class FetchedFact:
    """A fact only the API gives: how the population says it is unknown, and what fetches it."""

    name: str
    unknown_sql: str


FETCHED_FACTS: dict[str, FetchedFact] = {
    "inbox": FetchedFact("the conversation's inbox", "_inbox_ids IS NULL"),
    "custom_attribute": FetchedFact("the customer's custom attributes", "_attrs IS NULL"),
}


@dataclass(frozen=True)
class FetchedLeaf:
    """A filter (by its path in the policy) that reads a fact only the API gives."""

    path: str
    kind: str
    description: str


def children(flt: Any) -> list[Any]:
    """The filters directly inside an `and`, `or` or `not` (none for a leaf)."""
    kind = field_of(flt, "type")
    if kind in ("and", "or"):
        return list(field_of(flt, "filters") or [])
    if kind == "not":
        return [field_of(flt, "filter")]
    return []


def _duration_text(value: Any) -> str:
    """A duration as days (or hours, minutes, seconds), however the filter spells it."""
    try:
        seconds = int(parse_duration(value).total_seconds())
    except ValueError:
        return str(value)
    for unit, size, prefix in (("D", 86400, "P"), ("H", 3600, "PT"), ("M", 60, "PT")):
        if seconds % size == 0:
            return f"{prefix}{seconds // size}{unit}"
    return f"PT{seconds}S"


def _listed(values: Any) -> str:
    return "[" + ", ".join(str(v) for v in values or []) + "]"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return _listed(_scalar(v) for v in value)
    return str(value)


def describe(flt: Any) -> str:
    """The filter in a few words, without personal data: a custom attribute's key and operator
    are named, never the value it is compared with (`custom_attribute loyaltyTier ne …`)."""
    kind = field_of(flt, "type")
    if kind == "age":
        older = field_of(flt, "older_than")
        which = "older_than" if older is not None else "newer_than"
        return f"age {field_of(flt, 'field')} {which} {_duration_text(field_of(flt, which))}"
    if kind in ("inbox", "channel", "conversation_status"):
        which = "in" if field_of(flt, "in") is not None else "not_in"
        return f"{kind} {which} {_listed(field_of(flt, which))}"
    if kind == "topic":
        which = "any_of" if field_of(flt, "any_of") is not None else "none_of"
        return f"topic {which} {_listed(field_of(flt, which))}"
    if kind == "custom_attribute":
        op = field_of(flt, "op")
        return f"custom_attribute {field_of(flt, 'key')} {op}" + (
            "" if op in ("exists", "missing") else " …"
        )
    if kind == "value":
        op = field_of(flt, "op")
        value = "" if op in ("exists", "missing") else f" {_scalar(field_of(flt, 'value'))}"
        return f"value {field_of(flt, 'field')} {op}{value}"
    if kind in ("and", "or"):
        return f"{kind}(" + ", ".join(describe(f) for f in children(flt)) + ")"
    if kind == "not":
        return f"not({describe(field_of(flt, 'filter'))})"
    return str(kind)


def fetched_leaves(filters: Sequence[Any], path: str = "filters") -> list[FetchedLeaf]:
    """Every filter, nested ones too, over a fact only the API gives (inbox, custom attributes)."""
    return [leaf for i, flt in enumerate(filters) for leaf in _fetched_in(flt, f"{path}[{i}]")]


def _fetched_in(flt: Any, here: str) -> list[FetchedLeaf]:
    kind = field_of(flt, "type")
    if kind in FETCHED_FACTS:
        return [FetchedLeaf(here, kind, describe(flt))]
    if kind in ("and", "or"):
        return fetched_leaves(field_of(flt, "filters"), f"{here}.filters")
    if kind == "not":
        return _fetched_in(field_of(flt, "filter"), f"{here}.filter")
    return []


def compile_filters(
    filters: Sequence[Any],
    resource: str,
    now: datetime,
    lookups: Mapping[str, Mapping[str, list[str]]] | None = None,
) -> Compiled:
    """Compile a policy's filters (implicitly ANDed) for `resource`.

    `lookups` maps "inboxes"/"topics" to {name: [ids]} so filters may name either ids or names.
    """
    compiler = _Compiler(resource, now, lookups or {})
    population_sql(resource)
    sql = compiler.all_of(filters)
    return Compiled(sql, compiler.params)
