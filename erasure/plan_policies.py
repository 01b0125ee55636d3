"""The plan's policies as the engine trusts them: rebuilt from the definitions the plan stores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from audit_log import outcomes as o
from retention_policies.model import Policy
from retention_policies.recheck import live_sources
from retention_policies.sweep_plan import SWEEP_POLICY

__all__ = ["PolicyCheck", "policy_checks"]


@dataclass(frozen=True)
class PolicyCheck:
    """A plan's policy, rebuilt from the definition the plan stores, and what its filters read
    live; or, when it cannot be trusted, why (every target of it then fails, no call made)."""

    name: str
    policy: Policy | None
    problem: str | None = None
    sources: frozenset[str] = frozenset()


def policy_checks(entries: Iterable[Mapping[str, Any]]) -> dict[str, PolicyCheck]:
    """Every policy of a plan but one-off requests and sweeps (which re-check only holds), by
    name."""
    checks = {}
    for entry in entries:
        name = str(entry.get("name"))
        if name not in (o.ONE_OFF_POLICY, SWEEP_POLICY):
            checks[name] = _rebuild(name, entry)
    return checks


def _rebuild(name: str, entry: Mapping[str, Any]) -> PolicyCheck:
    definition = entry.get("definition")
    recorded = str(entry.get("version_hash") or "")
    if not isinstance(definition, Mapping):
        return PolicyCheck(
            name, None, f"the plan stores no definition of policy {name} to re-check; plan again"
        )
    try:
        policy = Policy.model_validate(definition)
    except ValidationError:
        return PolicyCheck(
            name, None, f"the plan's definition of policy {name} does not validate; plan again"
        )
    if policy.name != name or policy.version_hash != recorded:
        return PolicyCheck(
            name,
            None,
            f"the plan's definition of policy {name} does not match its version hash "
            f"({policy.version_hash[:12]}… against {recorded[:12]}…); refusing to act",
        )
    return PolicyCheck(name, policy, None, _sources(policy))


def _sources(policy: Policy) -> frozenset[str]:
    return live_sources(policy.filters, str(policy.resource))
