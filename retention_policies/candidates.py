"""Which customers' profiles a plan needs: the candidates of policies over custom attributes.

Custom attributes exist only on the profile (one GET per customer). Fetching every customer's
costs hours at a real organisation's size, and most are never in question: a policy's other
filters (age, channel, inbox…) already leave them out. A customer is a candidate when

- an enabled policy reads custom attributes (a filter, or an active hold on one), and
- the policy's other filters select it: its filters, with the attributes taken as unknown,
  select it or cannot decide it (SQL's unknown), and
- its attributes are unknown — never fetched, or changed since (an event recorded it) — or
  older than `max_age` (Gladly's documented events stream carries no profile changes, so a
  profile read a week ago is read again before a plan relies on it; the engine re-reads it
  once more just before acting).

Fetching exactly these lets the plan decide every policy; a customer left out is one the
policy leaves alone whatever its attributes say.
"""

# SQL here is built only from our own compiled filters; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gladly_archive.keyed import audit_key
from retention_policies.compile import (
    compile_filters,
    fetched_leaves,
    population_sql,
    reads_rollups,
)
from retention_policies.contact_facts import ensure_contacts
from retention_policies.facts_cache import facts_tables
from retention_policies.loader import load_policies
from retention_policies.planning import load_inputs
from retention_policies.references import References

__all__ = ["PROFILE_MAX_AGE", "ProfileCandidates", "profile_candidates"]

PROFILE_MAX_AGE = timedelta(days=7)


@dataclass
class ProfileCandidates:
    """Customers whose custom attributes a plan needs and does not have, per policy too."""

    customer_ids: set[str] = field(default_factory=set)
    per_policy: dict[str, int] = field(default_factory=dict)
    customers: int = 0  # the archive's customers, for the share


def profile_candidates(
    root: str,
    policies: str | Path,
    *,
    holds_path: str | Path | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
    max_age: timedelta = PROFILE_MAX_AGE,
) -> ProfileCandidates:
    """The customers of the archive at `root` whose profiles the plan of `policies` needs.

    Loads and checks the policies (and holds) as planning does: a name that does not resolve
    raises, as it would there.
    """
    load_policies(policies)
    moment = now or datetime.now(UTC)
    key = audit_key(required=holds_path is not None, env=env)
    tables, _ = facts_tables(root)
    try:
        loaded, registry = load_inputs(tables, policies, holds_path, key)
        references = References.from_connection(tables.con)
        holds_read_attrs = any(h.kind == "custom_attribute" for h in registry.active(moment))
        if any(
            p.enabled and str(p.resource) == "customer" and reads_rollups(p.filters) for p in loaded
        ):
            tables.ensure_rollups()
        if any(p.enabled and str(p.resource) == "contact" for p in loaded):
            ensure_contacts(tables)
        con = tables.con.cursor()
        found = ProfileCandidates()
        try:
            con.execute("SET TimeZone='UTC'")
            row = con.execute("SELECT count(*) FROM customers").fetchone()
            found.customers = int(row[0]) if row else 0
            lookups = references.lookups()
            for policy in loaded:
                if not policy.enabled:
                    continue
                reads_attrs = any(
                    leaf.kind == "custom_attribute" for leaf in fetched_leaves(policy.filters)
                )
                if not (reads_attrs or holds_read_attrs):
                    continue
                resource = str(policy.resource)
                compiled = compile_filters(policy.filters, resource, moment, lookups)
                ids = {
                    str(r[0])
                    for r in con.execute(
                        # The attributes as unknown: who the policy's other filters select.
                        f"""SELECT DISTINCT p._customer_id FROM (
                            SELECT * REPLACE (CAST(NULL AS VARCHAR) AS _attrs)
                            FROM ({population_sql(resource)})) p
                        WHERE ({compiled.sql}) IS NOT FALSE AND p._customer_id IN (
                            SELECT customer_id FROM customers
                            WHERE custom_attributes IS NULL OR profile_fetched_at < ?)""",
                        [*compiled.params, moment - max_age],
                    ).fetchall()
                }
                found.per_policy[str(policy.name)] = len(ids)
                found.customer_ids |= ids
        finally:
            con.close()
    finally:
        tables.con.close()
    return found
