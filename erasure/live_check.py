"""The live re-check: what a policy decided on, read again from Gladly just before each call."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from audit_log import outcomes as o
from audit_log.fields import check_value
from audit_log.files import AuditError
from erasure.context import Context, Target
from erasure.plan_policies import PolicyCheck
from erasure.subjects import Subjects
from gladly_client.errors import CustomerMovedError, NotFoundError
from gladly_client.models import Conversation, Customer
from retention_policies.recheck import (
    CHANGED,
    LIVE_CONVERSATIONS,
    LIVE_PROFILE,
    Recheck,
    SubjectFacts,
)

__all__ = [
    "customer_changed",
    "customer_facts",
    "item_facts",
    "item_recheck",
    "record_recheck",
    "wants_conversation",
    "wants_profile",
]

# Holds that look at what a live read shows: a conversation's inbox or topics, a profile's
# custom attributes. While one is in force the read is made even if no filter needs it.
_CONVERSATION_HOLDS = frozenset({"inbox", "topic"})
_PROFILE_HOLDS = frozenset({"custom_attribute"})
_OPEN = ("OPEN", "WAITING")  # as the planner's facts count a conversation open


def _active_kinds(ctx: Context) -> set[str]:
    return {h.kind for h in ctx.holds().active(ctx.now)}


def wants_profile(ctx: Context, check: PolicyCheck | None) -> bool:
    """Whether the target's customer profile must be read: the policy's filters read custom
    attributes, or a custom-attribute hold is in force. Never for one-off requests."""
    if check is None or check.policy is None:
        return False
    return LIVE_PROFILE in check.sources or bool(_active_kinds(ctx) & _PROFILE_HOLDS)


def wants_conversation(ctx: Context, check: PolicyCheck | None) -> bool:
    """Whether an item's conversation must be read: the filters read its inbox, status,
    topics or closing time, or an inbox or topic hold is in force."""
    if check is None or check.policy is None:
        return False
    return LIVE_CONVERSATIONS in check.sources or bool(_active_kinds(ctx) & _CONVERSATION_HOLDS)


def _attrs_json(profile: Customer) -> str:
    # As ingest.enrich stores a profile's attributes (what the planner read).
    return json.dumps(profile.custom_attributes, sort_keys=True)


def _conversation_row(
    known: Mapping[str, Any] | None, live: Conversation, customer_id: str, attrs: str | None
) -> dict[str, Any]:
    """The archive's row of a conversation with what Gladly says of it now."""
    row = dict(known or {})
    row.update(
        conversation_id=live.id,
        customer_id=customer_id,
        created_at=row.get("created_at") or live.created_at,
        inbox_id=live.inbox_id,
        status=live.status,
        topic_ids=sorted(live.topic_ids),
        closed_at=live.closed_at if live.status == "CLOSED" else None,
        channels=row.get("channels") or [],
        item_count=row.get("item_count") or 0,
        custom_attributes=attrs,
    )
    return row


def _customer_row(subjects: Subjects, customer_id: str, attrs: str | None) -> dict[str, Any]:
    row = dict(subjects.fact_customers.get(customer_id) or {})
    row.update(customer_id=customer_id, custom_attributes=attrs)
    return row


def customer_facts(
    subjects: Subjects,
    customer_id: str,
    conversations: Sequence[Conversation],
    profile: Customer | None,
) -> SubjectFacts:
    """A customer target's facts: the archive's row, with the live conversation list (and the
    counts it gives) and, when read, the live profile's custom attributes."""
    known = subjects.fact_customers.get(customer_id) or {}
    attrs = _attrs_json(profile) if profile is not None else known.get("custom_attributes")
    convs = [
        _conversation_row(subjects.fact_conversations.get(c.id), c, customer_id, attrs)
        for c in conversations
    ]
    customer = _customer_row(subjects, customer_id, attrs)
    customer.update(
        conversation_count=len(convs),
        has_open_conversation=any(c.status in _OPEN for c in conversations),
        inbox_ids=None,  # roll-ups: rebuilt from the live conversations
        topic_ids=None,
        conversation_statuses=None,
    )
    return SubjectFacts(customers=[customer], conversations=convs)


def item_facts(
    subjects: Subjects,
    target: Target,
    conversation: Conversation | None,
    profile: Customer | None,
) -> SubjectFacts:
    """An item target's facts: its archived row, its conversation's (live when read) and its
    customer's (live attributes when read)."""
    cid = target.customer_id or ""
    known = subjects.fact_customers.get(cid) or {}
    attrs = _attrs_json(profile) if profile is not None else known.get("custom_attributes")
    archived = subjects.fact_conversations.get(target.conversation_id)
    conv: dict[str, Any] | None = None
    if conversation is not None:
        conv = _conversation_row(archived, conversation, cid, attrs)
    elif archived is not None:
        conv = {**archived, "custom_attributes": attrs}
    item = subjects.fact_items.get(target.target_id)
    return SubjectFacts(
        customers=[_customer_row(subjects, cid, attrs)] if cid else [],
        conversations=[conv] if conv else [],
        items=[item] if item else [],
    )


