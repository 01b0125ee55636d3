"""Properties on random small fact tables, against a per-row Python oracle."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention_policies.evaluate import evaluate
from tests.retention_policies._builders import (
    NOW,
    conversation,
    customer,
    item,
    policy,
    registry,
    tables,
)

# "absent": a fetched profile without the attribute; None: a profile never fetched (unknown).
TIERS = ["gold", "none", "absent", None]
TYPES = ["EMAIL", "SMS", "CONVERSATION_NOTE", "PHONE_CALL"]

leaf = st.one_of(
    st.builds(
        lambda d: {"type": "age", "field": "last_activity", "older_than": d}, st.integers(1, 400)
    ),
    st.builds(
        lambda d: {"type": "age", "field": "last_activity", "newer_than": d}, st.integers(1, 400)
    ),
    st.builds(
        lambda v: {"type": "custom_attribute", "key": "tier", "op": "eq", "value": v},
        st.sampled_from(["gold", "none"]),
    ),
    st.just({"type": "custom_attribute", "key": "tier", "op": "missing"}),
    st.builds(
        lambda v: {"type": "value", "field": "has_open_conversation", "op": "eq", "value": v},
        st.booleans(),
    ),
    st.builds(
        lambda v: {"type": "value", "field": "item_count", "op": "gte", "value": v},
        st.integers(0, 5),
    ),
)
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(
            lambda fs: {"type": "and", "filters": fs}, st.lists(inner, min_size=1, max_size=3)
        ),
        st.builds(
            lambda fs: {"type": "or", "filters": fs}, st.lists(inner, min_size=1, max_size=3)
        ),
        st.builds(lambda f: {"type": "not", "filter": f}, inner),
    ),
    max_leaves=5,
)
rows = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(TIERS), st.booleans(), st.integers(0, 5)),
    min_size=1,
    max_size=12,
)


def oracle(flt: dict[str, Any], row: tuple[int, str | None, bool, int]) -> bool | None:
    """Kleene logic: None where the answer depends on a profile never fetched."""
    last, tier, open_, count = row
    kind = flt["type"]
    if kind == "and":
        parts = [oracle(f, row) for f in flt["filters"]]
        return False if False in parts else (None if None in parts else True)
    if kind == "or":
        parts = [oracle(f, row) for f in flt["filters"]]
        return True if True in parts else (None if None in parts else False)
    if kind == "not":
        inner = oracle(flt["filter"], row)
        return None if inner is None else not inner
    if kind == "age":
        cutoff = NOW - timedelta(days=flt.get("older_than") or flt["newer_than"])
        when = NOW - timedelta(days=last)
        return when < cutoff if "older_than" in flt else when >= cutoff
    if kind == "custom_attribute":
        if tier is None:
            return None
        return tier == "absent" if flt["op"] == "missing" else tier == flt["value"]
    if flt["field"] == "has_open_conversation":
        return open_ == flt["value"]
    return count >= flt["value"]


def _tables(data: list[tuple[int, str | None, bool, int]]):  # type: ignore[no-untyped-def]
    return tables(
        [
            customer(
                f"c{n}",
                last,
                has_open_conversation=open_,
                item_count=count,
                custom_attributes=(
                    None if tier is None else json.dumps({} if tier == "absent" else {"tier": tier})
                ),
            )
            for n, (last, tier, open_, count) in enumerate(data)
        ]
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=rows, policy_filters=st.lists(filters, min_size=1, max_size=3))
def test_matches_equal_the_oracle(data: list[Any], policy_filters: list[dict[str, Any]]) -> None:
    pols = [policy("customer", [f], name=f"pol-{n}") for n, f in enumerate(policy_filters)]
    plan = evaluate(pols, _tables(data), None, NOW)
    got = {(r["policy_name"], r["target_id"]) for r in plan.targets.to_pylist()}
    # a policy undecided for any row is blocked whole: unknown is never "does not match"
    undecided = {
        f"pol-{n}" for n, f in enumerate(policy_filters) if any(oracle(f, r) is None for r in data)
    }
    want = {
        (f"pol-{n}", f"c{i}")
        for n, f in enumerate(policy_filters)
        for i, row in enumerate(data)
        if oracle(f, row) and f"pol-{n}" not in undecided
    }
    assert got == want
    blocked = {p["name"] for p in plan.policies if p["status"] == "blocked"}
    assert undecided <= blocked
    for p in plan.policies:
        if p["name"] in undecided:
            assert "never fetched" in p["reason"]
            assert "gladly-pipeline enrich" in p["reason"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=rows,
    flt=filters,
    held=st.sets(st.integers(0, 11)),
    max_targets=st.integers(1, 8),
    max_percent=st.floats(1, 100),
)
def test_holds_and_limits_are_never_violated(
    data: list[Any], flt: dict[str, Any], held: set[int], max_targets: int, max_percent: float
) -> None:
    holds = registry(*[("customer_id", f"c{n}") for n in sorted(held)])
    t = _tables(data)
    limits = {"max_targets": max_targets, "max_percent": max_percent}
    plan = evaluate([policy("customer", [flt], limits=limits)], t, holds, NOW)
    ids = set(plan.targets.column("target_id").to_pylist())
    assert not ids & {f"c{n}" for n in held}
    assert all(not r["excluded_by_holds"] for r in plan.targets.to_pylist())
    assert len(ids) <= max_targets
    assert len(ids) * 100 <= max_percent * len(data)
    eligible = {f"c{i}" for i, row in enumerate(data) if oracle(flt, row) and i not in held}
    undecided = any(oracle(flt, row) is None for row in data)
    blocked = (
        undecided or len(eligible) > max_targets or len(eligible) * 100 > max_percent * len(data)
    )
    assert ids == (set() if blocked else eligible)
    assert {r["target_id"] for r in plan.held.to_pylist()} == {
        f"c{i}" for i, row in enumerate(data) if oracle(flt, row) and i in held
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=8), held_conv=st.booleans())
def test_erase_conversation_never_calls_the_unerasable_erasable(
    types: list[str], held_conv: bool
) -> None:
    t = tables(
        [customer("c0", 900)],
        [conversation("v0", "c0", 800)],
        [item(f"i{n}", "v0", "c0", 800, ct) for n, ct in enumerate(types)],
    )
    holds = registry(("conversation_id", "v0")) if held_conv else None
    plan = evaluate(
        [policy("conversation", [{"type": "conversation_status", "in": ["CLOSED"]}])], t, holds, NOW
    )
    rows = [r for r in plan.targets.to_pylist() if r["target_type"] == "item"]
    assert len(rows) == (0 if held_conv else len(types))
    for r in rows:
        assert r["erasable"] == (r["content_type"] in {"EMAIL", "SMS", "PHONE_CALL"})
        assert (r["operation"] == "not_erasable_via_api") == (not r["erasable"])
