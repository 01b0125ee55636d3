"""Rows of the export's customers, agents and topics lines (small files, converted per line)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["agent_row", "customer_row", "record_error", "topic_row"]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _addresses(value: Any, key: str) -> list[str] | None:
    """Plain strings (the export's flattened shape) or the API's {"original": ...} objects."""
    if not isinstance(value, list):
        return None
    found = [
        v if isinstance(v, str) else _str(v.get(key)) if isinstance(v, dict) else None
        for v in value
    ]
    return [v for v in found if v is not None]


def customer_row(record: dict[str, Any]) -> dict[str, Any]:
    """A CUSTOMERS row (without raw_json, job_id, archived_at) of a valid customers.jsonl line."""
    ids = record.get("externalCustomerIds")
    return {
        "customer_id": record["id"],
        "name": _str(record.get("name")),
        "address": _str(record.get("address")),
        "emails": _addresses(record.get("emailAddresses", record.get("emails")), "original"),
        "phones": _addresses(record.get("phoneNumbers", record.get("phones")), "original"),
        "external_customer_id": _str(record.get("externalCustomerId")),
        "external_customer_ids_json": None
        if ids is None
        else json.dumps(ids, ensure_ascii=False, separators=(",", ":")),
    }


def agent_row(record: dict[str, Any]) -> dict[str, Any]:
    """An AGENTS row (without raw_json, job_id, archived_at) of a valid agents.jsonl line."""
    return {
        "agent_id": record["id"],
        "name": _str(record.get("name")),
        "email_address": _str(record.get("emailAddress")),
    }


def topic_row(record: dict[str, Any]) -> dict[str, Any]:
    """A TOPICS row (without raw_json, job_id, archived_at) of a valid topics.jsonl line."""
    disabled = record.get("disabled")
    return {
        "topic_id": record["id"],
        "name": _str(record.get("name")),
        "disabled": disabled if isinstance(disabled, bool) else None,
        "parent_id": _str(record.get("parentId")),
    }


def record_error(value: Any) -> str | None:
    """Why a parsed customers/agents/topics line cannot be a row (None when it can)."""
    if not isinstance(value, dict):
        return "line is not a JSON object"
    record_id = value.get("id")
    if not isinstance(record_id, str) or not record_id:
        return "'id' is missing or not a non-empty string"
    return None
