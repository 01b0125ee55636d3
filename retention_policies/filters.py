"""Policy filters: a discriminated union on `type`, combinable with `and`, `or` and `not`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from retention_policies.vocab import (
    AGE_FIELDS,
    ALL_AGE_FIELDS,
    ALL_VALUE_FIELDS,
    CONTENT_TYPES,
    CONVERSATION_STATUSES,
    FILTERS_BY_RESOURCE,
    OPERATORS,
    VALUE_FIELDS,
    choice_error,
    parse_duration,
    problem,
)

_CONFIG = ConfigDict(extra="forbid", frozen=True)


def _resource(info: ValidationInfo) -> str | None:
    """The policy's resource when the loader passes it as validation context."""
    ctx = info.context
    if isinstance(ctx, dict) and isinstance(ctx.get("resource"), str):
        return str(ctx["resource"])
    return None


class _FilterBase(BaseModel):
    """Shared config; checks that the filter type applies to the policy's resource."""

    model_config = _CONFIG

    @field_validator("type", check_fields=False)
    @classmethod
    def _type_fits_resource(cls, value: str, info: ValidationInfo) -> str:
        resource = _resource(info)
        if resource in FILTERS_BY_RESOURCE and value not in FILTERS_BY_RESOURCE[resource]:
            raise problem(
                "filter type {value} does not apply to resource {resource}",
                value=repr(value),
                resource=repr(resource),
                choices=sorted(FILTERS_BY_RESOURCE[resource]),
            )
        return value


def _one_of(model: BaseModel, first: str, second: str) -> None:
    given = [name for name in (first, second) if getattr(model, name.rstrip("_")) is not None]
    if len(given) != 1:
        raise problem(
            "give exactly one of {first} or {second}",
            first=repr(first.rstrip("_")),
            second=repr(second),
            choices=[first.rstrip("_"), second],
        )


class AgeFilter(_FilterBase):
    """Matches when a timestamp is older (or newer) than a duration before `now`.

    Durations are days (int) or ISO 8601 ("P3Y", "P18M", "PT12H"); a year is 365 days and a
    month 30 days.

    ```yaml
    - type: age
      field: last_activity
      older_than: P3Y
    ```
    """

    type: Literal["age"]
    field: str
    older_than: timedelta | None = None
    newer_than: timedelta | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str, info: ValidationInfo) -> str:
        resource = _resource(info)
        allowed = AGE_FIELDS.get(resource or "", ALL_AGE_FIELDS)
        if value not in allowed:
            raise choice_error("age field", value, allowed)
        return value

    @field_validator("older_than", "newer_than", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> AgeFilter:
        if (self.older_than is None) == (self.newer_than is None):
            raise problem(
                "give exactly one of 'older_than' or 'newer_than'",
                choices=["newer_than", "older_than"],
            )
        return self


class _InNotIn(_FilterBase):
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _InNotIn:
        if (self.in_ is None) == (self.not_in is None):
            raise problem("give exactly one of 'in' or 'not_in'", choices=["in", "not_in"])
        if not (self.in_ or self.not_in):
            raise problem("the list must not be empty")
        return self


class InboxFilter(_InNotIn):
    """Matches conversations in (or not in) the named inboxes; ids or names.

    ```yaml
    - type: inbox
      not_in: [VIP Support]
    ```
    """

    type: Literal["inbox"]


class ChannelFilter(_InNotIn):
    """Matches by Gladly content type (an item's type; any item's type for a conversation).

    ```yaml
    - type: channel
      in: [PHONE_CALL, VOICEMAIL]
    ```
    """

    type: Literal["channel"]

    @field_validator("in_", "not_in")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        for content_type in value or []:
            if content_type not in CONTENT_TYPES:
                raise choice_error("content type", content_type, CONTENT_TYPES)
        return value


class TopicFilter(_FilterBase):
    """Matches conversations carrying any (or none) of the topics; ids or names.

    ```yaml
    - type: topic
      any_of: [Billing dispute]
    ```
    """

    type: Literal["topic"]
    any_of: list[str] | None = None
    none_of: list[str] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TopicFilter:
        if (self.any_of is None) == (self.none_of is None):
            raise problem(
                "give exactly one of 'any_of' or 'none_of'", choices=["any_of", "none_of"]
            )
        if not (self.any_of or self.none_of):
            raise problem("the list must not be empty")
        return self


class ConversationStatusFilter(_FilterBase):
    """Matches conversations whose status is one of the listed ones.

    ```yaml
    - type: conversation_status
      in: [CLOSED]
    ```
    """

    type: Literal["conversation_status"]
    in_: list[str] = Field(alias="in", min_length=1)

    @field_validator("in_")
    @classmethod
    def _known_status(cls, value: list[str]) -> list[str]:
        for status in value:
            if status not in CONVERSATION_STATUSES:
                raise choice_error("conversation status", status, CONVERSATION_STATUSES)
        return value


_SCALARS = (str, int, float)


def _check_comparison(op: str, value: Any, given: bool) -> None:
    if op in ("exists", "missing"):
        if given:
            raise problem("op {op} takes no 'value'", op=repr(op), at="value")
        return
    if not given:
        raise problem("op {op} needs a 'value'", op=repr(op), at="value")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise problem("op {op} needs a non-empty list as 'value'", op=repr(op), at="value")
        if not all(isinstance(v, _SCALARS) for v in value):
            raise problem(
                "the 'value' list may hold only strings, numbers and booleans", at="value"
            )
        return
    if not isinstance(value, _SCALARS):
        raise problem(
            "op {op} needs a single string, number or boolean 'value'", op=repr(op), at="value"
        )
    if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
        raise problem("op {op} cannot compare a boolean", op=repr(op), at="value")


class _Comparison(_FilterBase):
    op: str
    value: Any = None

    @field_validator("op")
    @classmethod
    def _known_op(cls, value: str) -> str:
        if value not in OPERATORS:
            raise choice_error("op", value, OPERATORS)
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> _Comparison:
        # `value: null` is no value: canonical() writes it for `exists` / `missing`, and a
        # policy rebuilt from its canonical form must validate as the original did.
        given = "value" in self.model_fields_set and self.value is not None
        _check_comparison(self.op, self.value, given)
        return self


class CustomAttributeFilter(_Comparison):
    """Compares a customer profile custom attribute (a missing attribute never equals anything).

    ```yaml
    - type: custom_attribute
      key: loyaltyTier
      op: in
      value: [bronze, none]
    ```
    """

    type: Literal["custom_attribute"]
    key: str = Field(min_length=1)


class ValueFilter(_Comparison):
    """Compares a column of the resource's fact table (whitelisted per resource).

    ```yaml
    - type: value
      field: has_attachments
      op: eq
      value: false
    ```
    """

    type: Literal["value"]
    field: str

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str, info: ValidationInfo) -> str:
        resource = _resource(info)
        allowed = VALUE_FIELDS.get(resource or "", ALL_VALUE_FIELDS)
        if value not in allowed:
            raise choice_error("fact field", value, allowed)
        return value


