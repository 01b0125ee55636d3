"""The vocabulary of policies: resources, Gladly content types, fields, operators, durations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic_core import PydanticCustomError

RESOURCES: tuple[str, ...] = ("customer", "conversation", "contact", "item")

# Every conversation item `content.type` Gladly's API documents.
CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "CHAT_MESSAGE",
        "EMAIL",
        "SMS",
        "PHONE_CALL",
        "VOICEMAIL",
        "WHATSAPP",
        "TWITTER",
        "FACEBOOK_MESSAGE",
        "INSTAGRAM_DIRECT",
        "CONVERSATION_NOTE",
        "CUSTOMER_ACTIVITY",
        "TOPIC_CHANGE",
        "CONVERSATION_STATUS_CHANGE",
        "VOICE_AI_MESSAGE",
        "CUSTOM_CHANNEL_MESSAGE",
    }
)
# Types `POST /conversation-items/{id}/redact` accepts.
REDACTABLE_TYPES: frozenset[str] = frozenset(
    {"CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "VOICEMAIL", "WHATSAPP", "TWITTER"}
)
# Types `DELETE /conversation-items/{id}` accepts (the only deletable item type).
DELETABLE_TYPES: frozenset[str] = frozenset({"CUSTOMER_ACTIVITY"})

CONVERSATION_STATUSES: tuple[str, ...] = ("OPEN", "WAITING", "CLOSED")

# Which timestamp an `age` filter may measure, per resource.
AGE_FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset({"last_activity"}),
    "conversation": frozenset(
        {"conversation_created", "conversation_closed", "conversation_last_activity"}
    ),
    "contact": frozenset(
        {
            "contact_last_activity",
            "contact_started",
            "conversation_closed",
            "conversation_last_activity",
            "last_activity",
        }
    ),
    "item": frozenset({"item_time"}),
}
ALL_AGE_FIELDS: frozenset[str] = frozenset().union(*AGE_FIELDS.values())

# Fact columns a `value` filter may compare, per resource. Kept here until
# retention_policies.facts.FACT_FIELDS exists; the two must agree.
VALUE_FIELDS: dict[str, frozenset[str]] = {
    "customer": frozenset({"conversation_count", "item_count", "has_open_conversation"}),
    "conversation": frozenset({"item_count", "status", "inbox_id"}),
    "contact": frozenset({"kind", "item_count"}),
    "item": frozenset({"content_type", "initiator_type", "has_attachments", "recording_status"}),
}
ALL_VALUE_FIELDS: frozenset[str] = frozenset().union(*VALUE_FIELDS.values())

# Filter types allowed per resource (`and`/`or`/`not` everywhere).
FILTERS_BY_RESOURCE: dict[str, frozenset[str]] = {
    "customer": frozenset({"age", "custom_attribute", "value", "and", "or", "not"}),
    "conversation": frozenset(
        {
            "age",
            "inbox",
            "channel",
            "topic",
            "conversation_status",
            "custom_attribute",
            "value",
            "and",
            "or",
            "not",
        }
    ),
    "item": frozenset({"age", "channel", "value", "and", "or", "not"}),
}
# A contact (a chat session, a call, an email or SMS exchange) is filtered like a conversation.
FILTERS_BY_RESOURCE["contact"] = FILTERS_BY_RESOURCE["conversation"]

# Action type allowed per resource.
ACTION_BY_RESOURCE: dict[str, str] = {
    "customer": "delete_customer",
    "conversation": "erase_conversation",
    "contact": "erase_contact",
    "item": "redact_items",
}

OPERATORS: tuple[str, ...] = (
    "eq",
    "ne",
    "in",
    "not_in",
    "exists",
    "missing",
    "gt",
    "gte",
    "lt",
    "lte",
)

DAYS_PER_YEAR = 365
DAYS_PER_MONTH = 30

_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def choice_error(
    what: str, value: object, choices: Iterable[str], why: str = ""
) -> PydanticCustomError:
    """An error for a value outside a closed vocabulary; the choices travel in the error ctx."""
    return PydanticCustomError(
        "choice",
        "unknown {what} {value}{why}",
        {"what": what, "value": repr(value), "why": why, "choices": sorted(choices)},
    )


def problem(message: str, **ctx: Any) -> PydanticCustomError:
    """A plain validation error whose message is shown as written."""
    return PydanticCustomError("policy", message, ctx or None)


def parse_duration(value: object) -> timedelta:
    """An int (days) or ISO 8601 duration ("P2Y", "P18M", "P30D", "PT12H") as an exact timedelta.

    A year counts 365 days and a month 30 days, so "P1Y" == 365 and "P18M" == 540 days.
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise problem("a duration must be positive")
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise problem("a duration is a number of days or an ISO 8601 duration such as P2Y or P30D")
    if isinstance(value, int):
        days = value
        if days <= 0:
            raise problem("a duration must be positive")
        return timedelta(days=days)
    match = _ISO_DURATION.match(value.strip().upper())
    if match is None:
        raise problem(
            "{value} is not an ISO 8601 duration (examples: P3Y, P18M, P30D, PT12H)",
            value=repr(value),
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    delta = timedelta(
        days=parts.get("years", 0) * DAYS_PER_YEAR
        + parts.get("months", 0) * DAYS_PER_MONTH
        + parts.get("weeks", 0) * 7
        + parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )
    if delta <= timedelta(0):
        raise problem("a duration must be positive")
    return delta
