"""The organisation's customer rules: find, get, create, update, delete, merges, contact again."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from gladly_sandbox import tables as t
from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.content import Renderer, render_exact
from gladly_sandbox.errors import ApiError
from gladly_sandbox.ids import FRACTION_DIGITS, make_id
from gladly_sandbox.profiles import (
    Customer,
    customer_json,
    normalize_email,
    normalize_phone,
    parse_customer_id,
    parse_profile,
    patchable,
)
from gladly_sandbox.tables import mix64, to_micros

if TYPE_CHECKING:
    from gladly_sandbox.orgdata import OrgData

FIND_LIMIT = 50  # documented: at most 50 profiles, newest updatedAt first
# ASSUMPTION (undocumented): a caller-chosen id of a deleted profile can be used again.
DELETED_IDS_REUSABLE = True
# ASSUMPTION (undocumented): a merged-away id dies with its survivor (then answers 404, not 301).
MERGED_ID_DIES_WITH_SURVIVOR = True
# ASSUMPTION (undocumented): PATCH merges customAttributes key by key ("insert or update");
# only the arrays (emails, phones) are documented to be replaced wholesale.
MERGE_CUSTOM_ATTRIBUTES_ON_UPDATE = True


class CustomerOperations:
    """Customer endpoints of an Organisation (mixed into it; relies on its state below)."""

    data: OrgData
    render: Renderer
    lock: threading.RLock
    clock: SandboxClock
    contact_again: bool
    merged_delete_status: int
    search_external_ids_map: bool
    phone_search_exact: bool
    _runtime_rng: random.Random
    _by_id: dict[str, int]
    _by_email: dict[str, list[int]]
    _by_phone: dict[str, list[int]]
    _by_external: dict[str, list[int]]
    _by_external_map: dict[str, list[int]]
    _deleted_customers: int
    _status_counts: Counter[int]

    # Provided by ItemOperations and EventOperations; declared (not defined) so the MRO finds
    # the real ones.
    _append_item: Callable[[int, int, int], int]
    _forget_item: Callable[[int], None]
    _emit_profile: Callable[[str, str], None]
    _emit_conversation: Callable[..., None]
    _assignee: Callable[[int], dict[str, str]]

    def find_customers(
        self, *, email: str | None = None, phone: str | None = None, external_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Profiles matching exactly one criterion, newest `updatedAt` first, at most 50."""
        given = {
            name: value
            for name, value in (
                ("email", email),
                ("phoneNumber", phone),
                ("externalCustomerId", external_id),
            )
            if value is not None
        }
        if len(given) != 1:
            # ASSUMPTION: the 400 body for this case is undocumented; code and wording are ours.
            raise ApiError(
                400,
                "invalid",
                "exactly one of email, phoneNumber or externalCustomerId is required",
            )
        ((name, value),) = given.items()
        if not value.strip():
            raise ApiError(400, "blank", f"{name} cannot be blank", attr=name)
        with self.lock:
            if name == "email":
                rows = list(self._by_email.get(normalize_email(value), ()))
            elif name == "phoneNumber":
                key = value if self.phone_search_exact else _lenient_phone(value)
                rows = list(self._by_phone.get(key, ()))
            else:
                rows = list(self._by_external.get(value, ()))
                if self.search_external_ids_map:
                    rows += [r for r in self._by_external_map.get(value, ()) if r not in rows]
            customers = self.data.customers
            rows.sort(key=lambda r: (-customers[r].updated, -r))
            return [self._customer_json(r) for r in rows[:FIND_LIMIT]]

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        """The profile; 301 `moved` for a merged id, 404 (object-form body) when there is none."""
        with self.lock:
            return self._customer_json(self._live_row(customer_id, merged=301))

    def create_customer(self, body: dict[str, Any]) -> str:
        """Create a profile and return its id; 409 `taken` on an id, email or MOBILE clash."""
        with self.lock:
            fields = parse_profile(body)
            if body.get("id") is not None:
                customer_id = parse_customer_id(body["id"])
                if self._id_taken(customer_id):
                    raise ApiError(409, "taken", "customer ID exists", attr="id")
            else:
                customer_id = self._new_customer_id()
            self._check_unique(fields, None)
            now = to_micros(self.clock.now())
            customer = Customer(customer_id, "", "", [], [], {}, now, now)
            for attr, value in fields.items():
                setattr(customer, attr, value)
            self._add_customer(customer)
            self._emit_profile("CUSTOMER_PROFILE/CREATED", customer_id)
            return customer_id

    def update_customer(self, customer_id: str, body: dict[str, Any]) -> None:
        """Partial update: given fields replace (emails/phones wholesale); 404 for a merged id."""
        with self.lock:
            row = self._live_row(customer_id, merged=404)
            customer = self.data.customers[row]
            fields = patchable(parse_profile(body), customer)
            self._check_unique(fields, row)
            self._unindex(row)
            for attr, value in fields.items():
                if attr == "attrs" and MERGE_CUSTOM_ATTRIBUTES_ON_UPDATE:
                    customer.attrs.update(value)
                else:
                    setattr(customer, attr, value)
            customer.updated = max(customer.updated + 1, to_micros(self.clock.now()))
            self._index(row)
            self._emit_profile("CUSTOMER_PROFILE/UPDATED", customer.id)

    def delete_customer(self, customer_id: str) -> None:
        """Delete the profile with all its conversations and items; 400 while any is not CLOSED."""
        with self.lock:
            row = self._live_row(customer_id, merged=self.merged_delete_status)
            convs = self.data.convs
            customer = self.data.customers[row]
            if any(convs.status[c] != t.S_CLOSED for c in customer.conversations):
                raise ApiError(
                    400,
                    "invalid_state",
                    "Unable to delete the profile. Please close any open or waiting conversations.",
                    attr="conversation",
                    quirk="object",
                )
            self._unindex(row)
            customer.deleted = True
            self._deleted_customers += 1
            for conv in customer.conversations:
                self._status_counts[convs.status[conv]] -= 1
                for item in convs.item_rows(conv):
                    self._forget_item(item)
            for item in customer.activities:
                self._forget_item(item)
            self._emit_profile("CUSTOMER_PROFILE/DELETED", customer.id)
            if self.contact_again:
                self._contact_again(row)

    # --- internals ---

    def _customer_json(self, row: int) -> dict[str, Any]:
        customer = self.data.customers[row]
        h = mix64(self.data.conv_key ^ ~row)
        created = render_exact(customer.created, FRACTION_DIGITS[h % len(FRACTION_DIGITS)])
        updated = render_exact(customer.updated, FRACTION_DIGITS[(h >> 8) % len(FRACTION_DIGITS)])
        return customer_json(customer, created, updated)

    def _live_row(
        self, customer_id: str, *, merged: int, quirk: Literal["object"] | None = "object"
    ) -> int:
        row = self._by_id.get(customer_id)
        if row is not None and not self.data.customers[row].deleted:
            return row
        survivor = self.data.merged.get(customer_id)
        if row is None and survivor is not None and self._merged_alive(survivor):
            new_id = self.data.customers[survivor].id
            if merged == 301:
                raise ApiError(
                    301,
                    "moved",
                    "customer id has changed",
                    attr="customerId",
                    meta={"old": customer_id, "new": new_id},
                )
            if merged == 204:
                return survivor
            if merged != 404:
                raise ApiError(merged, "invalid", "customer id was merged into another profile")
        raise ApiError(
            404, "not_exist", f"customer profile [{customer_id}] does not exist", quirk=quirk
        )

    def _merged_alive(self, survivor: int) -> bool:
        return not (MERGED_ID_DIES_WITH_SURVIVOR and self.data.customers[survivor].deleted)

    def _id_taken(self, customer_id: str) -> bool:
        row = self._by_id.get(customer_id)
        if row is not None and not (DELETED_IDS_REUSABLE and self.data.customers[row].deleted):
            return True
        return customer_id in self.data.merged

    def _new_customer_id(self) -> str:
        while True:
            candidate = make_id(self._runtime_rng)
            if not self._id_taken(candidate) and candidate not in self._by_id:
                return candidate

    def _check_unique(self, fields: dict[str, Any], own: int | None) -> None:
        # Emails and MOBILE numbers are unique (documented). ASSUMPTION: a mobile clashes only
        # with another profile's MOBILE number (landlines may be shared), and the 409 names
        # `emails` / `phones` as attr (Gladly documents only the id case).
        for email in fields.get("emails", ()):
            if any(r != own for r in self._by_email.get(email.normalized, ())):
                raise ApiError(409, "taken", "email address is already in use", attr="emails")
        customers = self.data.customers
        for phone in fields.get("phones", ()):
            if phone.type != "MOBILE":
                continue
            for r in self._by_phone.get(phone.normalized, ()):
                if r != own and any(
                    p.type == "MOBILE" and p.normalized == phone.normalized
                    for p in customers[r].phones
                ):
                    raise ApiError(
                        409, "taken", "mobile phone number is already in use", attr="phones"
                    )

    def _add_customer(self, customer: Customer) -> int:
        if not customer.contact_email and customer.emails:
            customer.contact_email = customer.emails[0].normalized
        if not customer.contact_phone and customer.phones:
            mobiles = [p.normalized for p in customer.phones if p.type == "MOBILE"]
            customer.contact_phone = (mobiles or [customer.phones[0].normalized])[0]
        self.data.customers.append(customer)
        row = len(self.data.customers) - 1
        self._by_id[customer.id] = row  # a reused id now names the new profile
        self._index(row)
        return row

    def _index(self, row: int) -> None:
        customer = self.data.customers[row]
        for email in customer.emails:
            _add(self._by_email, email.normalized, row)
        for phone in customer.phones:
            _add(self._by_phone, phone.normalized, row)
        if customer.external_id:
            _add(self._by_external, customer.external_id, row)
        for value in (customer.external_ids or {}).values():
            _add(self._by_external_map, value, row)

    def _unindex(self, row: int) -> None:
        customer = self.data.customers[row]
        for email in customer.emails:
            _remove(self._by_email, email.normalized, row)
        for phone in customer.phones:
            _remove(self._by_phone, phone.normalized, row)
        if customer.external_id:
            _remove(self._by_external, customer.external_id, row)
        for value in (customer.external_ids or {}).values():
            _remove(self._by_external_map, value, row)

    def _contact_again(self, row: int) -> None:
        """The deleted person writes in again: a lookup adaptor refills a brand-new profile."""
        old = self.data.customers[row]
        now = to_micros(self.clock.now())
        fresh = Customer(
            id=self._new_customer_id(),
            name=old.name,
            address=old.address,
            emails=list(old.emails),
            phones=list(old.phones),
            attrs=dict(old.attrs),
            created=now,
            updated=now,
            image=old.image,
            external_id=old.external_id,
            external_ids=dict(old.external_ids) if old.external_ids is not None else None,
            contact_email=old.contact_email,
            contact_phone=old.contact_phone,
        )
        new_row = self._add_customer(fresh)
        old.recontacted_as = fresh.id
        self._emit_profile("CUSTOMER_PROFILE/CREATED", fresh.id)
        self._write_in(new_row)

    def _write_in(self, row: int) -> None:
        """The customer writes in: a new OPEN conversation with one customer item, now."""
        customer = self.data.customers[row]
        now = to_micros(self.clock.now())
        channel = (
            t.CH_EMAIL
            if customer.contact_email
            else (t.CH_SMS if customer.contact_phone else t.CH_CHAT)
        )
        convs = self.data.convs
        conv = convs.append(row, 0, -1, t.S_OPEN, channel, now)
        convs.first_item[conv] = len(self.data.items)
        self._status_counts[t.S_OPEN] += 1
        customer.conversations.append(conv)
        item = self._append_item(conv, t.CHANNEL_KIND[channel], t.R_CUSTOMER)
        convs.created[conv] = self.data.items.ts[item]
        customer_initiator = {"id": customer.id, "type": "CUSTOMER"}
        # A new conversation has no earlier state: its context is the assignee it starts with.
        self._emit_conversation(
            "CONVERSATION/CREATED", conv, self._assignee(conv), customer_initiator
        )


def _lenient_phone(value: str) -> str:
    return normalize_phone(value) or value


def _add(index: dict[str, list[int]], key: str, row: int) -> None:
    rows = index.setdefault(key, [])
    if row not in rows:
        rows.append(row)


def _remove(index: dict[str, list[int]], key: str, row: int) -> None:
    rows = index.get(key)
    if rows and row in rows:
        rows.remove(row)
        if not rows:
            del index[key]
