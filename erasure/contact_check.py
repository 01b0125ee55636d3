"""The live re-check of a contact policy's targets: the contact as Gladly shows it now.

Before the first of a contact's items is redacted or deleted, its conversation's items are
listed and the contact is found again by the planner's rule (retention_policies.contacts).
Should it hold an item the plan does not list — the chat went on, another SMS joined the
exchange, a note was written inside it — it changed since planning and none of its items is
touched (skipped_changed). Its conversation and profile are read when the policy's filters or
a hold in force need them, and the filters are evaluated on the live contact. One read per
contact per run: its other items share the verdict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from audit_log import outcomes as o
from erasure import live_check
from erasure.contact import contact_item
from erasure.context import Context, Target
from erasure.plan_policies import PolicyCheck
from gladly_client.errors import CustomerMovedError, NotFoundError
from gladly_client.models import Conversation, Customer
from retention_policies.contact_facts import contact_row
from retention_policies.contacts import NotAContactError, contact_of
from retention_policies.recheck import Recheck

__all__ = ["LiveContact", "contact_recheck"]


@dataclass(frozen=True)
class LiveContact:
    """What one live read of a contact decided: a stop for all its items (outcome, status,
    detail), or the live conversation and profile read and the filters' verdict."""

    stop: tuple[str, int | None, str] | None = None
    conversation: Conversation | None = None
    profile: Customer | None = None
    recheck: Recheck | None = None


def contact_recheck(ctx: Context, target: Target, check: PolicyCheck) -> o.TargetOutcome | None:
    """Just before an item of a contact policy is acted on: the contact read live (once per
    contact), the holds against what that read showed, the filters. None: go ahead."""
    key = (target.policy_name, target.conversation_id, target.contact_id)
    live = ctx.contacts.get(key, lambda: _read(ctx, target, check))
    if live.stop is not None:
        outcome, status, detail = live.stop
        ctx.recorder.event(
            target, step="contact_check", phase="result", outcome=outcome, detail=detail
        )
        return target.outcome(outcome, http_status=status, detail=detail)
    ctx.recorder.event(target, step="contact_check", phase="result", outcome="same")
    if live.conversation is not None or live.profile is not None:
        seen = [live.conversation] if live.conversation is not None else []
        held = ctx.check_holds(target, target.customer_id, seen, live.profile)
        if held is not None:
            return held
    if live.recheck is None:
        return None
    return live_check.record_recheck(ctx, target, live.recheck)


def _read(ctx: Context, target: Target, check: PolicyCheck) -> LiveContact:
    rec, client = ctx.recorder, ctx.client
    conversation_id, contact_id = target.conversation_id, target.contact_id
    if not conversation_id or not contact_id:
        return LiveContact(stop=(o.FAILED, None, "the plan names no contact for this item"))
    listed = rec.call(
        target,
        "recheck",
        "GET",
        200,
        lambda: client.items.list_for_conversation(conversation_id),
    )
    if isinstance(listed.error, NotFoundError):
        return LiveContact(stop=(o.ALREADY_ABSENT, 404, "its conversation answers 404"))
    if listed.error is not None:
        detail = "re-check: listing the contact's conversation"
        return LiveContact(stop=(o.FAILED, listed.status, detail))
    if listed.value.truncated:
        detail = "Gladly cut the conversation's items at 1000: the contact cannot be proven"
        return LiveContact(stop=(o.PREFLIGHT_INCOMPLETE, None, detail))
    try:
        group = contact_of([contact_item(i) for i in listed.value.items], contact_id)
    except NotAContactError:
        group = None
    if group is None:
        detail = "the contact is no longer found in its conversation: not confirmed"
        return LiveContact(stop=(o.SKIPPED_CHANGED, None, detail))
    planned = ctx.contact_items.get(target.policy_name, frozenset())
    unplanned = [m for m in group.members if m.item_id not in planned]
    if unplanned:
        detail = (
            f"the contact holds {len(unplanned)} item(s) the plan does not list: it changed "
            "since planning"
        )
        return LiveContact(stop=(o.SKIPPED_CHANGED, None, detail))
    conversation: Conversation | None = None
    profile: Customer | None = None
    if live_check.wants_conversation(ctx, check):
        got = rec.call(
            target, "recheck", "GET", 200, lambda: client.conversations.get(conversation_id)
        )
        if isinstance(got.error, NotFoundError):
            return LiveContact(stop=(o.ALREADY_ABSENT, 404, "its conversation answers 404"))
        if got.error is not None:
            return LiveContact(stop=(o.FAILED, got.status, "re-check: reading the conversation"))
        conversation = got.value
    customer_id = target.customer_id
    if customer_id and live_check.wants_profile(ctx, check):
        got = rec.call(target, "recheck", "GET", 200, lambda: client.customers.get(customer_id))
        if isinstance(got.error, NotFoundError):
            return LiveContact(stop=(o.ALREADY_ABSENT, 404, "its customer answers 404"))
        if isinstance(got.error, CustomerMovedError):
            detail = "its customer was merged into another profile: facts not confirmed"
            return LiveContact(stop=(o.SKIPPED_CHANGED, got.status, detail))
        if got.error is not None:
            return LiveContact(stop=(o.FAILED, got.status, "re-check: reading the profile"))
        profile = got.value
    result: Recheck | None = None
    if check.policy is not None and check.sources:
        facts = live_check.item_facts(ctx.subjects, target, conversation, profile)
        row = contact_row(group, conversation_id, customer_id or "")
        facts = dataclasses.replace(facts, items=[], contacts=[row])
        when = ctx.plan_now or ctx.now
        result = ctx.rechecker.check(check.policy, contact_id, facts, when, ctx.subjects.names)
    return LiveContact(conversation=conversation, profile=profile, recheck=result)
