"""The client's exception tree and the one function that maps a response to it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gladly_client.constants import (
    HEADER_CONTENT_ENCODING,
    HEADER_CONTENT_LENGTH,
    HEADER_RETRY_AFTER,
    NOT_MODELLED_CODE,
    NOT_MODELLED_STATUS,
    REQUEST_ID_HEADERS,
    RETRY_AFTER_MAX_SECONDS,
)

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CustomerMovedError",
    "ErrorDetail",
    "GladlyAPIError",
    "GladlyConnectionError",
    "GladlyError",
    "GladlySettingsError",
    "GladlyTimeoutError",
    "IncompleteDownloadError",
    "MalformedResponseError",
    "NotFoundError",
    "NotModelledError",
    "PermissionDeniedError",
    "ProfileHasOpenConversationsError",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "UnexpectedStatusError",
    "body_cut_short",
    "error_from_body",
    "error_from_response",
    "parse_error_details",
    "parse_retry_after",
]


class GladlyError(Exception):
    """Root of every error this client raises."""


class GladlySettingsError(GladlyError, ValueError):
    """The client's settings are missing or wrong (base URL, user, token, pace): raised before
    any request is sent. The message names the setting and how to fix it, never its secret."""


class GladlyConnectionError(GladlyError):
    """The request never got an HTTP answer: DNS, refused or reset connection."""

    def __init__(
        self, method: str, path_template: str, reason: str, *, summary: str = "connection failed"
    ) -> None:
        self.method = method
        self.path_template = path_template
        self.reason = reason
        super().__init__(f"{method} {path_template}: {summary} ({reason})")


class GladlyTimeoutError(GladlyConnectionError):
    """The request or the response did not arrive within the configured timeout."""


class IncompleteDownloadError(GladlyConnectionError):
    """A download ended before the whole body arrived; it is retried from the start."""

    def __init__(
        self, method: str, path_template: str, received: int, expected: int | None
    ) -> None:
        self.received = received
        self.expected = expected
        announced = f" of {expected} announced" if expected is not None else ""
        super().__init__(
            method, path_template, f"download cut short after {received} bytes{announced}"
        )


class MalformedResponseError(GladlyConnectionError):
    """Gladly answered 2xx, but the body that should be JSON was garbled or cut short.

    Treated like a reset connection: retried with the same backoff and attempt budget, then
    raised. The message names method, path template, status, sizes and request id; never the
    body (it may hold customer data) and never the query string.
    """

    def __init__(
        self,
        method: str,
        path_template: str,
        *,
        status: int,
        received: int,
        expected: int | None = None,
        request_id: str | None = None,
        expected_format: str = "JSON",
    ) -> None:
        self.status = status
        self.received = received
        self.expected = expected
        self.request_id = request_id
        if expected is not None and received < expected:
            reason = f"{status} body cut short after {received} of {expected} announced bytes"
        else:
            reason = f"{status} body of {received} bytes is not valid {expected_format}"
        if request_id:
            reason += f" [request {request_id}]"
        super().__init__(method, path_template, reason, summary="malformed response")


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of Gladly's `errors` body.

    `detail` text is kept out of messages and logs: Gladly may echo customer data in it.
    """

    code: str | None = None
    attr: str | None = None
    detail: str | None = None
    meta: Mapping[str, Any] | None = None


class GladlyAPIError(GladlyError):
    """Gladly answered with an error status.

    The message names the method, the path *template* (never the filled path, which may hold an
    email), the status, the error codes and the request id. Response bodies never appear in it.
    """

    status: int = 0

    def __init__(
        self,
        *,
        status: int,
        method: str,
        path_template: str,
        request_id: str | None = None,
        errors: tuple[ErrorDetail, ...] = (),
    ) -> None:
        self.status = status
        self.method = method
        self.path_template = path_template
        self.request_id = request_id
        self.errors = errors
        super().__init__(self._message())

    @property
    def codes(self) -> tuple[str, ...]:
        """The machine-readable error codes Gladly sent, in order."""
        return tuple(e.code for e in self.errors if e.code)

    @property
    def code(self) -> str | None:
        """The first error code, or None when the body had none."""
        return self.codes[0] if self.codes else None

    def _message(self) -> str:
        parts = [f"{self.method} {self.path_template} returned {self.status}"]
        described = [
            f"{e.code}" + (f" on {e.attr}" if e.attr else "") for e in self.errors if e.code
        ]
        if described:
            parts.append("(" + ", ".join(described) + ")")
        if self.request_id:
            parts.append(f"[request {self.request_id}]")
        return " ".join(parts)


class BadRequestError(GladlyAPIError):
    """400: Gladly refused the request as invalid."""


class ProfileHasOpenConversationsError(BadRequestError):
    """400 `invalid_state` on profile delete: a conversation is still OPEN or WAITING."""


class AuthenticationError(GladlyAPIError):
    """401: the user or API token is missing or wrong."""


class PermissionDeniedError(GladlyAPIError):
    """403: the token's user lacks a permission.

    Deleting profiles needs the Compliance Administrator role.
    """


class NotFoundError(GladlyAPIError):
    """404: the resource does not exist (or no longer does)."""


class ConflictError(GladlyAPIError):
    """409: an id, email or mobile number is already taken."""


