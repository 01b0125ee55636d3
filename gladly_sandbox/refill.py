"""A lookup adaptor refilling a detail an admin removed: the org rule and its control route."""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import unquote

from gladly_sandbox.customers import CustomerOperations
from gladly_sandbox.errors import ApiError
from gladly_sandbox.profiles import parse_profile

# POST /_sandbox/customers/<customer_id>/refill {"email"|"phone"|"externalCustomerId": …,
# "contact": bool}: the detail comes back, as an adaptor's auto-link fills it in.
REFILL_PREFIX = "/_sandbox/customers/"
REFILL_SUFFIX = "/refill"
REFILL_KINDS = ("email", "phone", "externalCustomerId")


class _Refreshable(Protocol):
    def refresh(self) -> object: ...


class RefillContext(Protocol):
    """What the route needs of the server (a part of control.ControlContext)."""

    @property
    def org(self) -> RefillOperations: ...

    @property
    def exports(self) -> _Refreshable: ...


class RefillOperations(CustomerOperations):
    """Customer rules plus what a lookup adaptor does to a profile behind the API's back."""

    def refill_customer(self, customer_id: str, kind: str, value: str, contact: bool) -> None:
        """Add the detail back (`kind`: email, phone — as MOBILE —, or externalCustomerId)
        unless the profile has it; with `contact`, the person writes in as well (a new
        conversation now), which is when an adaptor's auto-link runs and what exports carry.
        ApiError as PATCH would answer (404, 400, 409 when another profile has it)."""
        with self.lock:
            row = self._live_row(customer_id, merged=404)
            customer = self.data.customers[row]
            fields: dict[str, Any]
            if kind == "email":
                (email,) = parse_profile({"emails": [{"original": value}]})["emails"]
                have = {e.normalized for e in customer.emails}
                extra = [] if email.normalized in have else [email]
                fields = {"emails": [*customer.emails, *extra]}
            elif kind == "phone":
                (phone,) = parse_profile({"phones": [{"original": value, "type": "MOBILE"}]})[
                    "phones"
                ]
                have = {p.normalized for p in customer.phones}
                more = [] if phone.normalized in have else [phone]
                fields = {"phones": [*customer.phones, *more]}
            else:
                fields = {
                    "external_id": parse_profile({"externalCustomerId": value})["external_id"]
                }
            self._check_unique(fields, row)
            self._unindex(row)
            for attr, new in fields.items():
                setattr(customer, attr, new)
            customer.updated = customer.updated + 1
            self._index(row)
            self._emit_profile("CUSTOMER_PROFILE/UPDATED", customer.id)
            if contact:
                self._write_in(row)


def is_refill_path(path: str) -> bool:
    """Whether a control path is /_sandbox/customers/<id>/refill."""
    inner = path[len(REFILL_PREFIX) : -len(REFILL_SUFFIX)]
    return (
        path.startswith(REFILL_PREFIX)
        and path.endswith(REFILL_SUFFIX)
        and bool(inner)
        and "/" not in inner
    )


def handle_refill(ctx: RefillContext, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Answer POST /_sandbox/customers/<id>/refill: 200 with the profile as GET shows it.
    A bad request raises ApiError (status, detail, attr) for the control surface to answer."""
    if method != "POST":
        raise ApiError(405, "invalid", f"{method} is not allowed on {REFILL_PREFIX}<id>/refill")
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid", "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "request body must be a JSON object")
    unknown = sorted(set(data) - {*REFILL_KINDS, "contact"})
    if unknown:
        raise ApiError(400, "invalid", f"unknown field {unknown[0]!r}", attr=unknown[0])
    given = [k for k in REFILL_KINDS if k in data]
    if len(given) != 1 or not isinstance(data[given[0]], str) or not data[given[0]].strip():
        raise ApiError(400, "invalid", f"send exactly one of {', '.join(REFILL_KINDS)} as a string")
    contact = data.get("contact", False)
    if not isinstance(contact, bool):
        raise ApiError(400, "invalid", "contact must be true or false", attr="contact")
    customer_id = unquote(path[len(REFILL_PREFIX) : -len(REFILL_SUFFIX)])
    # Export jobs that came due render before the profile changes.
    ctx.exports.refresh()
    try:
        ctx.org.refill_customer(customer_id, given[0], data[given[0]], contact)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, exc.detail, attr=given[0]) from None
    return 200, ctx.org.get_customer(customer_id)
