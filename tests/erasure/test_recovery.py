"""The recovery sweep reads interrupted calls back from the audit log and records what they did."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from audit_log import AuditLog
from erasure.recovery import interrupted_targets, sweep_interrupted
from erasure.steps import Context, Recorder, Target
from erasure.subjects import Subjects
from gladly_client.errors import NotFoundError
from retention_policies.holds import HoldRegistry
from tests._policies import NOW

KEY = b"recovery-test-key"
# A run id that starts with 12 digits: were a prefix of it written into an event's text, the
# personal-data guard would read it as a phone number and refuse it — in every later run.
DIGITS_RUN = "123456789012abcdef0123456789abcd"  # its first 12 characters are digits


def _target(customer_id: str) -> Target:
    return Target(
        target_type="customer",
        target_id=customer_id,
        customer_id=customer_id,
        conversation_id=None,
        policy_name="one-off",
        policy_hash="a" * 64,
        action="delete_customer",
        operation="delete_customer",
    )


class _Customers:
    def __init__(self, gone: set[str]) -> None:
        self.gone = gone

    def get(self, customer_id: str) -> Any:
        if customer_id in self.gone:
            raise NotFoundError(status=404, method="GET", path_template="/customer-profiles/{id}")
        return SimpleNamespace(id=customer_id)


def test_an_interrupted_delete_is_recorded_once_whatever_its_run_id(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, key=KEY)
    with log.start_run(DIGITS_RUN, plan_hash="b" * 64) as killed:
        for cid in ("gone0000001", "still000001"):
            Recorder(killed).event(_target(cid), step="act", phase="intent", detail="DELETE")
    found = interrupted_targets(log.events())
    assert sorted(i.target.target_id for i in found) == ["gone0000001", "still000001"]
    client = SimpleNamespace(customers=_Customers({"gone0000001"}))
    with log.start_run(plan_hash="c" * 64) as run:
        ctx = Context(
            client, Recorder(run), lambda: HoldRegistry.empty(key=KEY), Subjects(), NOW, False
        )  # type: ignore[arg-type]
        outcomes = sweep_interrupted(ctx, found)
    assert [(o.target_id, o.outcome) for o in outcomes] == [("gone0000001", "deleted")]
    events = log.events().to_pylist()
    recorded = [e for e in events if e["step"] == "outcome"]
    assert [(e["target_id"], e["plan_hash"]) for e in recorded] == [("gone0000001", "b" * 64)]
    # What was recorded is no longer interrupted; the profile that still answers still is.
    assert [i.target.target_id for i in interrupted_targets(log.events())] == ["still000001"]
