"""Retention policies as code, legal holds and pure plan evaluation (issue 5)."""

from __future__ import annotations

from gladly_archive.keyed import keyed_hash

# --- policies, loader and holds (helper P1) ---
from retention_policies.actions import (
    ACTION_TYPES,
    Action,
    DeleteCustomer,
    EraseContact,
    EraseConversation,
    RedactItems,
)
from retention_policies.filters import (
    FILTER_TYPES,
    AgeFilter,
    AndFilter,
    ChannelFilter,
    ConversationStatusFilter,
    CustomAttributeFilter,
    Filter,
    InboxFilter,
    NotFilter,
    OrFilter,
    TopicFilter,
    ValueFilter,
)
from retention_policies.holds import HOLD_KINDS, HeldConversation, Hold, HoldRegistry
from retention_policies.loader import PolicyProblem, PolicyValidationError, load_policies
from retention_policies.model import Limits, Policy, iter_filters
from retention_policies.vocab import (
    CONTENT_TYPES,
    DELETABLE_TYPES,
    REDACTABLE_TYPES,
    parse_duration,
)

# --- facts, evaluate and plan (helper P2): add imports and names here ---

__all__ = [
    "ACTION_TYPES",
    "CONTENT_TYPES",
    "DELETABLE_TYPES",
    "FILTER_TYPES",
    "HOLD_KINDS",
    "REDACTABLE_TYPES",
    "Action",
    "AgeFilter",
    "AndFilter",
    "ChannelFilter",
    "ConversationStatusFilter",
    "CustomAttributeFilter",
    "DeleteCustomer",
    "EraseContact",
    "EraseConversation",
    "Filter",
    "HeldConversation",
    "Hold",
    "HoldRegistry",
    "InboxFilter",
    "Limits",
    "NotFilter",
    "OrFilter",
    "Policy",
    "PolicyProblem",
    "PolicyValidationError",
    "RedactItems",
    "TopicFilter",
    "ValueFilter",
    "iter_filters",
    "keyed_hash",
    "load_policies",
    "parse_duration",
    # --- P2's names here ---
]