def _decided_at(ctx: Context) -> datetime:
    """The moment ages are measured from: the plan's `now`, as when the policy decided (the
    re-check asks whether the facts changed, not whether time passed)."""
    return ctx.plan_now or ctx.now


def record_recheck(ctx: Context, target: Target, result: Recheck) -> o.TargetOutcome | None:
    """The re-check's verdict as an audit event; SKIPPED_CHANGED unless every filter holds."""
    detail = _safe_detail(result)
    if result.holds:
        verdict = "holds"
    else:
        verdict = "changed" if all(r.state == CHANGED for r in result.failing) else "unconfirmed"
    ctx.recorder.event(target, step="filter_check", phase="result", outcome=verdict, detail=detail)
    if result.holds:
        return None
    return target.outcome(o.SKIPPED_CHANGED, detail=detail)


def _safe_detail(result: Recheck) -> str | None:
    """The verdict in words; should a policy's own text look like personal data to the audit
    log's guard (an inbox named with a phone number), only the filters' kinds are named."""
    detail = result.detail
    try:
        check_value("detail", detail)
    except AuditError:
        detail = "; ".join(
            f"filters[{r.index}] {r.text.split(' ', 1)[0]} "
            + ("no longer holds live" if r.state == CHANGED else "could not be confirmed live")
            for r in result.failing
        )
    return detail


def customer_changed(
    ctx: Context,
    target: Target,
    check: PolicyCheck | None,
    conversations: Sequence[Conversation],
    profile: Customer | None,
) -> o.TargetOutcome | None:
    """Re-evaluate a customer target's filters over its live conversations (and profile);
    SKIPPED_CHANGED when one no longer holds. Filters that read nothing Gladly could have
    changed since planning (ages, counts of items) have nothing to re-check."""
    if check is None or check.policy is None or not check.sources:
        return None
    facts = customer_facts(ctx.subjects, target.target_id, conversations, profile)
    result = ctx.rechecker.check(
        check.policy, target.target_id, facts, _decided_at(ctx), ctx.subjects.names
    )
    return record_recheck(ctx, target, result)


def item_recheck(ctx: Context, target: Target, check: PolicyCheck | None) -> o.TargetOutcome | None:
    """Before an item's redaction or deletion: read its conversation and its customer's profile
    when the policy's filters or a hold in force need them (at most two GETs), check the holds
    against what they show, then the filters. None: go ahead."""
    rec, client = ctx.recorder, ctx.client
    conversation: Conversation | None = None
    profile: Customer | None = None
    conversation_id, customer_id = target.conversation_id, target.customer_id
    if conversation_id and wants_conversation(ctx, check):
        got = rec.call(
            target, "recheck", "GET", 200, lambda: client.conversations.get(conversation_id)
        )
        if isinstance(got.error, NotFoundError):
            return target.outcome(
                o.ALREADY_ABSENT, http_status=404, detail="its conversation answers 404"
            )
        if got.error is not None:
            return _failed(target, got.status, got.code, "re-check: reading the conversation")
        conversation = got.value
    if customer_id and wants_profile(ctx, check):
        got = rec.call(target, "recheck", "GET", 200, lambda: client.customers.get(customer_id))
        if isinstance(got.error, NotFoundError):
            return target.outcome(
                o.ALREADY_ABSENT, http_status=404, detail="its customer answers 404"
            )
        if isinstance(got.error, CustomerMovedError):
            # Merged into another profile: whose attributes decide is no longer the plan's.
            return target.outcome(
                o.SKIPPED_CHANGED,
                http_status=got.status,
                detail="its customer was merged into another profile: facts not confirmed",
            )
        if got.error is not None:
            return _failed(target, got.status, got.code, "re-check: reading the profile")
        profile = got.value
    if conversation is None and profile is None:
        return None  # nothing read live: the holds were checked on what the archive knows
    live = [conversation] if conversation is not None else []
    held = ctx.check_holds(target, customer_id, live, profile)
    if held is not None:
        return held
    if check is None or check.policy is None or not check.sources:
        return None
    policy = check.policy
    subject = target.conversation_id if policy.resource == "conversation" else target.target_id
    facts = item_facts(ctx.subjects, target, conversation, profile)
    when = _decided_at(ctx)
    result = ctx.rechecker.check(policy, subject or "", facts, when, ctx.subjects.names)
    return record_recheck(ctx, target, result)


def _failed(target: Target, status: int | None, code: str | None, what: str) -> o.TargetOutcome:
    return target.outcome(o.FAILED, http_status=status, error_code=code, detail=what)
