"""One target through the engine: hold check, live pre-flight and re-check, act, verify."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import timedelta

from audit_log import outcomes as o
from audit_log.fields import check_value
from audit_log.files import AuditError
from erasure import contact_check, live_check
from erasure.context import Call, Context, Recorder, Target
from erasure.plan_policies import PolicyCheck
from gladly_client import GladlyClient
from gladly_client.errors import (
    CustomerMovedError,
    NotFoundError,
    ProfileHasOpenConversationsError,
)
from gladly_client.item_models import Item
from gladly_client.models import Conversation, Customer

__all__ = ["Context", "Recorder", "Target", "has_content", "run_target"]

# A customer whose live conversations show activity this much after what the plan knew of has
# come back (the margin absorbs Gladly's timestamp rounding).
ACTIVITY_MARGIN = timedelta(seconds=1)


def run_target(ctx: Context, target: Target) -> o.TargetOutcome:
    """Take one target through its steps and return its one terminal outcome; an item's
    attachments are named in it (erased with it, or kept and why)."""
    outcome = _run_target(ctx, target)
    if not target.attachment_ids:
        return outcome
    return dataclasses.replace(outcome, detail=attachments_detail(target, outcome))


# Attachment ids named in one outcome's detail; past this, counts only (the field is bounded).
MAX_ATTACHMENT_IDS = 40


def attachments_detail(target: Target, outcome: o.TargetOutcome) -> str:
    """The outcome's detail with what became of the item's attachments: Gladly's redaction
    removes them with the item's content (the read-back verified none is left); an item the
    API cannot redact keeps them; anything else leaves them where they were. Ids and counts."""
    ids = target.attachment_ids
    if outcome.outcome in (o.REDACTED, o.ITEM_DELETED):
        fate = "erased with the item"
    elif outcome.outcome == o.NOT_ERASABLE:
        fate = "not erasable via the API"
    elif outcome.outcome == o.DRY_RUN:
        fate = "would go with the item"
    else:
        fate = "kept with the item"
    head = f"{len(ids)} attachment(s) {fate}"
    shown = " ".join(ids[:MAX_ATTACHMENT_IDS])
    more = f" and {len(ids) - MAX_ATTACHMENT_IDS} more" if len(ids) > MAX_ATTACHMENT_IDS else ""
    for text in (f"{head}: {shown}{more}", head):
        full = "; ".join(p for p in (outcome.detail, text) if p)
        try:
            return str(check_value("detail", full))
        except AuditError:
            continue  # an id the audit log's guard mistakes for a number: counts only
    return outcome.detail or ""


def _run_target(ctx: Context, target: Target) -> o.TargetOutcome:
    if target.operation == "not_found":
        # An identifier of a one-off request that matches no profile, now or for an earlier
        # attempt: nothing to act on, and the request is not done (a person must look).
        return target.outcome(o.NOT_FOUND, detail="the identifier matches no Gladly profile")
    check = ctx.policy_check(target)
    if check is not None and check.problem is not None:
        # The policy to re-check cannot be trusted: nothing is called for its targets.
        return target.outcome(o.FAILED, detail=check.problem)
    if target.operation == "delete_customer":
        outcome = _customer(ctx, target, check)
        if outcome.outcome in (o.DELETED, o.ALREADY_ABSENT) and target.customer_id:
            ctx.erased.add(target.customer_id)
        return outcome
    held = ctx.check_holds(target, target.customer_id)
    if held is not None:
        return held
    if target.customer_id in ctx.erased and not ctx.dry_run:
        return target.outcome(o.ALREADY_ABSENT, detail="deleted with its customer in this run")
    if target.operation == "not_erasable_via_api":
        return target.outcome(o.NOT_ERASABLE, detail=target.content_type or target.target_type)
    if ctx.dry_run:
        return target.outcome(o.DRY_RUN, detail=f"would {target.operation}")
    if check is not None and check.policy is not None and check.policy.resource == "contact":
        stopped = contact_check.contact_recheck(ctx, target, check)
    else:
        stopped = live_check.item_recheck(ctx, target, check)
    if stopped is not None:
        return stopped
    if target.operation == "redact":
        return _redact(ctx, target)
    if target.operation == "delete":
        return _delete_item(ctx, target)
    return target.outcome(o.FAILED, detail=f"unknown operation {target.operation}")


def _failed(target: Target, call: Call, what: str) -> o.TargetOutcome:
    return target.outcome(o.FAILED, http_status=call.status, error_code=call.code, detail=what)


def _customer(ctx: Context, target: Target, check: PolicyCheck | None) -> o.TargetOutcome:
    held = ctx.check_holds(target, target.customer_id)
    if held is not None:
        return held
    if ctx.dry_run:
        return target.outcome(o.DRY_RUN, detail="would delete_customer")
    rec, client = ctx.recorder, ctx.client
    customer_id = target.target_id
    listed = rec.call(
        target,
        "preflight",
        "GET",
        200,
        lambda: client.conversations.list_for_customer(customer_id),
    )
    if isinstance(listed.error, CustomerMovedError) and listed.error.new_id:
        # A merged id: follow it once to the profile it lives under now, and say so.
        customer_id = listed.error.new_id
        ctx.merged[target.target_id] = customer_id
        rec.event(target, step="preflight", phase="result", outcome="merged", detail=customer_id)
        listed = rec.call(
            target,
            "preflight",
            "GET",
            200,
            lambda: client.conversations.list_for_customer(customer_id),
        )
    moved = f"merged into {customer_id}" if customer_id != target.target_id else None
    if isinstance(listed.error, NotFoundError):
        return _absent(ctx, target, moved)
    if listed.error is not None:
        return _failed(target, listed, "pre-flight: listing conversations")
    conversations = listed.value.conversations
    if listed.value.truncated:
        return target.outcome(
            o.PREFLIGHT_INCOMPLETE, detail="Gladly cut the conversation list at 100"
        )
    profile: Customer | None = None
    if live_check.wants_profile(ctx, check):
        got = rec.call(target, "recheck", "GET", 200, lambda: client.customers.get(customer_id))
        if isinstance(got.error, NotFoundError):
            return _absent(ctx, target, moved)
        if got.error is not None:
            return _failed(target, got, "re-check: reading the profile")
        profile = got.value
    held = ctx.check_holds(target, customer_id, conversations, profile)
    if held is not None:
        return held
    if target.last_activity is not None:
        newest = max(
            (t for c in conversations for t in (c.created_at, c.closed_at) if t is not None),
            default=None,
        )
        if newest is not None and newest > target.last_activity + ACTIVITY_MARGIN:
            return target.outcome(o.BECAME_ACTIVE, detail=moved)
    # Just before the first call that changes anything (closes included): do the policy's
    # filters still hold for what Gladly says now?
    changed = live_check.customer_changed(ctx, target, check, conversations, profile)
    if changed is not None:
        return changed
    still_open = [c for c in conversations if c.is_open]
    if still_open and not target.close_open_conversations:
        return target.outcome(
            o.BLOCKED_OPEN, detail=f"{len(still_open)} open conversation(s); policy may not close"
        )
    for conversation in still_open:
        closed = rec.call(
            target,
            "close_conversation",
            "PATCH",
            204,
            functools.partial(_close, client, conversation),
        )
        if closed.error is not None and not isinstance(closed.error, NotFoundError):
            return _failed(target, closed, f"closing conversation {conversation.id}")
    deleted = rec.call(target, "act", "DELETE", 204, lambda: client.customers.delete(customer_id))
    if isinstance(deleted.error, NotFoundError):
        # The pre-flight just found the profile: a 404 now is our own DELETE whose answer was
        # lost and retried (or one that raced it). Only the verification decides.
        return _verify_customer(ctx, target, customer_id, _join(moved, "the DELETE answered 404"))
    if isinstance(deleted.error, ProfileHasOpenConversationsError):
        return target.outcome(
            o.BLOCKED_OPEN, http_status=400, error_code=deleted.code, detail="opened meanwhile"
        )
    if deleted.error is not None:
        return _failed(target, deleted, "deleting the profile")
    return _verify_customer(ctx, target, customer_id, moved)


def _absent(ctx: Context, target: Target, moved: str | None) -> o.TargetOutcome:
    """The profile answers 404 before we act: whose doing it was decides the outcome.

    Our own DELETE of an earlier attempt (the audit log holds its intent) is a deletion, now
    verified; a profile we knew of (the archive, or this request's lookup) is already absent —
    not an erasure of ours; an id nobody ever saw matches no one."""
    if target.key in ctx.sent:
        why = "the DELETE of an earlier attempt took effect: Gladly answers 404"
        return target.outcome(o.DELETED, http_status=404, detail=_join(moved, why))
    known = {target.target_id, target.customer_id} & ctx.subjects.known
    if known:
        return target.outcome(o.ALREADY_ABSENT, http_status=404, detail=moved)
    return target.outcome(
        o.NOT_FOUND, http_status=404, detail="no Gladly profile has this id, and we never saw it"
    )


def _close(client: GladlyClient, conversation: Conversation) -> None:
    client.conversations.close(conversation.id, force=True)


def _verify_customer(
    ctx: Context, target: Target, customer_id: str, moved: str | None
) -> o.TargetOutcome:
    """One call: a search by the customer's email (or phone) must not find the profile; with
    neither known, reading the profile must answer 404."""
    rec, client = ctx.recorder, ctx.client
    subject = ctx.subjects.subject(target.customer_id)
    if subject.emails or subject.phones:
        email = subject.emails[0] if subject.emails else None
        phone = None if email else subject.phones[0]
        found = rec.call(
            target, "verify", "GET", 200, lambda: client.customers.find(email=email, phone=phone)
        )
        if found.error is not None:
            return _failed(target, found, "verification search")
        ids = {c.id for c in found.value}
        if ids & {customer_id, target.target_id}:
            return target.outcome(o.VERIFY_FAILED, detail="search still finds the profile")
        if ids:
            # Gladly recreates a profile on new contact: a different profile holds it now.
            return target.outcome(
                o.DELETED, detail=_join(moved, "a new profile holds this contact (reappeared)")
            )
        return target.outcome(o.DELETED, detail=moved)
    got = rec.call(target, "verify", "GET", 200, lambda: client.customers.get(customer_id))
    if isinstance(got.error, NotFoundError):
        return target.outcome(o.DELETED, detail=moved)
    if got.error is None or isinstance(got.error, CustomerMovedError):
        return target.outcome(o.VERIFY_FAILED, http_status=got.status, detail="profile answers")
    return _failed(target, got, "verification read")


def _join(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


def _redact(ctx: Context, target: Target) -> o.TargetOutcome:
    return _erase_item(ctx, target, "POST", 201, ctx.client.items.redact, "redacting", o.REDACTED)


def _delete_item(ctx: Context, target: Target) -> o.TargetOutcome:
    return _erase_item(
        ctx, target, "DELETE", 204, ctx.client.items.delete, "deleting", o.ITEM_DELETED
    )


def _erase_item(
    ctx: Context,
    target: Target,
    method: str,
    ok_status: int,
    act: Callable[[str], None],
    verb: str,
    erased: str,
) -> o.TargetOutcome:
    """Redact or delete one item, then read it back: a redacted item must carry no content,
    a deleted one must answer 404."""
    rec, client = ctx.recorder, ctx.client
    done = rec.call(target, "act", method, ok_status, functools.partial(act, target.target_id))
    # A DELETE answering 404 is our own whose answer was lost and retried (or a race): the
    # read-back decides. A redaction answering 404 finds the item gone.
    gone = isinstance(done.error, NotFoundError)
    if gone and erased != o.ITEM_DELETED:
        return target.outcome(o.ALREADY_ABSENT, http_status=404, detail=target.content_type)
    if done.error is not None and not gone:
        return _failed(target, done, f"{verb} a {target.content_type} item")
    read = rec.call(target, "verify", "GET", 200, lambda: client.items.get(target.target_id))
    if isinstance(read.error, NotFoundError):
        return target.outcome(erased, detail=target.content_type)
    if read.error is not None:
        return _failed(target, read, "verification read")
    if erased == o.ITEM_DELETED:
        return target.outcome(o.VERIFY_FAILED, detail="item still answers")
    if has_content(read.value):
        return target.outcome(o.VERIFY_FAILED, detail="item still has content")
    return target.outcome(erased, detail=target.content_type)


_TEXT_KEYS = ("body", "content", "subject")


def has_content(item: Item) -> bool:
    """Whether a read-back item still carries anything a person wrote or said."""
    if item.text:
        return True
    content = item.raw.get("content") or {}
    if any(isinstance(content.get(k), str) and content[k].strip() for k in _TEXT_KEYS):
        return True
    return bool(content.get("attachments")) or bool(content.get("recordingUrl"))
