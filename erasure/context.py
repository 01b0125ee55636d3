"""What one target's steps share: the target, the audit recorder, holds, the plan's policies."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from audit_log import outcomes as o
from erasure.plan_policies import PolicyCheck
from erasure.subjects import Subject, Subjects
from gladly_client import GladlyClient
from gladly_client.errors import GladlyAPIError, GladlyError
from gladly_client.models import Conversation, Customer
from retention_policies.holds import HeldConversation, HoldRegistry
from retention_policies.recheck import Rechecker
from retention_policies.sweep_plan import SWEEP_POLICY

__all__ = ["AuditAppender", "Call", "Context", "Once", "Recorder", "Target"]

T = TypeVar("T")
K = TypeVar("K")


class Once:
    """A value computed once per key, however many workers ask for it at the same time (what
    Gladly says of one contact, read before the first of its items is acted on)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Any, threading.Lock] = {}
        self._values: dict[Any, Any] = {}

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        """The key's value, computed by the first caller; the others wait for it."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
            value: T = self._values[key]
            return value


class AuditAppender(Protocol):
    """What the engine needs of an audit run (audit_log.writer.AuditRun)."""

    def append(self, **fields: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Target:
    """One row of a plan's targets, as the engine needs it."""

    target_type: str
    target_id: str
    customer_id: str | None
    conversation_id: str | None
    policy_name: str
    policy_hash: str
    action: str
    operation: str
    content_type: str | None = None
    last_activity: datetime | None = None
    close_open_conversations: bool = False
    subject_hash: str | None = None
    attempt: int = 1  # 1 + the earlier runs of this plan that reached the target (resumes)
    attachment_ids: tuple[str, ...] = ()  # an item's attachments, which go with it
    contact_id: str | None = None  # the contact an item target belongs to (contact policies)

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a target within a plan (policy, type, id)."""
        return (self.policy_name, self.target_type, self.target_id)

    def audit_fields(self) -> dict[str, Any]:
        """The target's fields every audit event about it carries."""
        return {
            "target_type": self.target_type,
            "target_id": self.target_id,
            "customer_id": self.customer_id,
            "policy_name": self.policy_name,
            "policy_hash": self.policy_hash,
            "action": self.action,
            "subject_hash": self.subject_hash,
            "attempt": self.attempt,
        }

    def outcome(self, outcome: str, **kw: Any) -> o.TargetOutcome:
        """This target's terminal outcome."""
        return o.TargetOutcome(
            target_type=self.target_type,
            target_id=self.target_id,
            customer_id=self.customer_id,
            policy_name=self.policy_name,
            action=self.action,
            operation=self.operation,
            outcome=outcome,
            **kw,
        )


@dataclass
class Call:
    """The result of one API call as the audit log sees it."""

    value: Any
    status: int | None
    code: str | None
    error: GladlyError | None


class Recorder:
    """Appends audit events (thread-safe) and wraps each API call in an intent and a result.

    The intent is durable before the call starts and the result right after it returns, so a
    crash at any instant leaves an announced call without a result at worst — never a call the
    log does not know of.
    """

    def __init__(self, run: AuditAppender) -> None:
        self._run = run
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def event(self, target: Target, **fields: Any) -> None:
        """One audit event about `target`."""
        with self._lock:
            self._run.append(**target.audit_fields(), **fields)

    def call(
        self, target: Target, step: str, method: str, ok_status: int, fn: Callable[[], T]
    ) -> Call:
        """Announce, make and record one call; Gladly's refusals are returned, not raised."""
        self.event(target, step=step, phase="intent", detail=method)
        started = time.perf_counter()
        value: Any = None
        status: int | None = ok_status
        code: str | None = None
        error: GladlyError | None = None
        try:
            value = fn()
        except GladlyAPIError as exc:
            status, code, error = exc.status, exc.code, exc
        except GladlyError as exc:  # connection errors after the client's own retries
            status, code, error = None, type(exc).__name__, exc
        with self._lock:
            self.calls[method] += 1
        self.event(
            target,
            step=step,
            phase="result",
            http_status=status,
            error_code=code,
            duration_ms=(time.perf_counter() - started) * 1000,
            outcome="ok" if error is None else "error",
        )
        return Call(value, status, code, error)


