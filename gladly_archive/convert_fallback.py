"""Per-line Python conversion of item lines: validation, quarantine errors and ITEMS rows.

This is the reference for what every ITEMS column means; the vectorised fast path
(convert_fast) must produce exactly these rows for every line it accepts.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from gladly_archive.schemas import CONVERTED_ITEMS

_EPOCH_DAY = date(1970, 1, 1)
_DAY_US = 86_400_000_000

__all__ = [
    "CUSTOM_CHANNEL_MARKER",
    "CUSTOM_CHANNEL_MESSAGE",
    "DURATION_PATTERN",
    "TIMESTAMP_PATTERN",
    "fast_compatible",
    "item_error",
    "item_row",
    "load_line",
    "rows_to_batch",
    "timestamp_micros",
]

CUSTOM_CHANNEL_MESSAGE = "CUSTOM_CHANNEL_MESSAGE"
# The custom channel's `type` is TEXT/FILES, so it is recognised by this key instead.
CUSTOM_CHANNEL_MARKER = b'"customChannelId"'

# RFC 3339 as Gladly writes it, 0-9 fraction digits. Both paths accept exactly this (the fast
# path checks it with RE2 before Arrow's more lenient cast), so they never disagree. No capture
# groups: RE2 matches faster without them, and the fields sit at fixed offsets anyway.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
DURATION_PATTERN = r"^-?[0-9]{1,18}$"  # recordingDuration sent as text, e.g. "100"
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_DURATION = re.compile(DURATION_PATTERN)
_EPOCH = datetime(1970, 1, 1)
_INT64 = (-(2**63), 2**63 - 1)
_REQUIRED = ("id", "customerId")


class _RejectedNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _RejectedNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _RejectedNumber("out of range")
    return value


def load_line(raw: bytes) -> tuple[Any, str | None]:
    """Parse one line as strict JSON (no NaN/Infinity, no overflowing numbers).

    Returns (value, None) or (None, error); the error names what is wrong, never the content.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"line is not valid UTF-8 (byte {exc.start + 1})"
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except _RejectedNumber:
        return None, "line is not valid JSON (NaN, Infinity or an out-of-range number)"
    except json.JSONDecodeError as exc:
        return None, f"line is not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "line is not valid JSON (nested too deeply)"
    if b"\\u" in raw and _has_lone_surrogate(value):
        return None, "line is not valid JSON (a \\u escape is an unpaired surrogate)"
    return value, None


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def timestamp_micros(value: Any) -> int | None:
    """Microseconds since the epoch of an RFC 3339 text, truncated like Arrow's ns → us cast."""
    if not isinstance(value, str):
        return None
    # fullmatch: Python's `$` would also accept a trailing newline, RE2's does not.
    if _TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        moment = datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
        )
    except ValueError:  # e.g. February 30th
        return None
    zone = "Z" if value.endswith("Z") else value[-6:]
    fraction = value[20 : len(value) - len(zone)] if value[19] == "." else ""
    seconds = (moment - _EPOCH).days * 86_400 + moment.hour * 3600 + moment.minute * 60
    seconds += moment.second
    if zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    nanos = seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))
    if not _INT64[0] <= nanos <= _INT64[1]:
        return None  # outside what Arrow's nanosecond parse can hold
    # Arrow truncates toward zero when it drops the sub-microsecond digits.
    return nanos // 1000 if nanos >= 0 else -((-nanos) // 1000)


