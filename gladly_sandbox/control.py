"""The sandbox's own control surface under /_sandbox/: stats, state, settings, clock, inboxes,
merges."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from gladly_sandbox.errors import ApiError
from gladly_sandbox.faults import FaultInjector
from gladly_sandbox.ids import format_timestamp, parse_timestamp
from gladly_sandbox.refill import REFILL_PREFIX, REFILL_SUFFIX, handle_refill, is_refill_path
from gladly_sandbox.settings import (
    ServerSettings,
    SettingsConflict,
    normalise_settings,
    setting_names,
)

if TYPE_CHECKING:
    from gladly_sandbox.clock import SandboxClock
    from gladly_sandbox.exports import ExportService
    from gladly_sandbox.ratelimit import RateLimiter
    from gladly_sandbox.store import Organisation

CONTROL_PREFIX = "/_sandbox"
# PATCH /_sandbox/inboxes/<inbox_id> renames an inbox, as an admin does in Gladly's UI.
INBOX_PREFIX = f"{CONTROL_PREFIX}/inboxes/"
# POST /_sandbox/merges merges one customer into another, as an agent does in Gladly's UI.
MERGES_PATH = f"{CONTROL_PREFIX}/merges"
# Switches that live on the Organisation rather than in ServerSettings (all but contact_again are
# choices for behaviour Gladly does not document; docs/sandbox.md lists them).
ORG_SWITCHES: tuple[str, ...] = (
    "contact_again",
    "merged_delete_status",
    "force_required_statuses",
    "topics_required_to_close",
    "search_external_ids_map",
    "conversation_list_keeps",
    "item_list_keeps",
    "phone_search_exact",
    "profile_events_in_stream",
)
_BOOL_SWITCHES = frozenset(
    {
        "contact_again",
        "topics_required_to_close",
        "search_external_ids_map",
        "phone_search_exact",
        "profile_events_in_stream",
    }
)
_MERGED_DELETE_STATUSES = (204, 301, 404)
_KEEPS = ("oldest", "newest")
_CLOSE_STATUSES = frozenset({"OPEN", "WAITING"})
RESET = "reset"  # the "status" recorded for a request answered with a connection reset


class ControlContext(Protocol):
    """What the control surface needs from the server."""

    org: Organisation
    exports: ExportService
    clock: SandboxClock
    settings: ServerSettings
    faults: FaultInjector
    stats: RequestStats
    ratelimiter: RateLimiter


class RequestStats:
    """Counts of /api/v1 requests by route template, method and status, plus injected faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._faults: Counter[str] = Counter()

    def record(self, route: str, method: str, status: int | str) -> None:
        """Count one answered request (status is an HTTP status or "reset")."""
        with self._lock:
            self._counts[(route, method, str(status))] += 1

    def record_fault(self, kind: str) -> None:
        """Count one injected fault: error, reset, truncate or slow_first_byte."""
        with self._lock:
            self._faults[kind] += 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()
            self._faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready counts: total, by_status, by_method, by_route ("METHOD template"), faults."""
        with self._lock:
            counts = list(self._counts.items())
            faults = dict(self._faults)
        by_status: Counter[str] = Counter()
        by_method: dict[str, Counter[str]] = {}
        by_route: dict[str, Counter[str]] = {}
        for (route, method, status), n in sorted(counts):
            by_status[status] += n
            by_method.setdefault(method, Counter())[status] += n
            by_route.setdefault(f"{method} {route}", Counter())[status] += n
        return {
            "total": sum(by_status.values()),
            "rate_limited": by_status.get("429", 0),
            "by_status": dict(sorted(by_status.items())),
            "by_method": {m: dict(sorted(c.items())) for m, c in by_method.items()},
            "by_route": {r: dict(sorted(c.items())) for r, c in by_route.items()},
            "faults": dict(sorted(faults.items())),
        }


class ControlError(Exception):
    """A bad control request: 400 (or 404/405) with the field it concerns."""

    def __init__(self, status: int, detail: str, attr: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.attr = attr

    def body(self) -> dict[str, Any]:
        """The error body, in Gladly's documented list form."""
        entry: dict[str, Any] = {"code": "invalid", "detail": self.detail}
        if self.attr is not None:
            entry = {"attr": self.attr, **entry}
        return {"errors": [entry]}


