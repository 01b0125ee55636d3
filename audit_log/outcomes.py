"""What the deletion engine says happened to each target: one terminal outcome, in plain words."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALREADY_DELETED",
    "BECAME_ACTIVE",
    "BLOCKED_OPEN",
    "DELETED",
    "DRY_RUN",
    "FAILED",
    "FINAL_OUTCOMES",
    "HELD",
    "ITEM_DELETED",
    "NOT_ERASABLE",
    "PREFLIGHT_INCOMPLETE",
    "REDACTED",
    "VERIFY_FAILED",
    "RunReport",
    "TargetOutcome",
]

DELETED = "deleted"  # the profile (and every conversation in it) is gone; verified
REDACTED = "redacted"  # the item's content is gone; verified
ITEM_DELETED = "item_deleted"  # a CUSTOMER_ACTIVITY item is gone
ALREADY_DELETED = "already_deleted"  # 404 before or on the call: nothing left to erase
NOT_ERASABLE = "not_erasable_via_api"  # Gladly's API offers no way to erase it (reported, kept)
HELD = "held"  # a legal hold protects it (checked again just before the call)
BECAME_ACTIVE = "became_active"  # the customer has activity newer than the plan knew of
BLOCKED_OPEN = "blocked_open_conversation"  # open conversation and the policy may not close it
PREFLIGHT_INCOMPLETE = "preflight_incomplete"  # Gladly cut the conversation list: not provable
VERIFY_FAILED = "verify_failed"  # the call succeeded but reading back still finds the data
FAILED = "failed"  # Gladly refused or kept failing after the client's retries
DRY_RUN = "dry_run"  # nothing was called; `detail` says what would be

# Outcomes a rerun of the same plan leaves alone; FAILED, VERIFY_FAILED and DRY_RUN are tried
# again (a rerun converges on the rest).
FINAL_OUTCOMES = frozenset(
    {DELETED, REDACTED, ITEM_DELETED, ALREADY_DELETED, NOT_ERASABLE, HELD, BECAME_ACTIVE}
    | {BLOCKED_OPEN, PREFLIGHT_INCOMPLETE}
)


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
        """Something was not erased that a person should look at (blocked, active, partial)."""
        return any(
            o.outcome in (BLOCKED_OPEN, PREFLIGHT_INCOMPLETE, BECAME_ACTIVE, HELD)
            for o in self.outcomes
        )
