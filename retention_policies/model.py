"""The policy model: a named, versioned selection of one resource plus one action and its limits."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from retention_policies.actions import (
    ACTION_TYPES,
    Action,
    DeleteCustomer,
    EraseContact,
    EraseConversation,
)
from retention_policies.actions import RedactItems as RedactItems
from retention_policies.filters import (
    FILTER_TYPES,
    AgeFilter,
    AndFilter,
    Filter,
    NotFilter,
    OrFilter,
    ValueFilter,
)
from retention_policies.vocab import (
    ACTION_BY_RESOURCE,
    AGE_FIELDS,
    FILTERS_BY_RESOURCE,
    RESOURCES,
    VALUE_FIELDS,
    choice_error,
    problem,
)

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
# Names the audit log gives to what is not a policy (tests pin them to their owners' constants).
RESERVED_POLICY_NAMES = {
    "one-off": "one-off deletion requests (`gladly-pipeline delete`)",
    "sensitive-data-sweep": "the sensitive-data sweep (`gladly-pipeline sweep`)",
    "unlink": "unlink requests (`gladly-pipeline unlink`)",
}

__all__ = [
    "ACTION_TYPES",
    "FILTER_TYPES",
    "Action",
    "DeleteCustomer",
    "EraseContact",
    "EraseConversation",
    "Filter",
    "Limits",
    "Policy",
    "RedactItems",
    "iter_filters",
]


# The rails of a policy that declares none: an over-deletion cannot be taken back, so a policy
# must say in so many words that it may touch more.
DEFAULT_MAX_TARGETS = 1000
DEFAULT_MAX_PERCENT = 10.0


class Limits(BaseModel):
    """Safety rails: a policy matching more than this is blocked before anything is planned.

    Both always apply: a policy that declares neither gets 1,000 targets and 10 % of the
    population; to go further it declares larger ones (max_percent 100 lifts that rail).

    ```yaml
    limits:
      max_targets: 500
      max_percent: 5
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_targets: int = Field(default=DEFAULT_MAX_TARGETS, gt=0, strict=True)
    max_percent: float = Field(default=DEFAULT_MAX_PERCENT, gt=0, le=100)

    def declared(self, name: str) -> bool:
        """Whether the policy set this limit itself (else it is the default)."""
        return name in self.model_fields_set


def iter_filters(filters: list[Filter]) -> list[Filter]:
    """Every filter, nested ones included, depth first."""
    out: list[Filter] = []
    for item in filters:
        out.append(item)
        if isinstance(item, AndFilter | OrFilter):
            out.extend(iter_filters(item.filters))
        elif isinstance(item, NotFilter):
            out.extend(iter_filters([item.filter]))
    return out


class Policy(BaseModel):
    """A retention policy: which `resource` rows the `filters` select (all must match) and the one
    action to apply to them, within `limits`.

    ```yaml
    name: delete-inactive-customers
    description: Customers without contact for three years are deleted.
    resource: customer
    filters:
      - {type: age, field: last_activity, older_than: P3Y}
    actions:
      - type: delete_customer
    limits: {max_targets: 1000, max_percent: 5}
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    enabled: StrictBool = True
    resource: str
    filters: list[Filter] = Field(min_length=1)
    actions: list[Action] = Field(min_length=1, max_length=1)
    limits: Limits = Field(default_factory=Limits)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise problem(
                "name {value} must be 3-63 characters of a-z, 0-9 and '-', starting with a "
                "letter or digit",
                value=repr(value),
            )
        if value in RESERVED_POLICY_NAMES:
            # The engine re-checks only holds for these (they are requests, not policies): a
            # policy of that name would slip past its own re-check.
            raise problem(
                "name {value} is reserved for {what}; choose another name",
                value=repr(value),
                what=RESERVED_POLICY_NAMES[value],
            )
        return value

    @field_validator("description")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise problem("description must say what the policy does and why")
        return value.strip()

    @field_validator("resource")
    @classmethod
    def _known_resource(cls, value: str) -> str:
        if value not in RESOURCES:
            raise choice_error("resource", value, RESOURCES)
        return value

    @model_validator(mode="after")
    def _fits_resource(self) -> Policy:
        # The loader checks these per filter (with line numbers); this catches models built in
        # Python without the loader's validation context.
        for item in iter_filters(self.filters):
            if item.type not in FILTERS_BY_RESOURCE[self.resource]:
                raise problem(
                    "filter type {value} does not apply to resource {resource}",
                    value=repr(item.type),
                    resource=repr(self.resource),
                    choices=sorted(FILTERS_BY_RESOURCE[self.resource]),
                )
            if isinstance(item, AgeFilter) and item.field not in AGE_FIELDS[self.resource]:
                raise choice_error("age field", item.field, AGE_FIELDS[self.resource])
            if isinstance(item, ValueFilter) and item.field not in VALUE_FIELDS[self.resource]:
                raise choice_error("fact field", item.field, VALUE_FIELDS[self.resource])
        expected = ACTION_BY_RESOURCE[self.resource]
        if self.actions[0].type != expected:
            raise problem(
                "action {value} does not apply to resource {resource}",
                value=repr(self.actions[0].type),
                resource=repr(self.resource),
                choices=[expected],
            )
        return self

    @property
    def action(self) -> Action:
        """The policy's one action."""
        return self.actions[0]

    def canonical(self) -> dict[str, Any]:
        """The validated policy as plain JSON data: defaults filled, durations normalised."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data

    @cached_property
    def version_hash(self) -> str:
        """sha256 hex of the canonical JSON: same meaning, same hash, whatever the YAML layout."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
