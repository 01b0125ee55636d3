"""A contact policy planned over an archive exported from the sandbox selects the contacts the
sandbox's own items make up, computed here without the project's contact rule."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gladly_archive import Archive
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from gladly_sandbox.ids import parse_timestamp
from ingest.exporting import run_export
from retention_policies import HoldRegistry, load_policies
from retention_policies.evaluate import evaluate
from retention_policies.facts import load_tables

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
EVER = datetime(2000, 1, 1, tzinfo=UTC)
AGE = timedelta(days=200)
TIMELINE = {"CONVERSATION_NOTE", "TOPIC_CHANGE", "CONVERSATION_STATUS_CHANGE", "CUSTOMER_ACTIVITY"}

POLICY = """
name: erase-old-chats-and-calls
description: Chat sessions, calls and voicemails are erased 200 days after their last item.
resource: contact
filters:
  - type: channel
    in: [CHAT_MESSAGE, PHONE_CALL, VOICEMAIL]
  - type: age
    field: contact_last_activity
    older_than: P200D
actions:
  - type: erase_contact
limits: {max_percent: 100, max_targets: 1000000}  # this test compares what matches
"""


def _session(line: dict[str, Any]) -> str | None:
    return line.get("sessionId") or line["content"].get("sessionId")


def _expected(lines: list[dict[str, Any]]) -> dict[str, set[str]]:
    """contact id → its items' ids, for the old chat sessions, calls and voicemails: a session's
    items carry its id; a call is its item; notes and other timeline items inside a contact's
    span (a call's: until it completed) are its too."""
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line.get("conversationId"):
            by_conversation[line["conversationId"]].append(line)
    found: dict[str, set[str]] = {}
    for items in by_conversation.values():
        keyed: dict[str, list[dict[str, Any]]] = defaultdict(list)
        ends: dict[str, datetime] = {}
        for line in items:
            kind = line["content"]["type"]
            session = _session(line)
            if session:
                keyed[session].append(line)
            elif kind in ("PHONE_CALL", "VOICEMAIL"):
                keyed[line["id"]].append(line)
                completed = line["content"].get("completedAt")
                if completed:
                    ends[line["id"]] = parse_timestamp(completed)
        for contact, mine in keyed.items():
            if not {m["content"]["type"] for m in mine} & {
                "CHAT_MESSAGE",
                "PHONE_CALL",
                "VOICEMAIL",
            }:
                continue
            times = [parse_timestamp(m["timestamp"]) for m in mine]
            start, end = min(times), max([*times, ends.get(contact, min(times))])
            inside = [
                line
                for line in items
                if line["content"]["type"] in TIMELINE
                and start <= parse_timestamp(line["timestamp"]) <= end
            ]
            members = mine + inside
            last = max(parse_timestamp(m["timestamp"]) for m in members)
            if NOW - last > AGE:
                found[contact] = {m["id"] for m in members}
    return found


def test_contact_plan_matches_contacts_computed_from_the_sandbox(tmp_path: Path) -> None:
    with Sandbox(
        seed=23, customers=30, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        archive = Archive.open(tmp_path / "archive")
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, archive, now=NOW).failed == []
        horizon = max(
            datetime.fromisoformat(j["parameters"]["endAt"].replace("Z", "+00:00"))
            for j in sb.exports.list_jobs(status="COMPLETED")
        )
        lines = list(sb.org.export_items(EVER, horizon))
    expected = _expected(lines)
    kinds = {"session" if any(_session(x) == c for x in lines) else "call" for c in expected}
    assert kinds == {"session", "call"}  # the world has both kinds of old contacts

    policies = tmp_path / "contacts.yaml"
    policies.write_text(POLICY)
    plan = evaluate(
        load_policies(policies),
        load_tables(tmp_path / "archive"),
        HoldRegistry.empty(key=b"test-audit-key"),
        NOW,
    )
    rows = plan.targets.to_pylist()
    assert plan.policies[0]["status"] == "planned"
    assert plan.policies[0]["eligible"] == len(expected)
    assert {r["target_id"] for r in rows} == set().union(*expected.values())
    assert len(rows) == len({r["target_id"] for r in rows})  # each item once
    for row in rows:  # each item under a contact that holds it
        contact = json.loads(row["matched_facts_json"])["contact"]
        assert row["target_id"] in expected[contact]
        assert row["target_type"] == "item"
    named = {json.loads(r["matched_facts_json"])["contact"] for r in rows}
    assert named <= set(expected)