def check_org_switch(name: str, value: Any) -> Any:
    """Validate an Organisation switch value (JSON or Python form); ValueError names the field."""
    if name in _BOOL_SWITCHES:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false (got {value!r})")
        return value
    if name == "merged_delete_status":
        if isinstance(value, bool) or value not in _MERGED_DELETE_STATUSES:
            raise ValueError(f"merged_delete_status must be one of 204, 301, 404 (got {value!r})")
        return value
    if name in ("conversation_list_keeps", "item_list_keeps"):
        if value not in _KEEPS:
            raise ValueError(f"{name} must be 'oldest' or 'newest' (got {value!r})")
        return value
    if name == "force_required_statuses":
        if isinstance(value, str) or not isinstance(value, list | set | frozenset | tuple):
            raise ValueError(f"force_required_statuses must be a list of statuses (got {value!r})")
        statuses = {str(v) for v in value}
        if not statuses <= _CLOSE_STATUSES:
            raise ValueError(
                f"force_required_statuses may hold OPEN and WAITING only (got {sorted(statuses)})"
            )
        return statuses
    raise TypeError(f"unknown switch {name!r}; valid: {', '.join(ORG_SWITCHES)}")


def apply_changes(ctx: ControlContext, changes: dict[str, Any]) -> None:
    """Apply ServerSettings fields and Organisation switches together, validating all first.

    Raises TypeError for an unknown name and ValueError (naming the field) for a bad value.
    """
    valid = (*setting_names(), *ORG_SWITCHES)
    unknown = sorted(set(changes) - set(valid))
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    server_changes = {k: v for k, v in changes.items() if k not in ORG_SWITCHES}
    org_changes = {k: check_org_switch(k, v) for k, v in changes.items() if k in ORG_SWITCHES}
    ctx.settings.update(**server_changes)
    with ctx.org.lock:
        for name, value in org_changes.items():
            setattr(ctx.org, name, value)
    if "fault_seed" in server_changes:
        ctx.faults.reseed(ctx.settings.fault_seed)


def stats_json(ctx: ControlContext) -> dict[str, Any]:
    """The request counts plus the other integrations' served and refused requests."""
    settings = ctx.settings
    others = ctx.ratelimiter.other_integrations(
        settings.rate_limit_per_second,
        settings.rate_limit_algorithm,
        settings.other_integrations_per_second,
    )
    return {**ctx.stats.snapshot(), "other_integrations": others}


def reset_stats(ctx: ControlContext) -> None:
    """Zero the request counts and the other integrations' counts."""
    ctx.stats.reset()
    ctx.ratelimiter.reset_other_integrations()


def settings_json(ctx: ControlContext) -> dict[str, Any]:
    """ServerSettings as JSON plus the Organisation switches."""
    data = ctx.settings.to_json()
    for name in ORG_SWITCHES:
        value = getattr(ctx.org, name)
        data[name] = sorted(value) if isinstance(value, set) else value
    return data


