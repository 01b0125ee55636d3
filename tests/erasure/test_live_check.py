"""The plan's policy definitions as the engine trusts them, and the re-check's audit detail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit_log import outcomes as o
from audit_log.fields import check_value
from erasure.context import Context, Recorder, Target
from erasure.live_check import _safe_detail
from erasure.plan_policies import policy_checks
from erasure.subjects import Subjects
from retention_policies import HoldRegistry, load_policies
from retention_policies.recheck import (
    CHANGED,
    LIVE_CONVERSATIONS,
    LIVE_PROFILE,
    UNKNOWN,
    FilterResult,
    Recheck,
)
from tests._policies import NOW

SHIPPED = Path(__file__).resolve().parents[2] / "retention_policies" / "policies"


def _entries() -> list[dict[str, Any]]:
    """What evaluate records per policy: name, version hash, canonical definition."""
    return [
        {"name": p.name, "version_hash": p.version_hash, "definition": p.canonical()}
        for f in sorted(SHIPPED.glob("*.yaml"))
        for p in load_policies(f)
    ]


def test_every_shipped_policy_is_rebuilt_from_its_definition() -> None:
    entries = _entries()
    checks = policy_checks(entries)
    assert set(checks) == {e["name"] for e in entries}
    for entry in entries:
        check = checks[entry["name"]]
        assert check.problem is None, check.problem
        assert check.policy is not None
        assert check.policy.version_hash == entry["version_hash"]
    # What each reads live: the lapsed-customer policy reads attributes (and open
    # conversations), the conversation policy inboxes and statuses, recordings nothing.
    assert checks["delete-lapsed-non-loyalty-customers"].sources == {
        LIVE_PROFILE,
        LIVE_CONVERSATIONS,
    }
    assert checks["erase-old-closed-conversations"].sources == {LIVE_CONVERSATIONS}
    assert checks["redact-old-call-recordings"].sources == frozenset()


def test_a_definition_that_does_not_match_its_hash_is_refused() -> None:
    entry = _entries()[0]
    widened = {**entry["definition"], "description": "Someone edited the plan."}
    (check,) = policy_checks([{**entry, "definition": widened}]).values()
    assert check.policy is None
    assert "does not match its version hash" in (check.problem or "")
    (check,) = policy_checks([{k: v for k, v in entry.items() if k != "definition"}]).values()
    assert "no definition" in (check.problem or "")
    (check,) = policy_checks([{**entry, "definition": {"name": entry["name"]}}]).values()
    assert "does not validate" in (check.problem or "")


def test_one_off_requests_have_no_policy_to_recheck() -> None:
    assert policy_checks([{"name": o.ONE_OFF_POLICY, "version_hash": "a" * 64}]) == {}


def _target(policy: str, policy_hash: str) -> Target:
    return Target("customer", "c1", "c1", None, policy, policy_hash, "delete_customer", "x")


def test_a_target_whose_hash_differs_from_the_definition_has_a_problem() -> None:
    entries = _entries()
    ctx = Context(
        client=None,  # type: ignore[arg-type]
        recorder=Recorder(None),  # type: ignore[arg-type]
        holds=lambda: HoldRegistry.empty(key=b"k"),
        subjects=Subjects(),
        now=NOW,
        dry_run=True,
        policies=policy_checks(entries),
    )
    name, good = entries[0]["name"], entries[0]["version_hash"]
    assert ctx.policy_check(_target(name, good)).problem is None  # type: ignore[union-attr]
    assert "differs" in (ctx.policy_check(_target(name, "b" * 64)).problem or "")  # type: ignore[union-attr]
    assert "does not define" in (ctx.policy_check(_target("other", good)).problem or "")  # type: ignore[union-attr]
    assert ctx.policy_check(_target(o.ONE_OFF_POLICY, "c" * 64)) is None


@pytest.mark.parametrize("inbox", ["VIP Support", "Hotline 0800 555 0100"])
def test_the_detail_always_passes_the_audit_logs_guard(inbox: str) -> None:
    result = Recheck(
        (
            FilterResult(0, CHANGED, f"inbox not_in [{inbox}]"),
            FilterResult(2, UNKNOWN, "custom_attribute tier eq …"),
        )
    )
    detail = _safe_detail(result)
    assert check_value("detail", detail) == detail
    if inbox == "VIP Support":
        assert detail == result.detail
    else:  # a policy's own text that reads like a phone number: only the filters' kinds
        assert detail == (
            "filters[0] inbox no longer holds live; "
            "filters[2] custom_attribute could not be confirmed live"
        )
