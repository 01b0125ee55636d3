"""Each /api/v1 request in turn: auth, rate limit, latency, fault, then the route handler."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from gladly_sandbox.control import CONTROL_PREFIX, RESET, ControlError, handle_control
from gladly_sandbox.errors import ApiError
from gladly_sandbox.faults import FaultPlan
from gladly_sandbox.route_table import Route, match_route
from gladly_sandbox.routes import JSON, ApiRequest, encode_json
from gladly_sandbox.server import SandboxServer
from gladly_sandbox.settings import API_PREFIX, ROLE_API_USER, SandboxUser, ServerSettings
from gladly_sandbox.wire import BadRequest, WireHandler

log = logging.getLogger(__name__)

NOT_MODELLED = "not_modelled"  # the error code of a documented call the sandbox does not serve
UNMATCHED = "<unmatched>"  # the stats' route name for paths no Gladly route matches
_API_ROOT = API_PREFIX + "/"
# A load balancer, not the application, answers 502/503; its page is HTML, not Gladly JSON.
_PROXY_PAGES = {
    502: b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1></body></html>",
    503: b"<html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


def _error_body(code: str, detail: str) -> bytes:
    return encode_json({"errors": [{"code": code, "detail": detail}]})


class _Answered(Exception):
    """Raised once a gate (auth, rate limit) has already answered the request."""


class SandboxRequestHandler(WireHandler):
    """One connection: parses requests and applies auth → rate limit → latency → fault → handler."""

    server: SandboxServer
    _pending_stat: tuple[str, str] | None = None  # (route template, method) not yet counted

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch()

    do_POST = do_GET
    do_PATCH = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def on_answer(self, status: int | str) -> None:
        """Count the /api/v1 answer in the stats (status or "reset"), once."""
        # Counted before the answer leaves, so a client that reads /_sandbox/stats right after
        # its last answer sees that answer counted.
        pending = self._pending_stat
        if pending is not None:
            self._pending_stat = None
            self.server.stats.record(pending[0], pending[1], status)

    def _dispatch(self) -> None:
        self._pending_stat = None
        path, _, query = self.path.partition("?")
        try:
            body = self.read_body()
        except BadRequest as exc:
            self.close_connection = True
            self.write(exc.status, _error_body("invalid", exc.detail), JSON)
            return
        if path.startswith(_API_ROOT):
            self._api(path[len(API_PREFIX) :], query, body)
        elif path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(path, body)
        else:
            self.write(404, _error_body("not_found", "no such resource"), JSON)

    # --- /_sandbox -------------------------------------------------------------------------------

    def _control(self, path: str, body: bytes) -> None:
        host = str(self.client_address[0]).split("%", 1)[0]
        if not ipaddress.ip_address(host).is_loopback:
            self.write(403, _error_body("forbidden", "the control surface is loopback only"), JSON)
            return
        try:
            status, data = handle_control(self.server, self.command, path, body)
        except ControlError as exc:
            self.write(exc.status, encode_json(exc.body()), JSON)
            return
        if data is None:
            self.write(status)
        else:
            self.write(status, encode_json(data), JSON)

    # --- /api/v1 ---------------------------------------------------------------------------------

    def _authenticate(self, settings: ServerSettings) -> SandboxUser | int:
        """The user, or 401 (no or bad credentials) / 403 (no API User permission)."""
        header = self.headers.get("Authorization")
        if not header or header[:6].lower() != "basic ":
            return 401
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return 401
        address, sep, token = decoded.partition(":")
        if not sep:
            return 401
        wanted = address.lower()
        for user in settings.users:
            if user.email.lower() == wanted:
                if not hmac.compare_digest(user.token.encode(), token.encode()):
                    return 401
                return user if user.has(ROLE_API_USER) else 403
        return 401

    def _api(self, path: str, query: str, body: bytes) -> None:
        method = self.command
        matched = match_route(path)
        route = matched[0] if matched else None
        self._pending_stat = (route.template if route else UNMATCHED, method)
        try:
            self._api_answer(method, route, matched[1] if matched else {}, query, body)
        finally:
            self.on_answer("error")  # only if it ended before answering (e.g. the client left)

    def _gate(self, settings: ServerSettings, method: str) -> tuple[SandboxUser, dict[str, str]]:
        """Auth, then the rate limit: the user and the rate-limit headers, or _Answered."""
        limiter, limit = self.server.ratelimiter, settings.rate_limit_per_second
        algorithm, others = settings.rate_limit_algorithm, settings.other_integrations_per_second
        user = self._authenticate(settings)
        if not isinstance(user, SandboxUser):
            # Refused before the limit: the answer shows the numbers but is not counted.
            headers = (
                {} if limit is None else limiter.peek(method, limit, algorithm, others).headers()
            )
            if user == 401:
                headers["WWW-Authenticate"] = 'Basic realm="Gladly API"'
                detail = "missing or invalid API credentials"
                self.write(401, _error_body("unauthorized", detail), JSON, headers)
            else:
                detail = "the user does not have the API User permission"
                self.write(403, _error_body("forbidden", detail), JSON, headers)
            raise _Answered
        if limit is None:
            return user, {}
        decision = limiter.hit(method, limit, algorithm, others)
        headers = decision.headers(retry_after=settings.retry_after_header)
        if not decision.allowed:
            self.write(429, _error_body("rate_limited", "rate limit reached"), JSON, headers)
            raise _Answered
        return user, headers

    def _api_answer(
        self, method: str, route: Route | None, params: dict[str, str], query: str, body: bytes
    ) -> None:
        server = self.server
        settings = server.settings
        try:
            user, headers = self._gate(settings, method)
        except _Answered:
            return
        delay = server.latency_seconds()
        if delay > 0:
            server.sleep(delay)
        fault = settings.fault_for(route.template if route else UNMATCHED)
        plan = server.faults.decide(fault, download=route is not None and route.download)
        if plan.any and self._early_fault(plan, headers):
            return
        if route is None:
            self.write(404, _error_body("not_found", "no such API route"), JSON, headers)
            return
        handler = route.handlers.get(method)
        if handler is None and route.not_modelled(method):
            # Gladly has this call; the sandbox cannot rehearse it. Never Gladly's own 404/405,
            # so a rehearsal does not read "Gladly refused" where the truth is "not modelled".
            detail = f"the sandbox does not model {method} {API_PREFIX}{route.template}"
            self.write(501, _error_body(NOT_MODELLED, detail), JSON, headers)
            return
        if handler is None:
            headers["Allow"] = route.allow
            detail = f"{method} is not allowed here"
            self.write(405, _error_body("method_not_allowed", detail), JSON, headers)
            return
        request = ApiRequest(method, params, parse_qs(query, keep_blank_values=True), body, user)
        try:
            # Export jobs that came due must be rendered before this request can change the org:
            # their files are a snapshot of the org at completion time. Cheap when nothing is due.
            server.exports.refresh()
            reply = handler(server, request)
        except ApiError as exc:
            self._write_api_error(exc, settings, headers)
            return
        except Exception:
            log.exception("sandbox handler %s %s failed", method, route.template)
            self.write(500, _error_body("internal_error", "internal server error"), JSON, headers)
            return
        headers.update(reply.headers)
        if reply.file is not None:
            self._stream_file(reply.file, reply.content_type, headers, plan)
        else:
            self.write(reply.status, reply.body, reply.content_type, headers)

    def _early_fault(self, plan: FaultPlan, headers: dict[str, str]) -> bool:
        """Apply the faults that strike before the handler; True if one already answered."""
        stats = self.server.stats
        if plan.reset:
            stats.record_fault("reset")
            self.on_answer(RESET)
            self.reset_connection()
            return True
        if plan.throttled:
            stats.record_fault("throttle")
            headers = {**headers, "Ratelimit-Remaining-Second": "0"}
            self.write(429, _error_body("rate_limited", "rate limit reached"), JSON, headers)
            return True
        if plan.slow_first_byte_ms > 0:
            stats.record_fault("slow_first_byte")
            self.server.sleep(plan.slow_first_byte_ms / 1000.0)
        if plan.error_status is None:
            return False
        stats.record_fault("error")
        status = plan.error_status
        if status in _PROXY_PAGES:
            # A proxy in front of Gladly answered: none of the application's headers.
            self.write(status, _PROXY_PAGES[status], "text/html")
        else:
            self.write(
                status, _error_body("internal_error", "internal server error"), JSON, headers
            )
        return True

    def _write_api_error(
        self, exc: ApiError, settings: ServerSettings, headers: dict[str, str]
    ) -> None:
        """Render an ApiError in Gladly's documented shape, or its quirk while that switch is on."""
        headers.update(exc.headers)
        quirk = exc.quirk
        if quirk == "empty" and settings.quirk_empty_404:
            self.write(exc.status, headers=headers)
            return
        data: Any
        if quirk == "object" and settings.quirk_object_errors:
            data = {"errors": exc.entry()}
        elif quirk == "bare_list" and settings.quirk_bare_list_errors:
            data = [exc.entry()]
        else:
            data = {"errors": [exc.entry()]}
        self.write(exc.status, encode_json(data), JSON, headers)

    def _stream_file(
        self, path: Path, content_type: str | None, headers: dict[str, str], plan: FaultPlan
    ) -> None:
        """Send a file with its Content-Length via sendfile (never read whole into memory)."""
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            # Expired or deleted between the lookup and the open.
            self.write(404, _error_body("not_exist", "entity does not exist"), JSON, headers)
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            send = size
            if plan.truncate_at is not None and size > 0:
                send = int(size * plan.truncate_at)
                self.server.stats.record_fault("truncate")
            self.write(200, b"", content_type, headers, content_length=size)
            if send < size:
                # Cut short: the client must see the connection end mid-body.
                self.close_connection = True
            if send:
                self.connection.sendfile(handle, 0, send)
