"""One Gladly organisation's data and the rules Gladly applies to it (customers, conversations)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Literal

from gladly_sandbox import tables as t
from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.content import Renderer
from gladly_sandbox.errors import ApiError
from gladly_sandbox.events import EventLog, EventOperations
from gladly_sandbox.generate import data_now, generate
from gladly_sandbox.items import ItemOperations
from gladly_sandbox.merges import MergeOperations
from gladly_sandbox.orgdata import Inbox, OrgData, OrgSpec
from gladly_sandbox.refill import RefillOperations
from gladly_sandbox.reports import ReportOperations
from gladly_sandbox.topics import TopicOperations

__all__ = ["OrgSpec", "Organisation"]

CONVERSATION_LIST_LIMIT = 100  # documented

Keep = Literal["oldest", "newest"]


class Organisation(
    RefillOperations,
    MergeOperations,
    ItemOperations,
    TopicOperations,
    ReportOperations,
    EventOperations,
):
    """One Gladly organisation's data and the rules Gladly applies to it.

    Thread-safe: every operation holds `lock` (an RLock); `export_items` takes it per batch.
    State changes are recorded as events (`GET /events`) for 24 hours.
    """

    def __init__(self, spec: OrgSpec, clock: SandboxClock) -> None:
        self.spec = spec
        self.clock = clock
        self.lock = threading.RLock()
        self.data: OrgData = generate(spec, data_now(spec, clock.now()))
        self.render = Renderer(self.data)
        # --- switches (documented behaviour first, undocumented ones marked ASSUMPTION) ---
        # Deleting makes the person "contact again": a new profile with the same emails/phones,
        # refilled by a lookup adaptor, and a new OPEN conversation (api.md §7).
        self.contact_again = False
        # ASSUMPTION: what DELETE on a merged-away id answers: 404 (not found), 301 (moved, as
        # GET does) or 204 (follows the merge and deletes the surviving profile).
        self.merged_delete_status = 404
        # ASSUMPTION: "customer waiting for response" (close needs force) means status WAITING.
        self.force_required_statuses: set[str] = {"WAITING"}
        # Documented 400 "topics are required before closing"; an org setting, off by default.
        self.topics_required_to_close = False
        # The spec says only legacy `externalCustomerId` is searchable; True also searches the
        # values of `externalCustomerIds`.
        self.search_external_ids_map = False
        # ASSUMPTION: which end of a truncated list Gladly returns (both lists stay ascending).
        self.conversation_list_keeps: Keep = "oldest"
        self.item_list_keeps: Keep = "oldest"
        # ASSUMPTION: phoneNumber must match the stored E.164 exactly (no lenient parsing).
        self.phone_search_exact = True
        # Gladly documents CUSTOMER_PROFILE/CREATED|UPDATED|DELETED as webhook events only.
        # ASSUMPTION: the events stream carries them too (False leaves them out).
        self.profile_events_in_stream = True
        self.events = EventLog(spec.seed)
        self._runtime_rng = random.Random(f"{spec.seed}:runtime")
        self._by_id: dict[str, int] = {}
        self._by_email: dict[str, list[int]] = {}
        self._by_phone: dict[str, list[int]] = {}
        self._by_external: dict[str, list[int]] = {}
        self._by_external_map: dict[str, list[int]] = {}
        for row, customer in enumerate(self.data.customers):
            self._by_id[customer.id] = row
            self._index(row)
        self._deleted_customers = 0
        self._merged_away = 0  # profiles merged away at run time (POST /_sandbox/merges)
        self._status_counts = Counter(self.data.convs.status)
        kinds = Counter(self.data.items.kind)
        self._type_counts: Counter[str] = Counter()
        for kind, count in kinds.items():
            self._type_counts[t.CONTENT_TYPE[kind]] += count
        self._redacted = 0

    # --- conversations ---

    def list_conversations(self, customer_id: str) -> tuple[list[dict[str, Any]], bool]:
        """At most 100 conversations ascending by createdAt, and whether more exist."""
        with self.lock:
            # ASSUMPTION (api.md §3): 404 for an unknown customer (list-form body), 301 merged.
            row = self._live_row(customer_id, merged=301, quirk=None)
            convs = self.data.convs
            rows = sorted(
                self.data.customers[row].conversations, key=lambda c: (convs.created[c], c)
            )
            truncated = len(rows) > CONVERSATION_LIST_LIMIT
            if truncated:
                keep = CONVERSATION_LIST_LIMIT
                rows = rows[:keep] if self.conversation_list_keeps == "oldest" else rows[-keep:]
            return [self.render.conversation(c) for c in rows], truncated

    def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        """The conversation; 404 (no body documented) when unknown or its customer is gone."""
        with self.lock:
            return self.render.conversation(self._conversation_row(conversation_id, quirk="empty"))

    def update_conversation(self, conversation_id: str, body: dict[str, Any]) -> None:
        """Close (or reopen) and/or reassign; each change is an item and/or an event."""
        with self.lock:
            conv = self._conversation_row(conversation_id, quirk=None)
            status, force, inbox, agent = _parse_conversation_update(body, self.data)
            convs = self.data.convs
            current = convs.status[conv]
            new_agent = agent if agent is not None else -1
            reassign = inbox is not None and (convs.inbox[conv], convs.agent[conv]) != (
                inbox,
                new_agent,
            )
            # Naming the assignee it already has is not a reassignment: closing a CLOSED
            # conversation with its own assignee is accepted (nothing changes), as Gladly does.
            if reassign and current == t.S_CLOSED and status != "OPEN":
                raise ApiError(400, "invalid_state", "closed conversation cannot be reassigned")
            close = status == "CLOSED" and current != t.S_CLOSED
            reopen = status == "OPEN" and current == t.S_CLOSED
            if close:
                self._check_closable(conv, force)
            if reopen:
                customer = self.data.customers[convs.cust[conv]]
                if any(convs.status[c] != t.S_CLOSED for c in customer.conversations):
                    # ASSUMPTION: Gladly's one-open-conversation rule refuses a second one.
                    raise ApiError(
                        400, "invalid_state", "customer already has an open conversation"
                    )
            api = self._api_initiator()
            if reopen:
                self._append_item(conv, t.K_STATUS_OPEN, t.R_API)
                self._set_status(conv, t.S_OPEN)
                convs.closed[conv] = 0
                self._emit_conversation("CONVERSATION/REOPENED", conv, self._assignee(conv), api)
            if reassign and inbox is not None:
                before = self._assignee(conv)
                convs.inbox[conv] = inbox
                convs.agent[conv] = new_agent
                self._emit_conversation(
                    "CONVERSATION_ASSIGNEE/UPDATED",
                    conv,
                    before,
                    api,
                    reason="MANUAL",  # ASSUMPTION: a reassignment through the API
                    assignee=self._assignee(conv),
                )
            if close:
                # ASSUMPTION: a close made through the API is initiated by type API.
                item = self._append_item(conv, t.K_STATUS_CLOSED, t.R_API)
                self._set_status(conv, t.S_CLOSED)
                convs.closed[conv] = self.data.items.ts[item]
                self._emit_conversation("CONVERSATION/CLOSED", conv, self._assignee(conv), api)

    # --- directory ---

    def list_agents(self) -> list[dict[str, Any]]:
        """`GET /agents`: id, name, emailAddress."""
        with self.lock:
            return [{"id": a.id, "name": a.name, "emailAddress": a.email} for a in self.data.agents]

    def list_topics(self) -> list[dict[str, Any]]:
        """`GET /topics`: id, name, disabled and parentId where the topic has a parent."""
        with self.lock:
            topics = self.data.topics
            result = []
            for topic in topics:
                entry: dict[str, Any] = {
                    "id": topic.id,
                    "name": topic.name,
                    "disabled": topic.disabled,
                }
                if topic.parent is not None and topic.parent < len(topics):
                    entry["parentId"] = topics[topic.parent].id
                result.append(entry)
            return result

    def list_inboxes(self) -> list[dict[str, Any]]:
        """`GET /inboxes`: id, name, disabled (no generated inbox is disabled)."""
        with self.lock:
            return [_inbox_json(inbox) for inbox in self.data.inboxes]

    def rename_inbox(self, inbox_id: str, name: str) -> dict[str, Any]:
        """Rename an inbox as an admin does in Gladly's UI (the API has no call for it).

        Returns the inbox as GET /inboxes lists it. Raises KeyError for an unknown id and
        ValueError unless `name` is a non-blank string. Only the name changes: the inbox keeps
        its id, address, number and conversations.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-blank string")
        with self.lock:
            for row, inbox in enumerate(self.data.inboxes):
                if inbox.id == inbox_id:
                    self.data.inboxes[row] = inbox._replace(name=name)
                    return _inbox_json(self.data.inboxes[row])
        raise KeyError(inbox_id)

    def export_agents(self) -> list[dict[str, Any]]:
        """`agents.jsonl` lines (same objects as GET /agents)."""
        return self.list_agents()

    def export_topics(self) -> list[dict[str, Any]]:
        """`topics.jsonl` lines (same objects as GET /topics)."""
        return self.list_topics()

    # --- truth for tests and the control surface ---

    def counts(self) -> dict[str, int]:
        """How much of everything is live right now."""
        with self.lock:
            customers = self.data.customers
            result = {
                "customers": len(customers) - self._deleted_customers - self._merged_away,
                "merged_ids": sum(
                    1 for row in self.data.merged.values() if self._merged_alive(row)
                ),
                "deleted_customers": self._deleted_customers,
                "conversations_open": self._status_counts[t.S_OPEN],
                "conversations_waiting": self._status_counts[t.S_WAITING],
                "conversations_closed": self._status_counts[t.S_CLOSED],
                "items": sum(self._type_counts.values()),
                "items_redacted": self._redacted,
            }
            for name in sorted(self._type_counts):
                result[f"items_by_type:{name}"] = self._type_counts[name]
            result["events"] = self.events.count(self.clock.now())
            return result

    def customer_ids(self) -> list[str]:
        """Every customer id the organisation has had: live, deleted, then merged-away ids."""
        with self.lock:
            ids = [c.id for c in self.data.customers] + list(self.data.merged)
            return list(dict.fromkeys(ids))  # a reused id appears once

    def conversation_ids(self, customer_id: str | None = None) -> list[str]:
        """Ids of live conversations, of one customer or of all."""
        with self.lock:
            customers = self.data.customers
            if customer_id is not None:
                row = self._by_id.get(customer_id)
                rows = [] if row is None or customers[row].deleted else customers[row].conversations
            else:
                absorbed = self.data.convs.absorbed_into
                rows = [
                    c
                    for c in range(len(self.data.convs))
                    if not customers[self.data.convs.cust[c]].deleted and c not in absorbed
                ]
            return [self.data.conv_codec.encode(c) for c in rows]

    def raw_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The internal record: API fields plus `deleted`, `merged_into`, `recontacted_as`."""
        with self.lock:
            row = self._by_id.get(customer_id)
            if row is None:
                survivor = self.data.merged.get(customer_id)
                if survivor is None:
                    return None
                target = self.data.customers[survivor]
                return {"id": customer_id, "merged_into": target.id, "deleted": target.deleted}
            customer = self.data.customers[row]
            record = self._customer_json(row)
            record["deleted"] = customer.deleted
            record["merged_into"] = None
            record["mergedIds"] = [old for old, r in self.data.merged.items() if r == row]
            record["recontacted_as"] = customer.recontacted_as
            record["conversationIds"] = [
                self.data.conv_codec.encode(c) for c in customer.conversations
            ]
            return record

    # --- internals ---

    def _check_closable(self, conv: int, force: bool) -> None:
        convs = self.data.convs
        self._check_topics_for_close(conv)
        if not force and t.STATUS_NAME[convs.status[conv]] in self.force_required_statuses:
            raise ApiError(
                400,
                "invalid_state",
                "cannot close conversation, customer waiting for response, "
                "set 'status.force' to true to override",
            )

    def _set_status(self, conv: int, status: int) -> None:
        convs = self.data.convs
        self._status_counts[convs.status[conv]] -= 1
        convs.status[conv] = status
        self._status_counts[status] += 1


def _inbox_json(inbox: Inbox) -> dict[str, Any]:
    return {"id": inbox.id, "name": inbox.name, "disabled": False}


def _parse_conversation_update(
    body: Any, data: OrgData
) -> tuple[str | None, bool, int | None, int | None]:
    """(status value, force, inbox row, agent row) from a PATCH body; 400 for anything else."""
    if not isinstance(body, dict) or not ({"status", "assignee"} & body.keys()):
        raise ApiError(400, "invalid", "body must contain status and/or assignee")
    status: str | None = None
    force = False
    if "status" in body:
        spec = body["status"]
        if not isinstance(spec, dict) or not spec.get("value"):
            raise ApiError(
                400, "blank", "'value' cannot be blank when updating status", attr="status.value"
            )
        if spec["value"] not in ("OPEN", "CLOSED"):
            raise ApiError(400, "invalid", "status can only be OPEN or CLOSED", attr="status.value")
        if not isinstance(spec.get("force", False), bool):
            raise ApiError(400, "invalid", "force must be a boolean", attr="status.force")
        status, force = spec["value"], bool(spec.get("force", False))
    inbox = agent = None
    if "assignee" in body:
        assignee = body["assignee"]
        if not isinstance(assignee, dict) or not assignee.get("inboxId"):
            raise ApiError(
                400,
                "blank",
                "'inboxId' cannot be blank when updating assignee",
                attr="assignee.inboxId",
            )
        inbox = next((n for n, i in enumerate(data.inboxes) if i.id == assignee["inboxId"]), None)
        if inbox is None:
            raise ApiError(400, "invalid", "inbox does not exist", attr="assignee.inboxId")
        if assignee.get("agentId") is not None:
            agent = next(
                (n for n, a in enumerate(data.agents) if a.id == assignee["agentId"]), None
            )
            if agent is None:
                raise ApiError(400, "invalid", "agent does not exist", attr="assignee.agentId")
    return status, force, inbox, agent