@dataclass
class Context:
    """Everything a target's steps share: the client, the audit recorder, holds, subjects."""

    client: GladlyClient
    recorder: Recorder
    holds: Callable[[], HoldRegistry]
    subjects: Subjects
    now: datetime
    dry_run: bool
    merged: dict[str, str] = field(default_factory=dict)  # old id → id it lives under now
    # Customers this run erased: their items are gone with them, no call needed.
    erased: set[str] = field(default_factory=set)
    # Targets an earlier attempt of the same plan or request sent its destructive call for
    # (the audit log's intent): a 404 now is that call having taken effect.
    sent: frozenset[tuple[str, str, str]] = frozenset()
    # The plan's policies rebuilt from their definitions, by name (one-off requests have none):
    # what the live re-check evaluates, at the plan's `now`, on the rechecker's connections.
    policies: dict[str, PolicyCheck] = field(default_factory=dict)
    plan_now: datetime | None = None
    rechecker: Rechecker = field(default_factory=Rechecker)
    # Per contact policy, every item the plan lists for its contacts (targets and held): a
    # contact showing another item live has changed since planning.
    contact_items: dict[str, frozenset[str]] = field(default_factory=dict)
    contacts: Once = field(default_factory=Once)  # each contact read live once per run

    def policy_check(self, target: Target) -> PolicyCheck | None:
        """The target's policy as the plan defines it; None for a one-off request or a sweep
        (holds are all they re-check). A policy the plan does not define, or whose definition
        does not match the target's version hash, comes back with its problem."""
        if target.policy_name in (o.ONE_OFF_POLICY, SWEEP_POLICY):
            return None
        check = self.policies.get(target.policy_name)
        if check is None:
            return PolicyCheck(target.policy_name, None, "the plan does not define its policy")
        if check.policy is not None and check.policy.version_hash != target.policy_hash:
            return PolicyCheck(
                check.name, None, "its policy hash differs from the policy the plan defines"
            )
        return check

    def hold_labels(
        self,
        target: Target,
        customer_id: str | None,
        live: Sequence[Conversation] = (),
        profile: Customer | None = None,
    ) -> list[str]:
        """The holds protecting the target now: its customer, contacts, attributes, and the
        conversations the archive knows of or the pre-flight just saw. A profile just read
        adds its contacts and replaces the archive's custom attributes (it is the truth now)."""
        registry = self.holds()
        subject = self.subjects.subject(customer_id)
        if profile is not None:
            live_subject = Subject.from_profile(profile)
            subject = Subject(
                subject.customer_id,
                tuple(dict.fromkeys((*live_subject.emails, *subject.emails))),
                tuple(dict.fromkeys((*live_subject.phones, *subject.phones))),
                live_subject.custom_attributes,
            )
        convs = [HeldConversation(c.id, c.inbox_id, tuple(c.topic_ids)) for c in live]
        if target.conversation_id and target.conversation_id in self.subjects.conversations:
            convs.append(self.subjects.conversations[target.conversation_id])
        elif target.conversation_id:
            convs.append(HeldConversation(target.conversation_id))
        if target.target_type == "customer" and customer_id is not None:
            convs.extend(self.subjects.owned.get(customer_id, ()))
        ids = {customer_id, target.customer_id} - {None}
        email_hashes = [registry.hash_email(e) for e in subject.emails]
        phone_hashes = [registry.hash_phone(p) for p in subject.phones]
        labels: set[str] = set()
        for cid in ids:
            labels.update(
                registry.matching(
                    self.now,
                    customer_id=cid,
                    email_hashes=email_hashes,
                    phone_hashes=phone_hashes,
                    custom_attributes=subject.custom_attributes,
                    conversations=convs,
                    names=self.subjects.names,
                )
            )
        return sorted(labels)

    def check_holds(
        self,
        target: Target,
        customer_id: str | None,
        live: Sequence[Conversation] = (),
        profile: Customer | None = None,
    ) -> o.TargetOutcome | None:
        """Record the hold check; the HELD outcome when a hold protects the target."""
        labels = self.hold_labels(target, customer_id, live, profile)
        self.recorder.event(
            target,
            step="hold_check",
            phase="result",
            outcome="held" if labels else "clear",
            detail="; ".join(labels) or None,
        )
        return target.outcome(o.HELD, detail="; ".join(labels)) if labels else None
