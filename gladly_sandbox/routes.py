"""One small handler per /api/v1 call the sandbox models (route_table.py maps paths to them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gladly_sandbox.errors import ApiError
from gladly_sandbox.events import JSONLINES
from gladly_sandbox.ratelimit import HEADER_RETRY_AFTER
from gladly_sandbox.reports import CSV, parse_report_request
from gladly_sandbox.settings import ROLE_COMPLIANCE_ADMIN, SandboxUser, ServerSettings

if TYPE_CHECKING:
    from gladly_sandbox.exports import ExportService
    from gladly_sandbox.ratelimit import RateLimiter
    from gladly_sandbox.store import Organisation

JSON = "application/json"
NDJSON = "application/x-ndjson"
MPEG = "audio/mpeg"
HEADER_LIMITED_DATA = "Gladly-Limited-Data"


class ApiContext(Protocol):
    """What handlers need from the server."""

    org: Organisation
    exports: ExportService
    settings: ServerSettings
    ratelimiter: RateLimiter
    sleep: Callable[[float], None]


@dataclass
class Reply:
    """A successful answer: JSON bytes, raw bytes, nothing, or a file to stream."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None


@dataclass(frozen=True)
class ApiRequest:
    """One parsed request as handlers see it."""

    method: str
    params: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: bytes
    user: SandboxUser

    def arg(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None


Handler = Callable[[ApiContext, ApiRequest], Reply]


def encode_json(data: Any) -> bytes:
    """Compact UTF-8 JSON, as Gladly sends it."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, encode_json(data), JSON, headers or {})


def _limited(ctx: ApiContext, truncated: bool) -> dict[str, str]:
    return {HEADER_LIMITED_DATA: ctx.settings.limited_data_header_value} if truncated else {}


def _json_object(req: ApiRequest) -> dict[str, Any]:
    try:
        data = json.loads(req.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid", "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "request body must be a JSON object")
    return data


# --- customers -----------------------------------------------------------------------------------


def find_customers(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /customer-profiles?email=|phoneNumber=|externalCustomerId=."""
    found = ctx.org.find_customers(
        email=req.arg("email"),
        phone=req.arg("phoneNumber"),
        external_id=req.arg("externalCustomerId"),
    )
    return json_reply(found)


def create_customer(ctx: ApiContext, req: ApiRequest) -> Reply:
    """POST /customer-profiles → 201, Location, empty body."""
    customer_id = ctx.org.create_customer(_json_object(req))
    return Reply(201, headers={"Location": f"/api/v1/customer-profiles/{customer_id}"})


def get_customer(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /customer-profiles/{customerId}."""
    return json_reply(ctx.org.get_customer(req.params["customerId"]))


def update_customer(ctx: ApiContext, req: ApiRequest) -> Reply:
    """PATCH /customer-profiles/{customerId} → 204."""
    ctx.org.update_customer(req.params["customerId"], _json_object(req))
    return Reply(204)


def delete_customer(ctx: ApiContext, req: ApiRequest) -> Reply:
    """DELETE /customer-profiles/{customerId} → 204; needs the Compliance Administrator role."""
    if not req.user.has(ROLE_COMPLIANCE_ADMIN):
        raise ApiError(
            403,
            "forbidden",
            "deleting a customer profile requires the Compliance Administrator role",
        )
    ctx.org.delete_customer(req.params["customerId"])
    return Reply(204)


# --- conversations -------------------------------------------------------------------------------


def list_conversations(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /customers/{customerId}/conversations (≤100, Gladly-Limited-Data when truncated)."""
    conversations, truncated = ctx.org.list_conversations(req.params["customerId"])
    return json_reply(conversations, headers=_limited(ctx, truncated))


def get_conversation(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /conversations/{conversationId}."""
    return json_reply(ctx.org.get_conversation(req.params["conversationId"]))


def update_conversation(ctx: ApiContext, req: ApiRequest) -> Reply:
    """PATCH /conversations/{conversationId} → 204 (close, with or without force)."""
    ctx.org.update_conversation(req.params["conversationId"], _json_object(req))
    return Reply(204)


def add_topics(ctx: ApiContext, req: ApiRequest) -> Reply:
    """POST /conversations/{conversationId}/topics → 204 (topics already there are ignored)."""
    ctx.org.add_topics(req.params["conversationId"], _json_object(req))
    return Reply(204)


def list_items(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /conversations/{conversationId}/items[?sessionId=] (≤1000, Gladly-Limited-Data)."""
    items, truncated = ctx.org.list_items(
        req.params["conversationId"], session_id=req.arg("sessionId")
    )
    return json_reply(items, headers=_limited(ctx, truncated))


# --- conversation items --------------------------------------------------------------------------


def get_item(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /conversation-items/{itemId}."""
    return json_reply(ctx.org.get_item(req.params["itemId"]))


def delete_item(ctx: ApiContext, req: ApiRequest) -> Reply:
    """DELETE /conversation-items/{itemId} (CUSTOMER_ACTIVITY only) → 204."""
    ctx.org.delete_item(req.params["itemId"])
    return Reply(204)


def delete_customer_item(ctx: ApiContext, req: ApiRequest) -> Reply:
    """DELETE /customers/{customerId}/conversation-items/{itemId} → 204."""
    ctx.org.delete_item(req.params["itemId"], customer_id=req.params["customerId"])
    return Reply(204)


def redact_item(ctx: ApiContext, req: ApiRequest) -> Reply:
    """POST /conversation-items/{itemId}/redact → 201, Location, empty body (any body ignored)."""
    item_id = req.params["itemId"]
    ctx.org.redact_item(item_id)
    return Reply(201, headers={"Location": f"/api/v1/conversation-items/{item_id}"})


def voice_transcript(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /conversation-items/{itemId}/voice-transcript."""
    return json_reply(ctx.org.voice_transcript(req.params["itemId"]))


def recording(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /conversation-items/{itemId}/media/recording → audio/mpeg bytes."""
    return Reply(200, ctx.org.recording(req.params["itemId"]), MPEG)


# --- lookups -------------------------------------------------------------------------------------


def list_agents(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /agents."""
    return json_reply(ctx.org.list_agents())


def list_topics(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /topics."""
    return json_reply(ctx.org.list_topics())


def list_inboxes(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /inboxes."""
    return json_reply(ctx.org.list_inboxes())


# --- export --------------------------------------------------------------------------------------


def list_schedules(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /export/schedules."""
    return json_reply(ctx.exports.list_schedules())


def list_jobs(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /export/jobs[?status=&startAt=&endAt=]."""
    jobs = ctx.exports.list_jobs(
        status=req.arg("status"), start_at=req.arg("startAt"), end_at=req.arg("endAt")
    )
    return json_reply(jobs)


def get_job(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /export/jobs/{jobId}."""
    return json_reply(ctx.exports.get_job(req.params["jobId"]))


def delete_job(ctx: ApiContext, req: ApiRequest) -> Reply:
    """DELETE /export/jobs/{jobId} → 204."""
    ctx.exports.delete_job(req.params["jobId"])
    return Reply(204)


def export_file(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /export/jobs/{jobId}/files/{filename} → the file, streamed as application/x-ndjson."""
    path = ctx.exports.file_path(req.params["jobId"], req.params["filename"])
    return Reply(200, content_type=NDJSON, file=path)


# --- reports and events --------------------------------------------------------------------------


def create_report(ctx: ApiContext, req: ApiRequest) -> Reply:
    """POST /reports → 200 CSV; 10 a minute and 2 at a time per organisation (documented)."""
    org, settings = ctx.org, ctx.settings
    # ASSUMPTION: a request refused as invalid (400/501) does not count against the limits.
    request = parse_report_request(_json_object(req), [inbox.id for inbox in org.data.inboxes])
    decision = ctx.ratelimiter.start_report(
        settings.report_rate_limit_per_minute, settings.report_concurrency_limit
    )
    if not decision.allowed:
        headers = (
            {HEADER_RETRY_AFTER: str(decision.retry_after)} if settings.retry_after_header else {}
        )
        raise ApiError(429, "rate_limited", decision.detail, headers=headers)
    try:
        if settings.report_latency_ms > 0:
            ctx.sleep(settings.report_latency_ms / 1000.0)
        body = org.report_csv(
            request, settings.report_row_cap, empty_body=settings.report_empty_body_when_no_rows
        )
    finally:
        ctx.ratelimiter.end_report()
    disposition = f"attachment; filename={request.filename}"
    return Reply(200, body, CSV, {"Content-Disposition": disposition})


def list_events(ctx: ApiContext, req: ApiRequest) -> Reply:
    """GET /events?startAt=&endAt=&entities= (repeatable) → 200 JSON Lines, oldest first."""
    events = ctx.org.list_events(
        req.arg("startAt"), req.arg("endAt"), list(req.query.get("entities", []))
    )
    return Reply(200, b"".join(encode_json(event) + b"\n" for event in events), JSONLINES)