class RateLimitError(GladlyAPIError):
    """429: the organisation's per-method rate limit was exceeded."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class ServerError(GladlyAPIError):
    """5xx: Gladly failed; usually transient."""


class CustomerMovedError(GladlyAPIError):
    """301: the customer id was merged into another profile; `new_id` is where it lives now."""

    def __init__(self, *, old_id: str | None, new_id: str | None, **kwargs: Any) -> None:
        self.old_id = old_id
        self.new_id = new_id
        super().__init__(**kwargs)


class UnexpectedStatusError(GladlyAPIError):
    """Any other status Gladly does not document for this call."""


class ResponseValidationError(GladlyError):
    """Gladly answered 2xx but the body did not match the expected shape.

    The message names the model and the failing field locations, never the values.
    """

    def __init__(self, method: str, path_template: str, model: str, locations: list[str]) -> None:
        self.method = method
        self.path_template = path_template
        self.model = model
        self.locations = locations
        where = ", ".join(locations[:5]) + (" …" if len(locations) > 5 else "")
        super().__init__(
            f"{method} {path_template}: response did not match {model} (fields: {where})"
        )


class NotModelledError(GladlyError):
    """501 `not_modelled`: a rehearsal sandbox does not model this call; Gladly never answered.

    Not a `GladlyAPIError` (that is Gladly's own answer) and never retried: the call is one
    Gladly documents, but the stand-in server cannot show what Gladly would do with it.
    """

    status: int = NOT_MODELLED_STATUS

    def __init__(self, *, method: str, path_template: str, request_id: str | None = None) -> None:
        self.method = method
        self.path_template = path_template
        self.request_id = request_id
        message = (
            f"the sandbox does not model {method} {path_template}: this is not Gladly's answer"
        )
        if request_id:
            message += f" [request {request_id}]"
        super().__init__(message)


_STATUS_TO_ERROR: dict[int, type[GladlyAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def parse_error_details(body: bytes) -> tuple[ErrorDetail, ...]:
    """Read Gladly's error body in any of its four shapes.

    `{"errors": [...]}` (documented), `{"errors": {...}}` (object, seen on customer 404/400),
    `[...]` (bare list, seen on export-job delete) and an empty body (several 404s).
    Anything else yields no details rather than an exception.
    """
    if not body or not body.strip():
        return ()
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    entries: Any = parsed.get("errors") if isinstance(parsed, dict) else parsed
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        return ()
    details = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        meta = entry.get("meta")
        details.append(
            ErrorDetail(
                code=_str_or_none(entry.get("code")),
                attr=_str_or_none(entry.get("attr")),
                detail=_str_or_none(entry.get("detail")),
                meta=meta if isinstance(meta, dict) else None,
            )
        )
    return tuple(details)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), capped."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def error_from_response(
    *,
    status: int,
    method: str,
    path_template: str,
    headers: Mapping[str, str],
    body: bytes,
) -> GladlyAPIError | NotModelledError:
    """Map one error response to the exception that describes it. The only such mapping."""
    errors = parse_error_details(body)
    request_id = next((headers[h] for h in REQUEST_ID_HEADERS if h in headers), None)
    common: dict[str, Any] = {
        "status": status,
        "method": method,
        "path_template": path_template,
        "request_id": request_id,
        "errors": errors,
    }
    codes = {e.code for e in errors}
    if status in (301, 308):
        meta = next((e.meta for e in errors if e.meta), None) or {}
        return CustomerMovedError(
            old_id=_str_or_none(meta.get("old")), new_id=_str_or_none(meta.get("new")), **common
        )
    if status == 429:
        return RateLimitError(
            retry_after=parse_retry_after(headers.get(HEADER_RETRY_AFTER)), **common
        )
    if (
        status == 400
        and method == "DELETE"
        and path_template.startswith("/customer-profiles/")
        and "invalid_state" in codes
    ):
        return ProfileHasOpenConversationsError(**common)
    if status == NOT_MODELLED_STATUS and NOT_MODELLED_CODE in codes:
        # A sandbox's answer, not Gladly's; any other 501 stays a (retried) server error.
        return NotModelledError(method=method, path_template=path_template, request_id=request_id)
    if status >= 500:
        return ServerError(**common)
    return _STATUS_TO_ERROR.get(status, UnexpectedStatusError)(**common)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def body_cut_short(headers: Mapping[str, str], body: bytes) -> bool:
    """True when an unencoded body is shorter than the `Content-Length` it announced."""
    announced = headers.get(HEADER_CONTENT_LENGTH)
    if announced is None or not announced.strip().isdigit():
        return False
    if headers.get(HEADER_CONTENT_ENCODING):
        # The announced length is of the encoded body; requests has already decoded it.
        return False
    return len(body) < int(announced)


def error_from_body(
    *,
    status: int,
    method: str,
    path_template: str,
    headers: Mapping[str, str],
    body: bytes,
    validation: ValidationError | None = None,
) -> MalformedResponseError | ResponseValidationError:
    """Map one 2xx answer whose body could not be used to the exception that describes it.

    The only such mapping (`error_from_response` is the only one for error statuses). A body
    cut short of its `Content-Length`, or one that is not JSON at all, is a transport fault
    (`MalformedResponseError`, retried); valid JSON of the wrong shape is a changed API
    (`ResponseValidationError`, not retried). Neither message quotes the body.
    """
    request_id = next((headers[h] for h in REQUEST_ID_HEADERS if h in headers), None)
    errors = (
        validation.errors(include_url=False, include_context=False, include_input=False)
        if validation is not None
        else []
    )
    if (
        validation is None
        or body_cut_short(headers, body)
        or any(e["type"] == "json_invalid" for e in errors)
    ):
        announced = headers.get(HEADER_CONTENT_LENGTH, "").strip()
        return MalformedResponseError(
            method,
            path_template,
            status=status,
            received=len(body),
            expected=int(announced) if announced.isdigit() else None,
            request_id=request_id,
        )
    # Only the locations: pydantic's own message quotes the offending input values.
    locations = [".".join(str(part) for part in e["loc"]) or "<root>" for e in errors]
    return ResponseValidationError(method, path_template, validation.title, locations)
