"""Alerts the Prefect way: our flows emit events, automations turn them into notifications.

Events (ids and counts only, never a person's data), each about one resource:

- `gladly.export.job.near-expiry` (export flow): a completed job not archived in its last days;
- `gladly.customer.reappeared` (export flow): an erased customer's email or phone is back;
- `gladly.customer.detail-refilled` (export flow): a detail `unlink` removed is back on a
  profile (a lookup adaptor refilling it, or a new contact);
- `gladly.sweep.found` (export flow): card numbers, SSNs or IBANs in the items just archived;
  the resource is the sweep plan's hash, the payload counts per kind and the plan's directory;
- `gladly.erasure.failed` (retention and one-off deletion runs): targets that failed;
- `gladly.approval.waiting` / `gladly.approval.decided`: a run paused for approval, its end.

`install_automations(block)` creates (or replaces, by name) one automation per alert, each
sending through the Prefect notification block `block` ("<block-type>/<name>", e.g.
`custom-webhook/gladly-alerts` or `slack-webhook/compliance`): the five events above at once,
and a proactive one when an approval has waited longer than `approval_hours` with no decision.
`gladly-pipeline alerts install --block …` calls it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from prefect.events import emit_event

from flows.secrets import api_reachable

__all__ = [
    "APPROVAL_DECIDED",
    "APPROVAL_WAITING",
    "DETAIL_REFILLED",
    "ERASURE_FAILED",
    "JOB_NEAR_EXPIRY",
    "REAPPEARED",
    "SWEEP_FOUND",
    "emit_alert",
    "install_automations",
]

logger = logging.getLogger(__name__)

JOB_NEAR_EXPIRY = "gladly.export.job.near-expiry"
REAPPEARED = "gladly.customer.reappeared"
DETAIL_REFILLED = "gladly.customer.detail-refilled"
SWEEP_FOUND = "gladly.sweep.found"
ERASURE_FAILED = "gladly.erasure.failed"
APPROVAL_WAITING = "gladly.approval.waiting"
APPROVAL_DECIDED = "gladly.approval.decided"

# Prefect watches for an absent event 10 s at the least; a reminder after 30 days is no reminder.
MIN_APPROVAL_HOURS = 10 / 3600
MAX_APPROVAL_HOURS = 30 * 24.0

_SUBJECTS = {
    JOB_NEAR_EXPIRY: "Gladly export job about to expire unarchived",
    REAPPEARED: "An erased Gladly customer has reappeared",
    DETAIL_REFILLED: "A detail unlinked from a Gladly profile is back",
    SWEEP_FOUND: "Card numbers, SSNs or IBANs found in newly archived Gladly items",
    ERASURE_FAILED: "Gladly erasure run with failed targets",
}


def emit_alert(event: str, resource_id: str, payload: Mapping[str, Any] | None = None) -> None:
    """Emit one of our events about `resource_id` (an id or hash: never personal data).

    An event that cannot be sent (no Prefect API) is logged, never raised: alerts add to a
    run's own report, they do not decide it."""
    if not api_reachable(os.environ):
        return  # no Prefect API (a CLI run): emitting would start a temporary server
    try:
        emit_event(
            event=event,
            resource={"prefect.resource.id": f"{event}.{resource_id}", "gladly.id": resource_id},
            payload=dict(payload or {}),
        )
    except Exception as exc:  # an alert must never fail the run it reports on
        logger.warning("could not emit %s (%s)", event, type(exc).__name__)


def install_automations(block: str, *, approval_hours: float = 72.0) -> list[str]:
    """Create or replace our automations, notifying through the notification block `block`
    ("<block-type>/<name>"); returns their names. ValueError names a block that is not there
    or not a notification block."""
    from prefect.automations import Automation, EventTrigger, Posture, SendNotification
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    if not MIN_APPROVAL_HOURS <= approval_hours <= MAX_APPROVAL_HOURS:
        raise ValueError(
            f"--approval-hours {approval_hours:g}: give between {MIN_APPROVAL_HOURS:.3f} "
            f"(10 seconds, Prefect's shortest wait for an absent event) and {MAX_APPROVAL_HOURS:g}"
        )
    if "/" not in block:
        raise ValueError(
            f"--block {block!r}: give it as <block-type>/<name>, e.g. custom-webhook/gladly-alerts"
        )
    try:
        loaded = Block.load(block)
    except ValueError as exc:
        raise ValueError(f"no Prefect block {block!r} ({exc}); create it first") from None
    if not isinstance(loaded, NotificationBlock):
        raise ValueError(f"{block!r} is not a notification block (slack-webhook, custom-webhook…)")
    block_id = loaded._block_document_id
    if block_id is None:
        raise ValueError(f"{block!r} has no saved document; save the block first")
    body = (
        "{{ event.event }} about {{ event.resource.get('gladly.id') }} at "
        "{{ event.occurred }}: {{ event.payload }}"
    )
    automations = [
        Automation(
            name=f"gladly: {event}",
            description=subject,
            trigger=EventTrigger(
                expect={event},
                match={"prefect.resource.id": f"{event}.*"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)],
        )
        for event, subject in _SUBJECTS.items()
    ]
    automations.append(
        Automation(
            name=f"gladly: {APPROVAL_WAITING} > {approval_hours:g} h",
            description=f"A retention plan has waited more than {approval_hours:g} h for approval",
            trigger=EventTrigger(
                after={APPROVAL_WAITING},
                expect={APPROVAL_DECIDED},
                for_each={"gladly.id"},
                match={"prefect.resource.id": "gladly.approval.*"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(hours=approval_hours),
            ),
            actions=[
                SendNotification(
                    block_document_id=block_id,
                    subject=f"A retention plan has waited more than {approval_hours:g} h",
                    body="Plan {{ event.resource.get('gladly.id') }} still awaits approval.",
                )
            ],
        )
    )
    names = []
    for automation in automations:
        while True:  # replace, by name: a second install leaves one of each
            try:
                found: Any = Automation.read(name=automation.name)
                found.delete()
            except ValueError:
                break
        automation.create()
        names.append(automation.name)
    return names