class AndFilter(_FilterBase):
    """Matches when every inner filter matches.

    ```yaml
    - type: and
      filters:
        - {type: conversation_status, in: [CLOSED]}
        - {type: age, field: conversation_closed, older_than: P2Y}
    ```
    """

    type: Literal["and"]
    filters: list[Filter] = Field(min_length=1)


class OrFilter(_FilterBase):
    """Matches when at least one inner filter matches.

    ```yaml
    - type: or
      filters:
        - {type: custom_attribute, key: loyaltyTier, op: eq, value: none}
        - {type: custom_attribute, key: loyaltyTier, op: missing}
    ```
    """

    type: Literal["or"]
    filters: list[Filter] = Field(min_length=1)


class NotFilter(_FilterBase):
    """Matches when the inner filter does not match.

    ```yaml
    - type: not
      filter: {type: custom_attribute, key: legalReview, op: eq, value: true}
    ```
    """

    type: Literal["not"]
    filter: Filter


Filter = Annotated[
    Union[  # noqa: UP007 - a discriminated union reads best spelled out
        AgeFilter,
        InboxFilter,
        ChannelFilter,
        TopicFilter,
        ConversationStatusFilter,
        CustomAttributeFilter,
        ValueFilter,
        AndFilter,
        OrFilter,
        NotFilter,
    ],
    Field(discriminator="type"),
]

FILTER_TYPES: dict[str, type[BaseModel]] = {
    "age": AgeFilter,
    "inbox": InboxFilter,
    "channel": ChannelFilter,
    "topic": TopicFilter,
    "conversation_status": ConversationStatusFilter,
    "custom_attribute": CustomAttributeFilter,
    "value": ValueFilter,
    "and": AndFilter,
    "or": OrFilter,
    "not": NotFilter,
}

for _model in (AndFilter, OrFilter, NotFilter):
    _model.model_rebuild()
