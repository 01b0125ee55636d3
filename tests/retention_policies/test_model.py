"""The policy model: durations, filters, actions, limits and the version hash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from retention_policies.actions import RedactItems
from retention_policies.filters import AgeFilter, NotFilter, OrFilter
from retention_policies.model import Policy, iter_filters
from retention_policies.vocab import REDACTABLE_TYPES, parse_duration


def policy(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "old-customers",
        "description": "Delete customers gone three years.",
        "resource": "customer",
        "filters": [{"type": "age", "field": "last_activity", "older_than": "P3Y"}],
        "actions": [{"type": "delete_customer"}],
    }
    return base | changes


@pytest.mark.parametrize(
    ("value", "days"),
    [(30, 30), ("P30D", 30), ("P1Y", 365), ("P18M", 540), ("P2W", 14), ("p1y1m", 395)],
)
def test_durations_in_days(value: object, days: int) -> None:
    assert parse_duration(value) == timedelta(days=days)


def test_duration_with_time_part() -> None:
    assert parse_duration("PT12H") == timedelta(hours=12)
    assert parse_duration("P1DT30M") == timedelta(days=1, minutes=30)


@pytest.mark.parametrize("value", ["P", "PT", "3Y", "P1.5Y", "P0D", 0, -1, True, 2.5, None])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_same_meaning_same_hash() -> None:
    a = Policy.model_validate(policy())
    b = Policy.model_validate(
        policy(
            filters=[{"older_than": 1095, "field": "last_activity", "type": "age"}],
            actions=[{"type": "delete_customer", "close_open_conversations": False}],
            limits={},
            enabled=True,
        )
    )
    assert a.version_hash == b.version_hash
    assert len(a.version_hash) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"name": "other-name"},
        {"enabled": False},
        {"filters": [{"type": "age", "field": "last_activity", "older_than": "P2Y"}]},
        {"actions": [{"type": "delete_customer", "close_open_conversations": True}]},
        {"limits": {"max_targets": 10}},
        {"description": "Something else."},
    ],
)
def test_any_change_of_meaning_changes_the_hash(change: dict[str, Any]) -> None:
    assert (
        Policy.model_validate(policy()).version_hash
        != Policy.model_validate(policy(**change)).version_hash
    )


def test_filters_are_parsed_into_their_classes() -> None:
    p = Policy.model_validate(
        policy(
            filters=[
                {"type": "age", "field": "last_activity", "newer_than": 10},
                {
                    "type": "or",
                    "filters": [
                        {"type": "custom_attribute", "key": "tier", "op": "missing"},
                        {"type": "not", "filter": {"type": "value", "field": "item_count",
                                                   "op": "gt", "value": 3}},
                    ],
                },
            ]
        )
    )  # fmt: skip
    first, second = p.filters
    assert isinstance(first, AgeFilter)
    assert first.newer_than == timedelta(days=10)
    assert first.older_than is None
    assert isinstance(second, OrFilter)
    assert isinstance(second.filters[1], NotFilter)
    assert [f.type for f in iter_filters(p.filters)] == [
        "age", "or", "custom_attribute", "not", "value",
    ]  # fmt: skip


def test_models_are_frozen() -> None:
    p = Policy.model_validate(policy())
    with pytest.raises(ValidationError):
        p.name = "x"  # type: ignore[misc]


def test_redact_items_defaults_to_every_redactable_type() -> None:
    action = RedactItems.model_validate({"type": "redact_items"})
    assert set(action.content_types) == REDACTABLE_TYPES
    assert "CUSTOMER_ACTIVITY" not in action.content_types
    explicit = RedactItems.model_validate(
        {"type": "redact_items", "content_types": ["SMS", "CUSTOMER_ACTIVITY", "SMS"]}
    )
    assert explicit.content_types == ["CUSTOMER_ACTIVITY", "SMS"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"actions": [{"type": "erase_conversation"}]}, "does not apply to resource"),
        ({"actions": []}, "at least 1"),
        (
            {"filters": [{"type": "age", "field": "item_time", "older_than": 3}]},
            "unknown age field",
        ),
        ({"filters": [{"type": "inbox", "in": ["x"]}]}, "does not apply to resource"),
        (
            {"filters": [{"type": "value", "field": "recording_status", "op": "exists"}]},
            "unknown fact field",
        ),
    ],
)
def test_python_built_policies_are_checked_against_their_resource(
    change: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValidationError, match=fragment):
        Policy.model_validate(policy(**change))


def test_limits_bounds() -> None:
    assert Policy.model_validate(policy(limits={"max_percent": 100})).limits.max_percent == 100
    with pytest.raises(ValidationError):
        Policy.model_validate(policy(limits={"max_percent": 0}))
    with pytest.raises(ValidationError):
        Policy.model_validate(policy(limits={"max_targets": 2.5}))


def test_every_filter_and_action_class_documents_a_yaml_example() -> None:
    from retention_policies.actions import ACTION_TYPES
    from retention_policies.filters import FILTER_TYPES

    for name, cls in {**FILTER_TYPES, **ACTION_TYPES}.items():
        assert cls.__doc__ is not None
        assert "```yaml" in cls.__doc__
        assert f"type: {name}" in cls.__doc__


@pytest.mark.parametrize("name", ["one-off", "sensitive-data-sweep", "unlink"])
def test_a_policy_may_not_take_a_name_the_engine_treats_as_a_request(name: str) -> None:
    # The engine re-checks only holds for targets of these names: a policy so named would skip
    # its own live re-check.
    with pytest.raises(ValidationError, match=f"name '{name}' is reserved for .*choose another"):
        Policy.model_validate(policy(name=name))


def test_the_reserved_names_are_the_ones_the_requests_use() -> None:
    from audit_log.outcomes import ONE_OFF_POLICY
    from erasure.unlink import POLICY_NAME as UNLINK
    from retention_policies.model import RESERVED_POLICY_NAMES
    from retention_policies.sweep_plan import SWEEP_POLICY

    assert set(RESERVED_POLICY_NAMES) == {ONE_OFF_POLICY, SWEEP_POLICY, UNLINK}