def item_error(item: Any) -> str | None:
    """Why a parsed line cannot be an ITEMS row (None when it can)."""
    if not isinstance(item, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        return f"line is {kind.get(type(item), 'a number')}, not a JSON object"
    for key in _REQUIRED:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            return f"'{key}' is missing or not a non-empty string"
    if timestamp_micros(item.get("timestamp")) is None:
        return "'timestamp' is missing or not an RFC 3339 time"
    content = item.get("content")
    kind_value = content.get("type") if isinstance(content, dict) else None
    if not isinstance(kind_value, str) or not kind_value:
        return "'content.type' is missing or not a non-empty string"
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int64(value: Any) -> int | None:
    if type(value) is int and _INT64[0] <= value <= _INT64[1]:
        return value
    return None


def _strings(value: Any) -> list[str | None] | None:
    """An address list; a single address (SMS and call `to`) becomes a list of one."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else None for v in value]
    return None


def _party(value: Any, key: str) -> str | None:
    return _str(value.get(key)) if isinstance(value, dict) else None


def _duration(value: Any) -> int | None:
    if isinstance(value, str):
        return int(value) if _DURATION.fullmatch(value) else None
    return _int64(value)


def _attachments(value: Any) -> list[dict[str, Any] | None] | None:
    if not isinstance(value, list):
        return None
    return [
        {
            "id": _str(a.get("id")),
            "content_type": _str(a.get("contentType")),
            "filename": _str(a.get("filename")),
            "file_size": _int64(a.get("fileSize")),
        }
        if isinstance(a, dict)
        else None
        for a in value
    ]


def _text(content: dict[str, Any]) -> str | None:
    inner = content.get("content")
    if isinstance(inner, str):
        return inner
    if isinstance(inner, dict):
        for key in ("text", "caption"):  # custom channel: TEXT has text, FILES a caption
            if isinstance(inner.get(key), str):
                return str(inner[key])
    return _str(content.get("body"))


def item_row(item: dict[str, Any], raw_json: str, job_id: str, archived_at: int) -> dict[str, Any]:
    """The ITEMS row of a valid item (see item_error); timestamps are epoch microseconds."""
    content: dict[str, Any] = item["content"]
    custom = isinstance(content.get("customChannelId"), str)
    summary = content.get("recordingSummary")
    message_type = _str(content.get("messageType"))
    return {
        "item_id": item["id"],
        "conversation_id": _str(item.get("conversationId")),
        "customer_id": item["customerId"],
        "session_id": _first_str(item.get("sessionId"), content.get("sessionId")),
        "timestamp": (stamp := timestamp_micros(item["timestamp"])),
        "date": None if stamp is None else _EPOCH_DAY + timedelta(days=stamp // _DAY_US),
        "initiator_id": _party(item.get("initiator"), "id"),
        "initiator_type": _party(item.get("initiator"), "type"),
        "responder_id": _party(item.get("responder"), "id"),
        "responder_type": _party(item.get("responder"), "type"),
        "content_type": CUSTOM_CHANNEL_MESSAGE if custom else content["type"],
        "message_type": content["type"] if custom and message_type is None else message_type,
        "text": _text(content),
        "subject": _first_str(content.get("subject"), content.get("title")),
        "from_address": _str(content.get("from")),
        "to_addresses": _strings(content.get("to")),
        "cc_addresses": _strings(content.get("cc")),
        "bcc_addresses": _strings(content.get("bcc")),
        "call_started_at": timestamp_micros(content.get("startedAt")),
        "call_answered_at": timestamp_micros(content.get("answeredAt")),
        "call_completed_at": timestamp_micros(content.get("completedAt")),
        "recording_status": _str(content.get("recordingStatus")),
        "recording_duration_seconds": _duration(content.get("recordingDuration")),
        "recording_summary": _party(summary, "summary"),
        "activity_type": _str(content.get("activityType")),
        "attachments": _attachments(content.get("attachments")),
        "raw_json": raw_json,
        "job_id": job_id,
        "archived_at": archived_at,
    }


def _first_str(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str):
            return value
    return None


def rows_to_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """ITEMS rows (from item_row) as one record batch with exactly the ITEMS schema."""
    return pa.RecordBatch.from_pylist(rows, schema=CONVERTED_ITEMS)


# --- which valid lines the fast path can take --------------------------------------------------

_ENVELOPE_STRINGS = ("id", "conversationId", "customerId", "timestamp", "sessionId")
_CONTENT_STRINGS = (
    "type",
    "messageType",
    "sessionId",
    "from",
    "subject",
    "body",
    "title",
    "startedAt",
    "answeredAt",
    "completedAt",
    "recordingStatus",
    "activityType",
    "customChannelId",
)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _str_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(map(_opt_str, value)))


def _opt_int64(value: Any) -> bool:
    return value is None or _int64(value) is not None


def _party_ok(value: Any) -> bool:
    return value is None or (
        isinstance(value, dict) and _opt_str(value.get("id")) and _opt_str(value.get("type"))
    )


def _attachment_ok(value: Any) -> bool:
    return value is None or (
        isinstance(value, dict)
        and all(_opt_str(value.get(k)) for k in ("id", "contentType", "filename"))
        and _opt_int64(value.get("fileSize"))
    )


def fast_compatible(item: dict[str, Any], raw: bytes) -> bool:
    """Whether the fast path's parse schema can hold this valid item (else: per-line path).

    Only a guess that saves time: when it is wrong the fast parse fails and the lines come
    back here, so it can never change a row.
    """
    content = item["content"]
    if b"\n" in raw or b"\x7f" in raw:  # one row per line; DEL marks the renamed keys
        return False
    if not all(_opt_str(item.get(k)) for k in _ENVELOPE_STRINGS):
        return False
    if not (_party_ok(item.get("initiator")) and _party_ok(item.get("responder"))):
        return False
    if not all(_opt_str(content.get(k)) for k in _CONTENT_STRINGS):
        return False
    inner = content.get("content")
    if isinstance(inner, dict):
        if CUSTOM_CHANNEL_MARKER not in raw:
            return False
        if not (_opt_str(inner.get("text")) and _opt_str(inner.get("caption"))):
            return False
    elif not _opt_str(inner):
        return False
    to = content.get("to")
    if not (isinstance(to, str) or _str_list(to)):
        return False
    if not (_str_list(content.get("cc")) and _str_list(content.get("bcc"))):
        return False
    duration = content.get("recordingDuration")
    if not (isinstance(duration, str) or _opt_int64(duration)):
        return False
    summary = content.get("recordingSummary")
    if not (summary is None or (isinstance(summary, dict) and _opt_str(summary.get("summary")))):
        return False
    attachments = content.get("attachments")
    return attachments is None or (
        isinstance(attachments, list) and all(map(_attachment_ok, attachments))
    )
