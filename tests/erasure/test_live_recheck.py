"""The live re-check against the sandbox: facts changed between plan and apply stop the call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from audit_log import AuditLog
from audit_log import outcomes as o
from erasure.execution import run_apply
from gladly_archive import Archive
from ingest.enrich import all_profiles, enrich_archive
from retention_policies import HoldRegistry
from retention_policies.plan import Plan
from tests._policies import INACTIVE, NOW
from tests._world import KEY, World, sandbox_world

pytestmark = pytest.mark.integration

NOT_GOLD = """
name: delete-inactive-not-gold
description: Profiles quiet for 400 days, unless they are gold customers.
resource: customer
filters:
  - {type: age, field: last_activity, older_than: 400}
  - {type: custom_attribute, key: loyaltyTier, op: ne, value: gold}
actions:
  - {type: delete_customer, close_open_conversations: false}
limits: {max_percent: 100}
"""
NONE_OPEN = """
name: delete-inactive-none-open
description: Profiles quiet for 400 days without an open conversation (closing is allowed).
resource: customer
filters:
  - {type: age, field: last_activity, older_than: 400}
  - {type: value, field: has_open_conversation, op: eq, value: false}
actions:
  - {type: delete_customer, close_open_conversations: true}
limits: {max_percent: 100}
"""
CALLS_OUTSIDE_VIP = """
name: erase-calls-outside-vip
description: Conversations with a call or voicemail are erased, except in the VIP inbox.
resource: conversation
filters:
  - {type: channel, in: [PHONE_CALL, VOICEMAIL]}
  - {type: inbox, not_in: [VIP Support]}
actions:
  - {type: erase_conversation}
limits: {max_percent: 100, max_targets: 100000}
"""
CALL_CONVERSATIONS = """
name: erase-call-conversations
description: Conversations with a call or voicemail are erased.
resource: conversation
filters:
  - {type: channel, in: [PHONE_CALL, VOICEMAIL]}
actions:
  - {type: erase_conversation}
limits: {max_percent: 100, max_targets: 100000}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The engine tests' world, enriched (inboxes, statuses, attributes) as a planner needs."""
    with sandbox_world(tmp_path, monkeypatch) as w:
        archive = Archive(w.root)
        enrich_archive(
            w.client, archive, max_calls=100_000, now=NOW, candidates=lambda: all_profiles(archive)
        )
        yield w


def _api(world: World, method: str, path: str, body: dict[str, Any]) -> None:
    """One call to the sandbox's real API, as another Gladly user would make it."""
    sandbox = world.sandbox
    answer = requests.request(
        method,
        f"{sandbox.base_url}/api/v1{path}",
        json=body,
        auth=(sandbox.user, sandbox.api_token),
        timeout=10,
    )
    assert answer.status_code == 204, answer.text


def _inbox(world: World, name: str) -> str:
    return next(str(i["id"]) for i in world.sandbox.org.list_inboxes() if i["name"] == name)


def _conversation(world: World, conversation_id: str) -> dict[str, Any]:
    return world.sandbox.org.get_conversation(conversation_id)


def _all_closed(world: World, customer_id: str) -> bool:
    ids = world.sandbox.org.conversation_ids(customer_id)
    return bool(ids) and all(_conversation(world, v)["status"] == "CLOSED" for v in ids)


def _move(world: World, conversation_id: str, inbox_id: str) -> None:
    """Move a closed conversation into another inbox: Gladly reassigns only open ones, so it
    is reopened, reassigned and closed again."""
    path = f"/conversations/{conversation_id}"
    _api(world, "PATCH", path, {"status": {"value": "OPEN"}, "assignee": {"inboxId": inbox_id}})
    _api(world, "PATCH", path, {"status": {"value": "CLOSED", "force": True}})
    assert _conversation(world, conversation_id)["inboxId"] == inbox_id


def _apply(world: World, plan_dir: Path, plan_hash: str, **kw: Any) -> o.RunReport:
    world.sandbox.reset_stats()
    return run_apply(
        plan_dir, plan_hash, root=str(world.root), dry_run=False, client=world.client, **kw
    )


