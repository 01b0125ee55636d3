"""A contact policy through the command line, `plan` then `apply --approve --execute`, judged
by the sandbox's own state: the selected chat sessions redacted, whole, and nothing else."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.erasure._erasure_world import ErasureWorld, erasure_world

pytestmark = pytest.mark.integration

POLICY = """
name: erase-topic-chat-sessions
description: Chat sessions of conversations on one topic are erased.
resource: contact
filters:
  - type: channel
    in: [CHAT_MESSAGE]
  - type: topic
    any_of: [{topic}]
actions:
  - type: erase_contact
limits: {{max_percent: 100, max_targets: 100000}}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErasureWorld]:
    with erasure_world(tmp_path_factory.mktemp("contact-policy"), customers=30) as w:
        yield w


def _everything(world: ErasureWorld) -> dict[str, dict[str, Any]]:
    """Every item of every live customer, as the sandbox holds it now."""
    org = world.sandbox.org
    return {
        item["id"]: item
        for cid in org.customer_ids()
        if not world.customer(cid)["deleted"]
        for conv in org.conversation_ids(cid)
        for item in org.list_items(conv)[0]
    }


def _session(item: dict[str, Any]) -> str | None:
    return item.get("sessionId") or item["content"].get("sessionId")


def _exported(world: ErasureWorld) -> dict[str, dict[str, Any]]:
    """The items the sandbox's completed export jobs hold (what the archive was made of)."""
    sb = world.sandbox
    horizon = max(
        datetime.fromisoformat(j["parameters"]["endAt"].replace("Z", "+00:00"))
        for j in sb.exports.list_jobs(status="COMPLETED")
    )
    return {i["id"]: i for i in sb.org.export_items(datetime(2000, 1, 1, tzinfo=UTC), horizon)}


def _plan_from(stderr: str) -> tuple[Path, str]:
    path = re.search(r"^plan written to (.+)$", stderr, re.M)
    digest = re.search(r"^plan hash: ([0-9a-f]{64})$", stderr, re.M)
    assert path, stderr
    assert digest, stderr
    return Path(path.group(1)), digest.group(1)


def test_plan_and_apply_redact_only_the_selected_sessions(
    world: ErasureWorld, tmp_path: Path
) -> None:
    org = world.sandbox.org
    before = _everything(world)
    sessions: dict[str, list[str]] = defaultdict(list)  # session → its chat messages
    for item in before.values():
        if item["content"]["type"] == "CHAT_MESSAGE" and _session(item):
            sessions[str(_session(item))].append(item["id"])
    topics = {
        s: set(org.get_conversation(before[m[0]]["conversationId"]).get("topicIds") or [])
        for s, m in sessions.items()
    }
    # A topic some sessions' conversations carry and others do not: the policy's selection.
    topic = next(
        t for t in sorted(set().union(*topics.values())) if not all(t in v for v in topics.values())
    )
    on_topic = {s for s, v in topics.items() if topic in v}
    policy = tmp_path / "contacts.yaml"
    policy.write_text(POLICY.format(topic=topic))

    planned = world.cli("plan", "--policies", str(policy))
    assert planned.returncode == 0, planned.stderr
    assert "erase-topic-chat-sessions (contact → erase_contact): planned" in planned.stderr
    plan_dir, plan_hash = _plan_from(planned.stderr)
    assert _everything(world) == before  # planning touches nothing

    applied = world.cli("apply", str(plan_dir), "--approve", plan_hash, "--execute")
    assert applied.returncode in (0, 3), applied.stderr
    after = _everything(world)
    changed = {i for i in before if after[i] != before[i]}
    assert changed  # some sessions were selected and erased
    for item_id in changed:  # only chat messages, and redacted
        item = after[item_id]
        assert item["content"]["type"] == "CHAT_MESSAGE", item_id
        assert item["content"]["content"] == "", item_id
    for session, messages in sessions.items():  # a session on the topic whole, no other
        erased = [m for m in messages if m in changed]
        assert erased == (messages if session in on_topic else []), session
    redacted = {
        e["target_id"]
        for e in world.outcomes()
        if e["policy_name"] == "erase-topic-chat-sessions" and e["outcome"] == "redacted"
    }
    assert redacted == changed


def test_a_session_that_went_on_after_planning_is_left_whole(
    world: ErasureWorld, tmp_path: Path
) -> None:
    org = world.sandbox.org
    before = _everything(world)
    sessions: dict[str, list[str]] = defaultdict(list)
    for item in before.values():
        if item["content"]["type"] == "CHAT_MESSAGE" and _session(item):
            sessions[str(_session(item))].append(item["id"])
    untouched = {
        s: m for s, m in sessions.items() if all(before[i]["content"]["content"] for i in m)
    }
    conversation_of = {s: before[m[0]]["conversationId"] for s, m in untouched.items()}
    # A topic the archive knows the session's conversation by: added in what was exported.
    exported = _exported(world)
    topic, chosen = next(
        (t, s)
        for s, conv in sorted(conversation_of.items())
        if all(i in exported for i in untouched[s])
        for t in sorted(org.get_conversation(conv).get("topicIds") or [])
        if any(
            t in (exported[i]["content"].get("addedTopicIds") or [])
            for i in exported
            if exported[i].get("conversationId") == conv
        )
    )
    policy = tmp_path / "contacts.yaml"
    policy.write_text(POLICY.format(topic=topic))
    planned = world.cli("plan", "--policies", str(policy))
    assert planned.returncode == 0, planned.stderr
    plan_dir, plan_hash = _plan_from(planned.stderr)
    # The customer writes again in that session after planning (the sandbox's clock is frozen
    # at its now, so the message is the session's newest).
    said = org.say(conversation_of[chosen], "CHAT_MESSAGE", "one more question")
    assert _session(org.get_item(said)) == chosen

    applied = world.cli("apply", str(plan_dir), "--approve", plan_hash, "--execute")
    assert applied.returncode in (0, 3), applied.stderr
    for item_id in [*untouched[chosen], said]:  # the session as it is now: untouched
        assert org.get_item(item_id)["content"]["content"], item_id
    skipped = {
        e["target_id"]: e["detail"]
        for e in world.outcomes()
        if e["policy_name"] == "erase-topic-chat-sessions" and e["outcome"] == "skipped_changed"
    }
    assert set(untouched[chosen]) <= set(skipped)
    assert "the plan does not list" in skipped[untouched[chosen][0]]
