"""Unlink one detail from a customer's profile: PATCH the remaining lists, verify, audit, watch.

The request (erasure.unlink_request) is resolved live and checked read-only first; a detail
that is not on the profile, or a customer that does not resolve, changes nothing. Executed,
the PATCH is announced in the audit log before it is sent, the profile is read back, and the
detail's keyed hash goes into the archive's refill watch before the outcome is recorded. A
rerun of a finished request does nothing; a rerun after a crash between the PATCH and its
record re-reads the profile and records what the PATCH did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audit_log import AuditLog, AuditRun, verify_chain
from audit_log import outcomes as o
from erasure.unlink_request import (
    UnlinkInputError,
    UnlinkRequest,
    detail_on,
    in_adaptor_map,
    kept_emails,
    kept_phones,
    other_details,
    unlink_request_hash,
)
from gladly_archive import Archive
from gladly_archive.keyed import keyed_detail_hash
from gladly_archive.refill_watch import WatchedDetail, write_watch
from gladly_client import GladlyClient
from gladly_client.errors import CustomerMovedError, GladlyAPIError, GladlyError, NotFoundError
from gladly_client.models import Customer

__all__ = ["POLICY_NAME", "UNLINKED", "UnlinkReport", "run_unlink"]

POLICY_NAME = o.UNLINK_POLICY  # the events' policy_name: the request's hash is their policy_hash
UNLINKED = o.UNLINKED
_RESOLVED = "resolved"  # a rerun names the customer an earlier run resolved


@dataclass
class UnlinkReport:
    """What one unlink did. Ids, kinds and counts only: never the detail."""

    request_id: str
    customer_id: str
    kind: str
    dry_run: bool
    outcome: str  # unlinked | dry_run | failed | verify_failed
    watch_id: str
    kept: dict[str, int]  # entries left on the profile by kind (emails, phones)
    note: str = ""
    resumed: bool = False  # an earlier run had finished it: nothing was called
    recovered: bool = False  # an earlier run's PATCH, cut off before its record, took effect
    http_status: int | None = None
    chain_ok: bool | None = None

    @property
    def done(self) -> bool:
        """The detail is off the profile, verified (now or by an earlier run)."""
        return self.outcome == UNLINKED


@dataclass(frozen=True)
class _History:
    """What earlier runs (not rehearsals) of the same request did."""

    done: bool
    sent: bool  # a PATCH was announced whose result is unknown or was not a refusal
    customer_id: str | None
    attempts: int


def _history(events: pa.Table, request_id: str) -> _History:
    if events.num_rows == 0:
        return _History(False, False, None, 0)
    dry = o.rehearsal_runs(events)
    mine = events.filter(
        pc.and_(
            pc.equal(events.column("policy_name"), POLICY_NAME),
            pc.equal(events.column("policy_hash"), request_id),
        )
    )
    rows = [r for r in mine.to_pylist() if r["run_id"] not in dry]
    done = any(r["step"] == "outcome" and r["outcome"] == UNLINKED for r in rows)
    results = {r["run_id"]: r for r in rows if r["step"] == "unlink" and r["phase"] == "result"}
    sent = False
    for r in rows:
        if r["step"] == "unlink" and r["phase"] == "intent":
            result = results.get(r["run_id"])
            refused = result is not None and result["outcome"] != "ok" and result["http_status"]
            sent = sent or not refused
    customers = [r["customer_id"] for r in rows if r["step"] == _RESOLVED and r["customer_id"]]
    runs = {r["run_id"] for r in rows if r["step"] == _RESOLVED}
    return _History(done, sent, customers[-1] if customers else None, len(runs))


def _resolve(client: GladlyClient, request: UnlinkRequest) -> Customer:
    """The one live profile the request names; UnlinkInputError when it names none or many."""
    ref = request.customer
    if ref.kind == "customer_id":
        try:
            return client.customers.get(ref.value)
        except NotFoundError:
            raise UnlinkInputError(
                f"--customer {ref.value}: no Gladly profile has this id; nothing changed"
            ) from None
        except CustomerMovedError as exc:
            raise UnlinkInputError(
                f"--customer {ref.value}: merged into {exc.new_id}; give that id; nothing changed"
            ) from None
    email = ref.value if ref.kind == "email" else None
    phone = ref.value if ref.kind == "phone" else None
    found = client.customers.find(email=email, phone=phone)
    if not found:
        raise UnlinkInputError(
            f"--customer: no Gladly profile has this {ref.kind}; check it, or give the "
            "customer's id; nothing changed"
        )
    if len(found) > 1:
        ids = ", ".join(c.id for c in found[:5])
        raise UnlinkInputError(
            f"--customer: {len(found)} profiles have this {ref.kind} ({ids}); give one "
            "customer id; nothing changed"
        )
    return found[0]


def _patch(client: GladlyClient, request: UnlinkRequest, customer: Customer) -> None:
    """Send the whole remaining list of the detail's kind (Gladly replaces lists whole),
    every other entry with all its fields as read."""
    if request.kind == "email":
        client.customers.update(customer.id, emails=kept_emails(request, customer))
    elif request.kind == "phone":
        client.customers.update(customer.id, phones=kept_phones(request, customer))
    else:
        client.customers.update(customer.id, clear_external_customer_id=True)


@dataclass
class _Step:
    """What the steps of one executed unlink share."""

    run: AuditRun
    fields: dict[str, Any]  # the target's fields on every event about it
    report: UnlinkReport
    request: UnlinkRequest
    detail_hash: str
    archive: Archive
    clock: Callable[[], datetime]

    def event(self, **more: Any) -> None:
        self.run.append(**self.fields, **more)


def run_unlink(
    request: UnlinkRequest,
    *,
    root: str,
    client: GladlyClient,
    key: bytes,
    actor: str,
    dry_run: bool = True,
    flow: str = "cli:unlink",
    now: Callable[[], datetime] | None = None,
) -> UnlinkReport:
    """Unlink the detail (or only rehearse it). UnlinkInputError, before anything is written,
    when the customer does not resolve to one profile or the detail is not on it."""
    clock = now or (lambda: datetime.now(UTC))
    request_id = unlink_request_hash(request, key)
    detail_hash = keyed_detail_hash(request.detail, kind=request.kind, key=key)
    log = AuditLog(root, key=key)
    history = _history(log.events(), request_id)
    report = UnlinkReport(request_id, "", request.kind, dry_run, o.DRY_RUN, request_id[:24], {})
    if history.done:
        report.customer_id = history.customer_id or ""
        report.outcome, report.resumed = UNLINKED, True
        return report
    before = _profile(client, request, history)
    report.customer_id = before.id
    present = detail_on(request, before)
    _refuse(request, before, present, recovering=history.sent and not dry_run)
    report.kept = {
        "emails": len(kept_emails(request, before)),
        "phones": len(kept_phones(request, before)),
    }
    head: dict[str, Any] = {"policy_name": POLICY_NAME, "policy_hash": request_id}
    head["subject_hash"] = detail_hash  # the audit key finds the unlink of a given detail
    fields = {**head, "target_type": "customer", "target_id": before.id, "customer_id": before.id}
    fields.update(action=f"unlink_{request.kind}", attempt=history.attempts + 1)
    with log.start_run(actor=actor, approver=None, flow=flow) as run:
        mode = o.DRY_RUN if dry_run else "execute"
        run.append(**head, target_type="run", step="run_started", phase="intent", outcome=mode)
        step = _Step(run, fields, report, request, detail_hash, Archive.open(root), clock)
        step.event(step=_RESOLVED, phase="result", outcome="ok")
        if dry_run:
            report.note = f"would PATCH the profile's {_what(request)}, keeping the rest as read"
        elif not present:
            # An earlier run's PATCH was cut off before its record; the profile just read is
            # what it left.
            report.recovered = True
            report.outcome = _finish(step, None, before)
        else:
            report.outcome = _execute(step, client, before)
        step.event(
            step="outcome",
            phase="result",
            outcome=report.outcome,
            http_status=report.http_status,
            detail=report.note or None,
        )
        finished = "ok" if report.outcome in (UNLINKED, o.DRY_RUN) else "attention"
        run.append(**head, target_type="run", step="run_finished", phase="result", outcome=finished)
    report.chain_ok = verify_chain(root, key=key).ok
    return report


def _profile(client: GladlyClient, request: UnlinkRequest, history: _History) -> Customer:
    """The profile an earlier attempt resolved (its identifier may be the very detail), or
    the one the request names."""
    if history.customer_id is None:
        return _resolve(client, request)
    try:
        return client.customers.get(history.customer_id)
    except (NotFoundError, CustomerMovedError):
        raise UnlinkInputError(
            f"customer {history.customer_id}, resolved by an earlier attempt of this request, "
            "no longer has a profile under that id; nothing changed"
        ) from None


def _refuse(request: UnlinkRequest, before: Customer, present: bool, *, recovering: bool) -> None:
    """UnlinkInputError when there is nothing this request can do to the profile."""
    kind = request.kind.replace("_", " ")
    if not present and not recovering:
        only = " (only as a lookup adaptor's externalCustomerIds)"
        raise UnlinkInputError(
            f"{request.option}: that {kind} is not on customer {before.id}'s profile"
            f"{only if in_adaptor_map(request, before) else ''}; check it; nothing changed"
        )
    if present and request.kind == "external_id" and before.external_customer_ids:
        raise UnlinkInputError(
            f"--external-id: customer {before.id} is linked by a lookup adaptor installed after "
            "2021-05-12, whose external id Gladly's API cannot change; unlink it in the adaptor "
            "or Gladly's UI; nothing changed"
        )


def _what(request: UnlinkRequest) -> str:
    return {"email": "emails", "phone": "phones"}.get(request.kind, "externalCustomerId")


def _execute(step: _Step, client: GladlyClient, before: Customer) -> str:
    """PATCH (announced first), read back, watch; the outcome."""
    report = step.report
    step.event(step="unlink", phase="intent", detail=f"PATCH {_what(step.request)}")
    try:
        _patch(client, step.request, before)
    except GladlyAPIError as exc:
        step.event(
            step="unlink",
            phase="result",
            outcome="error",
            http_status=exc.status,
            error_code=exc.code,
        )
        report.http_status, report.note = exc.status, f"Gladly refused the PATCH ({exc.status})"
        return o.FAILED
    except GladlyError as exc:  # after the client's retries: whether it landed is unknown
        step.event(step="unlink", phase="result", outcome="error", error_code=type(exc).__name__)
        report.note = "the PATCH's answer was lost; a rerun re-reads the profile and finishes"
        return o.FAILED
    step.event(step="unlink", phase="result", outcome="ok", http_status=204)
    report.http_status = 204
    step.event(step="verify", phase="intent", detail="GET")
    try:
        after = client.customers.get(before.id)
    except GladlyError as exc:
        status = exc.status if isinstance(exc, GladlyAPIError) else None
        step.event(
            step="verify",
            phase="result",
            outcome="error",
            http_status=status,
            error_code=type(exc).__name__,
        )
        report.note = "the read-back failed; a rerun re-reads the profile and finishes"
        return o.VERIFY_FAILED
    step.event(step="verify", phase="result", outcome="ok", http_status=200)
    return _finish(step, before, after)


def _finish(step: _Step, before: Customer | None, after: Customer) -> str:
    """The profile as read back: the detail still there is VERIFY_FAILED; gone, it is
    watched (before the outcome is recorded, so a crash here is finished by a rerun) and
    UNLINKED, with a note when any other detail differs from what was read before."""
    report, request = step.report, step.request
    if detail_on(request, after):
        report.note = "the profile still has the detail after the PATCH"
        return o.VERIFY_FAILED
    if report.recovered:
        report.note = "recovered: an earlier run's PATCH took effect (the profile re-read)"
    elif before is not None and other_details(request, before) != other_details(request, after):
        report.note = "done, but other details differ from those read before the PATCH: check"
    stamp = step.clock()
    watch = WatchedDetail(
        watch_id=report.watch_id,
        kind=request.kind,
        detail_hash=step.detail_hash,
        customer_id=after.id,
        unlinked_at=after.updated_at or stamp,
        recorded_at=stamp,
        request_id=report.request_id,
    )
    new = write_watch(step.archive, watch)
    step.event(step="watch", phase="result", outcome="ok" if new else "already")
    return UNLINKED
