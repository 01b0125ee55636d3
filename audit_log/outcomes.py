"""What the deletion engine says happened to each target: one terminal outcome, in plain words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ALREADY_ABSENT",
    "BECAME_ACTIVE",
    "BLOCKED_OPEN",
    "DELETED",
    "DRY_RUN",
    "FAILED",
    "FINAL_OUTCOMES",
    "HELD",
    "ITEM_DELETED",
    "MEANINGS",
    "NOT_ERASABLE",
    "NOT_FOUND",
    "ONE_OFF_POLICY",
    "PREFLIGHT_INCOMPLETE",
    "REDACTED",
    "SKIPPED_CHANGED",
    "UNLINKED",
    "UNLINK_POLICY",
    "VERIFY_FAILED",
    "RunReport",
    "TargetOutcome",
    "rehearsal_runs",
    "request_key",
]

DELETED = "deleted"  # the profile (and every conversation in it) is gone; verified
REDACTED = "redacted"  # the item's content is gone; verified
ITEM_DELETED = "item_deleted"  # a CUSTOMER_ACTIVITY item is gone
# Gladly says it does not exist, but we knew of it (our archive, or this request's lookup): not
# an erasure of ours; our archive's copy is erased (tombstoned) only if the archive held it.
ALREADY_ABSENT = "already_absent"
NOT_FOUND = "not_found"  # a target that matches no one: nothing known, nothing erased
NOT_ERASABLE = "not_erasable_via_api"  # Gladly's API offers no way to erase it (reported, kept)
HELD = "held"  # a legal hold protects it (checked again just before the call)
BECAME_ACTIVE = "became_active"  # the customer has activity newer than the plan knew of
# What the policy's filters read changed in Gladly since planning (re-checked just before the
# call): e.g. the conversation moved into an excluded inbox, an attribute changed.
SKIPPED_CHANGED = "skipped_changed"
BLOCKED_OPEN = "blocked_open_conversation"  # open conversation and the policy may not close it
PREFLIGHT_INCOMPLETE = "preflight_incomplete"  # Gladly cut the conversation list: not provable
VERIFY_FAILED = "verify_failed"  # the call succeeded but reading back still finds the data
FAILED = "failed"  # Gladly refused or kept failing after the client's retries
DRY_RUN = "dry_run"  # nothing was called; `detail` says what would be
# One detail (email, phone, external id) is off a profile, verified; not an erasure of the
# customer, so not a FINAL_OUTCOME of the deletion engine (`gladly-pipeline unlink`).
UNLINKED = "unlinked"

# The policy name of one-off requests: their targets belong to the request (its keyed hash is
# their policy_hash), which keeps its identity over reruns; a policy's targets to their plan.
ONE_OFF_POLICY = "one-off"
# The policy name of `gladly-pipeline unlink` requests: theirs too by the request's hash.
UNLINK_POLICY = "unlink"

# Outcomes a rerun of the same plan leaves alone; FAILED, VERIFY_FAILED and DRY_RUN are tried
# again (a rerun converges on the rest).
FINAL_OUTCOMES = frozenset(
    {DELETED, REDACTED, ITEM_DELETED, ALREADY_ABSENT, NOT_FOUND, NOT_ERASABLE, HELD}
    | {BECAME_ACTIVE, SKIPPED_CHANGED, BLOCKED_OPEN, PREFLIGHT_INCOMPLETE}
)

# Each outcome in plain words, as reports show it beside the name.
MEANINGS = {
    DELETED: "done: the profile is deleted, verified",
    REDACTED: "done: the item's content is redacted, verified",
    ITEM_DELETED: "done: the item is deleted, verified",
    ALREADY_ABSENT: "not done by us: Gladly no longer holds it",
    NOT_FOUND: "not done: matches no one",
    NOT_ERASABLE: "not done: Gladly's API cannot erase it",
    HELD: "not done: a legal hold protects it",
    BECAME_ACTIVE: "not done: skipped because the customer became active again",
    SKIPPED_CHANGED: "not done: skipped because the facts changed",
    BLOCKED_OPEN: "not done: an open conversation the policy may not close",
    PREFLIGHT_INCOMPLETE: "not done: Gladly's conversation list was cut, not provable",
    VERIFY_FAILED: "not done: the read-back still finds the data",
    FAILED: "not done: failed (a rerun tries again)",
    DRY_RUN: "not done: rehearsal only",
    UNLINKED: "done: the detail is off the profile, verified (the rest of it kept)",
}


@dataclass(frozen=True)
class TargetOutcome:
    """One target's terminal outcome. Ids and codes only: never an email, phone or text."""

    target_type: str
    target_id: str
    customer_id: str | None
    policy_name: str
    action: str
    operation: str
    outcome: str
    http_status: int | None = None
    error_code: str | None = None
    detail: str | None = None  # e.g. the id a merged customer now lives under, a content type

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a target within a plan."""
        return (self.policy_name, self.target_type, self.target_id)

    def as_row(self) -> dict[str, Any]:
        """The outcome as a plain dict (for tables and artifacts)."""
        return {
            "target_type": self.target_type,
            "target_id": self.target_id,
            "customer_id": self.customer_id,
            "policy_name": self.policy_name,
            "action": self.action,
            "operation": self.operation,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error_code": self.error_code,
            "detail": self.detail,
        }


@dataclass
class RunReport:
    """What one engine run did: outcomes per target, resumed targets, erasure of our archive."""

    run_id: str
    plan_hash: str
    dry_run: bool
    outcomes: list[TargetOutcome] = field(default_factory=list)
    resumed: int = 0  # targets a previous run of this plan had already finished
    # Targets of any plan or request whose interrupted call this run found had taken effect.
    recovered: list[TargetOutcome] = field(default_factory=list)
    tombstoned: int = 0
    purge: dict[str, Any] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)
    chain_ok: bool | None = None
    # The audit chain's newest hash: kept elsewhere (artifact, ticket), it proves later that no
    # run was cut off the end of the log.
    chain_last_hash: str | None = None

    def counts(self) -> dict[str, int]:
        """Targets per outcome."""
        return dict(sorted(Counter(o.outcome for o in self.outcomes).items()))

    @property
    def ok(self) -> bool:
        """No target failed and every deletion was verified."""
        return not any(o.outcome in (FAILED, VERIFY_FAILED) for o in self.outcomes)

    @property
    def needs_attention(self) -> bool:
        """Something was not erased that a person should look at (blocked, active, changed,
        partial)."""
        return any(
            o.outcome
            in (BLOCKED_OPEN, PREFLIGHT_INCOMPLETE, BECAME_ACTIVE, SKIPPED_CHANGED, HELD, NOT_FOUND)
            for o in self.outcomes
        )


def request_key(event: Mapping[str, Any]) -> str:
    """What an audit event's target belongs to: its one-off request (stable over reruns, which
    plan anew), else its plan. One final outcome per target per request key."""
    if event.get("policy_name") in (ONE_OFF_POLICY, UNLINK_POLICY):
        return f"request:{event.get('policy_hash')}"
    return f"plan:{event.get('plan_hash')}"


def rehearsal_runs(events: pa.Table) -> set[str]:
    """Runs that were rehearsals (dry runs): their outcomes never count as anything done."""
    if events.num_rows == 0:
        return set()
    started = events.filter(
        pc.and_(
            pc.equal(events.column("step"), "run_started"),
            pc.equal(events.column("outcome"), DRY_RUN),
        )
    )
    return set(started.column("run_id").to_pylist())