def _events(world: World, target_id: str, step: str) -> list[dict[str, Any]]:
    events = AuditLog(world.root, key=KEY.encode()).events().to_pylist()
    return [e for e in events if e["target_id"] == target_id and e["step"] == step]


def _routes(world: World) -> Counter[str]:
    stats = world.sandbox.stats()["by_route"]
    return Counter({route: sum(codes.values()) for route, codes in stats.items()})


def test_an_attribute_changed_since_planning_skips_the_customer(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(NOT_GOLD)
    ids = [t["target_id"] for t in targets]
    changed = next(c for c in ids if _all_closed(world, c))
    _api(
        world,
        "PATCH",
        f"/customer-profiles/{changed}",
        {"customAttributes": {"loyaltyTier": "gold"}},
    )
    report = _apply(world, plan_dir, plan_hash)
    outcome = {x.target_id: x for x in report.outcomes}
    why = "filters[1] custom_attribute loyaltyTier ne … no longer holds live"
    assert (outcome[changed].outcome, outcome[changed].detail) == (o.SKIPPED_CHANGED, why)
    assert world.customer(changed)["deleted"] is False  # the sandbox's truth, not our report
    (recheck,) = _events(world, changed, "filter_check")
    assert (recheck["outcome"], recheck["detail"]) == ("changed", why)
    (final,) = _events(world, changed, "outcome")
    assert (final["outcome"], final["detail"]) == (o.SKIPPED_CHANGED, why)
    details = [e["detail"] for e in AuditLog(world.root, key=KEY.encode()).events().to_pylist()]
    assert not [d for d in details if d and "gold" in d]  # the value never reaches the log
    assert not _events(world, changed, "act")
    # Everyone else as before; the profile read makes four calls a deleted profile.
    kinds = Counter(x.outcome for x in report.outcomes)
    assert set(kinds) <= {o.DELETED, o.BLOCKED_OPEN, o.SKIPPED_CHANGED}
    assert kinds[o.SKIPPED_CHANGED] == 1
    assert kinds[o.DELETED] >= 3
    spared = len(ids) - kinds[o.DELETED]
    assert world.sandbox.stats()["total"] == 4 * kinds[o.DELETED] + 2 * spared
    assert report.api_calls == {
        "GET": 3 * kinds[o.DELETED] + 2 * spared,
        "DELETE": kinds[o.DELETED],
    }
    assert report.ok
    assert report.needs_attention


def test_a_conversation_reopened_since_planning_is_not_closed_and_deleted(world: World) -> None:
    # The policy may close open conversations, but it chose customers without one: a customer
    # who reopened one since is no longer what the policy selected.
    plan_dir, plan_hash, targets = world.plan(NONE_OPEN)
    reopened = next(t["target_id"] for t in targets if _all_closed(world, t["target_id"]))
    conversation = world.sandbox.org.conversation_ids(reopened)[0]
    _api(world, "PATCH", f"/conversations/{conversation}", {"status": {"value": "OPEN"}})
    report = _apply(world, plan_dir, plan_hash)
    outcome = {x.target_id: x for x in report.outcomes}
    assert outcome[reopened].outcome == o.SKIPPED_CHANGED
    assert outcome[reopened].detail == (
        "filters[1] value has_open_conversation eq false no longer holds live"
    )
    assert world.customer(reopened)["deleted"] is False
    assert _conversation(world, conversation)["status"] == "OPEN"
    assert _routes(world)["PATCH /conversations/{conversationId}"] == 0  # nothing was closed
    # Three calls a profile (list, DELETE, verification): the list is the conversations read.
    deleted = sum(x.outcome == o.DELETED for x in report.outcomes)
    assert deleted == len(targets) - 1
    assert world.sandbox.stats()["total"] == 3 * deleted + 1


def test_an_item_whose_conversation_moved_into_an_excluded_inbox_is_skipped(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(CALLS_OUTSIDE_VIP)
    items = [t for t in targets if t["target_type"] == "item" and t["operation"] == "redact"]
    by_conversation: dict[str, list[str]] = {}
    for t in items:
        by_conversation.setdefault(t["conversation_id"], []).append(t["target_id"])
    owner = {t["conversation_id"]: t["customer_id"] for t in items}
    movable = [v for v in by_conversation if _all_closed(world, owner[v])]
    assert len(movable) >= 2
    moved, gone = movable[0], next(v for v in movable[1:] if owner[v] != owner[movable[0]])
    _move(world, moved, _inbox(world, "VIP Support"))
    _api(world, "DELETE", f"/customer-profiles/{owner[gone]}", {})
    before = {i: world.sandbox.org.get_item(i) for i in by_conversation[moved]}
    report = _apply(world, plan_dir, plan_hash)
    outcome = {x.target_id: x for x in report.outcomes}
    why = "filters[1] inbox not_in [VIP Support] no longer holds live"
    for item in by_conversation[moved]:
        assert (outcome[item].outcome, outcome[item].detail) == (o.SKIPPED_CHANGED, why)
        assert world.sandbox.org.get_item(item) == before[item]  # content still there
        (recheck,) = _events(world, item, "filter_check")
        assert (recheck["outcome"], recheck["detail"]) == ("changed", why)
    # Its customer deleted meanwhile: the conversation read answers 404 — already absent,
    # and no redaction is sent.
    for item in by_conversation[gone]:
        assert outcome[item].outcome == o.ALREADY_ABSENT
        assert outcome[item].detail == "its conversation answers 404"
        assert not _events(world, item, "act")
    rest = [i for v, ids in by_conversation.items() if v not in (moved, gone) for i in ids]
    assert rest
    assert {outcome[i].outcome for i in rest} == {o.REDACTED}
    # Per item: the conversation read, the redaction, its verification — no more.
    routes = _routes(world)
    assert routes["GET /conversations/{conversationId}"] == len(items)
    assert routes["POST /conversation-items/{itemId}/redact"] == len(rest)
    assert world.sandbox.stats()["total"] == len(items) + 2 * len(rest)


def test_unchanged_facts_delete_as_before_with_three_calls_a_profile(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="false"))
    report = _apply(world, plan_dir, plan_hash)
    kinds = Counter(x.outcome for x in report.outcomes)
    assert set(kinds) <= {o.DELETED, o.BLOCKED_OPEN}
    assert kinds[o.DELETED] >= 5
    for x in report.outcomes:
        assert world.customer(x.target_id)["deleted"] is (x.outcome == o.DELETED)
    # An age-only policy reads nothing Gladly could have changed: no profile read.
    assert world.sandbox.stats()["total"] == 3 * kinds[o.DELETED] + kinds[o.BLOCKED_OPEN]
    assert not any(_events(world, t["target_id"], "filter_check") for t in targets)


def test_unchanged_attributes_delete_as_before_with_one_read_more(world: World) -> None:
    plan_dir, plan_hash, _ = world.plan(NOT_GOLD)
    report = _apply(world, plan_dir, plan_hash)
    kinds = Counter(x.outcome for x in report.outcomes)
    assert set(kinds) <= {o.DELETED, o.BLOCKED_OPEN}
    assert kinds[o.DELETED] >= 3
    for x in report.outcomes:
        assert world.customer(x.target_id)["deleted"] is (x.outcome == o.DELETED)
    assert world.sandbox.stats()["total"] == 4 * kinds[o.DELETED] + 2 * kinds[o.BLOCKED_OPEN]
    holds = [_events(world, x.target_id, "filter_check") for x in report.outcomes]
    assert all(len(h) == 1 and h[0]["outcome"] == "holds" for h in holds)


@pytest.mark.parametrize("tamper", ["changed", "missing"])
def test_a_definition_that_does_not_match_its_hash_fails_without_a_call(
    world: World, tamper: str
) -> None:
    plan_dir, _, targets = world.plan(INACTIVE.format(close="false"))
    plan = Plan.read(plan_dir)
    policy = dict(plan.policies[0])
    if tamper == "changed":  # someone widens the policy after it was hashed, keeping the hash
        definition = dict(policy["definition"])
        definition["filters"] = [{**definition["filters"][0], "older_than": "P1D"}]
        policy["definition"] = definition
    else:
        del policy["definition"]
    forged = Plan(plan.now, plan.targets, plan.held, [policy], plan.holds_hash)
    forged.write(world.root / "_plans" / "forged")
    for dry_run in (True, False):
        world.sandbox.reset_stats()
        report = run_apply(
            world.root / "_plans" / "forged",
            forged.hash,
            root=str(world.root),
            dry_run=dry_run,
            client=world.client,
        )
        assert len(report.outcomes) == len(targets)
        assert {x.outcome for x in report.outcomes} == {o.FAILED}
        expected = "does not match its version hash" if tamper == "changed" else "no definition"
        assert all(expected in (x.detail or "") for x in report.outcomes)
        assert world.sandbox.stats()["total"] == 0
        assert not report.ok
    assert world.sandbox.org.counts()["deleted_customers"] == 0


def _hold(world: World, kind: str, value: str) -> Path:
    registry = HoldRegistry.empty(key=KEY.encode()).add(
        kind, value, reason="litigation", reference="LEGAL-9"
    )
    path = world.tmp / "holds.yaml"
    registry.write(path)
    return path


def test_a_conversation_moved_into_a_held_inbox_is_held(world: World) -> None:
    vip = _inbox(world, "VIP Support")
    # A customer target: its conversations are listed live before the call.
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="false"))
    outside = [
        t["target_id"]
        for t in targets
        if _all_closed(world, t["target_id"])
        and all(
            _conversation(world, v)["inboxId"] != vip
            for v in world.sandbox.org.conversation_ids(t["target_id"])
        )
    ]
    customer = outside[0]
    _move(world, world.sandbox.org.conversation_ids(customer)[0], vip)
    # An item target of a policy that reads no inbox: the hold alone makes it read the
    # conversation before the call.
    items_dir, items_hash, items = world.plan(CALL_CONVERSATIONS, "calls")
    redact = [t for t in items if t["operation"] == "redact" and t["customer_id"] not in outside]
    conversation = next(
        t["conversation_id"]
        for t in redact
        if _conversation(world, t["conversation_id"])["inboxId"] != vip
        and _all_closed(world, t["customer_id"])
    )
    _move(world, conversation, vip)
    holds = _hold(world, "inbox", vip)
    report = _apply(world, plan_dir, plan_hash, holds_path=holds)
    outcome = {x.target_id: x for x in report.outcomes}
    assert outcome[customer].outcome == o.HELD
    assert f"inbox={vip} [LEGAL-9]" in (outcome[customer].detail or "")
    assert world.customer(customer)["deleted"] is False
    report = _apply(world, items_dir, items_hash, holds_path=holds)
    outcome = {x.target_id: x for x in report.outcomes}
    moved_items = [t["target_id"] for t in redact if t["conversation_id"] == conversation]
    assert moved_items
    for item in moved_items:
        assert outcome[item].outcome == o.HELD
        assert not _events(world, item, "act")
    # Reads are per item (conversation, redact, verify); no profile read for an inbox hold.
    assert _routes(world)["GET /customer-profiles/{customerId}"] == 0


def test_a_custom_attribute_hold_sees_the_live_profile(world: World) -> None:
    plan_dir, plan_hash, targets = world.plan(INACTIVE.format(close="false"))
    customer = next(t["target_id"] for t in targets if _all_closed(world, t["target_id"]))
    _api(
        world,
        "PATCH",
        f"/customer-profiles/{customer}",
        {"customAttributes": {"legalReview": True}},
    )
    holds = _hold(world, "custom_attribute", "legalReview=true")
    report = _apply(world, plan_dir, plan_hash, holds_path=holds)
    outcome = {x.target_id: x for x in report.outcomes}
    assert outcome[customer].outcome == o.HELD
    assert "custom_attribute=legalReview=true" in (outcome[customer].detail or "")
    assert world.customer(customer)["deleted"] is False
    # The hold needs the profile: four calls a deleted profile, two for one spared.
    kinds = Counter(x.outcome for x in report.outcomes)
    spared = len(targets) - kinds[o.DELETED]
    assert world.sandbox.stats()["total"] == 4 * kinds[o.DELETED] + 2 * spared
