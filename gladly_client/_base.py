"""Shared base of the Gladly models: strict-but-tolerant config, timestamps, lenient lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)
from pydantic.alias_generators import to_camel
from pydantic_core import to_jsonable_python


class GladlyModel(BaseModel):
    """Base of every Gladly model: immutable, camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        populate_by_name=True,
    )


def with_raw(data: Any) -> Any:
    """A payload plus `raw`: a JSON-safe deep copy of it, so later changes to the input cannot
    reach what the model keeps of it (a `mode="before"` validator's body)."""
    if isinstance(data, dict) and "raw" not in data:
        return {**data, "raw": to_jsonable_python(data, by_alias=True)}
    return data


# --------------------------------------------------------------------------------------------
# Timestamps and lenient collections
# --------------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:[.,](?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _normalise_zone(zone: str | None) -> str:
    if zone is None or zone in ("Z", "z"):
        return "+00:00"
    digits = zone[1:].replace(":", "")
    return f"{zone[0]}{digits[:2]}:{digits[2:4] or '00'}"


def parse_timestamp(value: str | datetime) -> datetime:
    """Parse an RFC 3339 timestamp with any number of fraction digits into an aware UTC datetime.

    Fractions beyond microseconds are truncated; a missing offset means UTC.
    """
    if isinstance(value, datetime):
        return _as_utc(value)
    text = value.strip()
    match = _RFC3339.fullmatch(text)
    if match is not None:
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")
        text = f"{match['date']}T{match['time']}.{fraction}{_normalise_zone(match['zone'])}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}") from None
    return _as_utc(parsed)


def _validate_timestamp(value: Any) -> Any:
    # Other inputs (e.g. epoch numbers) are left to pydantic's own datetime parsing.
    if isinstance(value, str | datetime):
        return parse_timestamp(value)
    return value


Timestamp = Annotated[datetime, BeforeValidator(_validate_timestamp), AfterValidator(_as_utc)]
"""A datetime parsed leniently from RFC 3339 and always timezone-aware UTC."""


def _empty_tuple_if_null(value: Any) -> Any:
    return () if value is None else value


def _empty_dict_if_null(value: Any) -> Any:
    return {} if value is None else value


def _none_if_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


NullAsEmptyTuple = BeforeValidator(_empty_tuple_if_null)
NullAsEmptyDict = BeforeValidator(_empty_dict_if_null)

StrTuple: TypeAlias = Annotated[tuple[str, ...], NullAsEmptyTuple]
AnyDict: TypeAlias = Annotated[dict[str, Any], NullAsEmptyDict]
StrDict: TypeAlias = Annotated[dict[str, str], NullAsEmptyDict]
Seconds: TypeAlias = Annotated[int | None, BeforeValidator(_none_if_blank)]