def _now(ctx: ControlContext) -> str:
    return format_timestamp(ctx.clock.now(), 3)


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ControlError(400, "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ControlError(400, "request body must be a JSON object")
    return data


def _patch_settings(ctx: ControlContext, body: bytes) -> dict[str, Any]:
    changes = _json_body(body)
    valid = (*setting_names(), *ORG_SWITCHES)
    for name, value in changes.items():
        # One field at a time first, so the error names the field that is wrong.
        if name not in valid:
            raise ControlError(400, f"unknown setting {name!r}; valid: {', '.join(valid)}", name)
        try:
            if name in ORG_SWITCHES:
                check_org_switch(name, value)
            else:
                normalise_settings({name: value})
        except (TypeError, ValueError) as exc:
            raise ControlError(400, str(exc), name) from None
    try:
        apply_changes(ctx, changes)
    except SettingsConflict as exc:  # each value is fine, not together; nothing was applied
        attr = next((n for n in exc.names if n in changes), exc.names[0])
        raise ControlError(400, str(exc), attr) from None
    return settings_json(ctx)


def _move_clock(ctx: ControlContext, body: bytes) -> dict[str, Any]:
    data = _json_body(body)
    if set(data) == {"advance_seconds"}:
        seconds = data["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ControlError(400, "advance_seconds must be a number >= 0", "advance_seconds")
        ctx.clock.advance(timedelta(seconds=seconds))
    elif set(data) == {"set"}:
        try:
            when = parse_timestamp(str(data["set"]))
            ctx.clock.set(when)
        except ValueError as exc:
            raise ControlError(400, f"set: {exc}", "set") from None
    else:
        raise ControlError(400, 'send exactly one of {"advance_seconds": n} or {"set": "<iso>"}')
    # Jobs that came due in the jump complete now, before anything else can change the org.
    ctx.exports.refresh()
    return {"now": _now(ctx)}


def _rename_inbox(ctx: ControlContext, inbox_id: str, body: bytes) -> dict[str, Any]:
    data = _json_body(body)
    extra = sorted(set(data) - {"name"})
    if extra:
        raise ControlError(400, f'unknown field {extra[0]!r}; send {{"name": "…"}}', extra[0])
    if "name" not in data:
        raise ControlError(400, 'send {"name": "…"}: the inbox\'s new name', "name")
    try:
        return ctx.org.rename_inbox(inbox_id, data["name"])
    except ValueError as exc:
        raise ControlError(400, str(exc), "name") from None
    except KeyError:
        raise ControlError(404, f"no inbox has the id {inbox_id!r}") from None


def _merge(ctx: ControlContext, body: bytes) -> dict[str, Any]:
    data = _json_body(body)
    extra = sorted(set(data) - {"source", "destination"})
    if extra:
        raise ControlError(
            400, f'unknown field {extra[0]!r}; send {{"source": id, "destination": id}}', extra[0]
        )
    for name in ("source", "destination"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise ControlError(400, f"{name} must be a customer id", name)
    # Export jobs that came due render before the merge changes what they would contain.
    ctx.exports.refresh()
    try:
        return ctx.org.merge_customers(data["source"], data["destination"])
    except ValueError as exc:
        text = str(exc)
        attr = "destination" if text.startswith("destination") else "source"
        raise ControlError(400, text, attr) from None


def handle_control(ctx: ControlContext, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Answer one /_sandbox/ request: (status, JSON data or None for an empty 204)."""
    key = (method, path.rstrip("/"))
    if key == ("GET", "/_sandbox/health"):
        return 200, {"status": "ok", "now": _now(ctx)}
    if key == ("GET", "/_sandbox/stats"):
        return 200, stats_json(ctx)
    if key == ("POST", "/_sandbox/stats/reset"):
        reset_stats(ctx)
        return 204, None
    if key == ("GET", "/_sandbox/state"):
        return 200, {"org": ctx.org.counts(), "exports": ctx.exports.counts(), "now": _now(ctx)}
    if key == ("GET", "/_sandbox/settings"):
        return 200, settings_json(ctx)
    if key == ("PATCH", "/_sandbox/settings"):
        return 200, _patch_settings(ctx, body)
    if key == ("POST", "/_sandbox/clock"):
        return 200, _move_clock(ctx, body)
    if key == ("POST", MERGES_PATH):
        return 200, _merge(ctx, body)
    if is_refill_path(key[1]):
        try:
            return handle_refill(ctx, method, key[1], body)
        except ApiError as exc:
            raise ControlError(exc.status, exc.detail, exc.attr) from None
    if key[1].startswith(INBOX_PREFIX) and "/" not in key[1][len(INBOX_PREFIX) :]:
        if method != "PATCH":
            raise ControlError(405, f"{method} is not allowed on {INBOX_PREFIX}<inbox_id>")
        return 200, _rename_inbox(ctx, unquote(key[1][len(INBOX_PREFIX) :]), body)
    known = {
        "/_sandbox/health",
        "/_sandbox/stats",
        "/_sandbox/stats/reset",
        "/_sandbox/state",
        "/_sandbox/settings",
        "/_sandbox/clock",
        MERGES_PATH,
    }
    if key[1] in known:
        raise ControlError(405, f"{method} is not allowed on {key[1]}")
    listed = ", ".join(
        sorted({*known, f"{INBOX_PREFIX}<inbox_id>", f"{REFILL_PREFIX}<id>{REFILL_SUFFIX}"})
    )
    raise ControlError(404, f"no control endpoint {key[1]}; known: {listed}")
