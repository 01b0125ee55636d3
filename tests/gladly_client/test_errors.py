"""The status → exception table and Gladly's four error body shapes."""

from __future__ import annotations

import json

import pytest

from gladly_client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CustomerMovedError,
    GladlyAPIError,
    GladlyError,
    NotFoundError,
    NotModelledError,
    PermissionDeniedError,
    ProfileHasOpenConversationsError,
    RateLimitError,
    ServerError,
    UnexpectedStatusError,
    error_from_response,
    parse_error_details,
    parse_retry_after,
)
from gladly_client.retry import is_retryable


def _error(
    status: int,
    body: object = None,
    *,
    method: str = "GET",
    template: str = "/customer-profiles/{customer_id}",
    headers: dict[str, str] | None = None,
) -> GladlyAPIError | NotModelledError:
    raw = b"" if body is None else json.dumps(body).encode()
    return error_from_response(
        status=status, method=method, path_template=template, headers=headers or {}, body=raw
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (301, CustomerMovedError),
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, UnexpectedStatusError),
        (302, UnexpectedStatusError),
    ],
)
def test_status_maps_to_exception(status: int, expected: type[GladlyAPIError]) -> None:
    err = _error(status)
    assert type(err) is expected
    assert isinstance(err, GladlyError)
    assert err.status == status


def test_a_sandbox_501_not_modelled_is_its_own_error_never_gladly_s_and_never_retried() -> None:
    body = {"errors": [{"code": "not_modelled", "detail": "the sandbox does not model POST /x"}]}
    err = _error(501, body, method="POST", template="/tasks", headers={"X-Request-Id": "r1"})
    assert type(err) is NotModelledError
    assert isinstance(err, GladlyError)
    assert not isinstance(err, GladlyAPIError)  # Gladly never answered
    assert not is_retryable(err)
    assert str(err) == (
        "the sandbox does not model POST /tasks: this is not Gladly's answer [request r1]"
    )
    assert (err.status, err.method, err.path_template) == (501, "POST", "/tasks")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (501, None),
        (501, {"errors": [{"code": "not_implemented", "detail": "x"}]}),
        (404, {"errors": [{"code": "not_modelled", "detail": "x"}]}),
    ],
    ids=["501-empty", "501-other-code", "404-not_modelled"],
)
def test_only_a_501_with_the_not_modelled_code_is_the_sandbox_s(status: int, body: object) -> None:
    err = _error(status, body)
    assert not isinstance(err, NotModelledError)
    assert type(err) is (ServerError if status == 501 else NotFoundError)


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        # documented: a list under "errors"
        ({"errors": [{"attr": "email", "code": "invalid", "detail": "x"}]}, ("invalid",)),
        # customer 404 / delete 400: an object under "errors"
        (
            {"errors": {"code": "not_exist", "detail": "customer profile [x] does not exist"}},
            ("not_exist",),
        ),
        # export job delete 400: a bare list
        (
            [{"attr": "status", "code": "temporary_failure", "detail": "try later"}],
            ("temporary_failure",),
        ),
        # several 404s: no body at all
        (None, ()),
        # and things Gladly never documented must not crash the mapping
        ({"message": "oops"}, ()),
        ("just a string", ()),
        ({"errors": [1, None, {"code": 5}]}, ()),
    ],
)
def test_all_error_body_shapes_are_understood(body: object, codes: tuple[str, ...]) -> None:
    assert _error(404, body).codes == codes


def test_non_json_body_is_tolerated() -> None:
    assert parse_error_details(b"<html>Bad gateway</html>") == ()
    assert parse_error_details(b"\xff\xfe") == ()


def test_moved_carries_old_and_new_ids() -> None:
    err = _error(
        301,
        {"errors": [{"code": "moved", "meta": {"old": "OLD", "new": "NEW"}}]},
    )
    assert isinstance(err, CustomerMovedError)
    assert (err.old_id, err.new_id) == ("OLD", "NEW")


def test_open_conversation_refusal_is_distinct_only_for_profile_delete() -> None:
    body = {"errors": {"attr": "conversation", "code": "invalid_state", "detail": "close first"}}
    delete = _error(400, body, method="DELETE")
    close = _error(400, body, method="PATCH", template="/conversations/{conversation_id}")
    assert type(delete) is ProfileHasOpenConversationsError
    assert type(close) is BadRequestError


def test_message_names_method_template_status_codes_and_request_id_never_detail() -> None:
    err = _error(
        400,
        {"errors": [{"attr": "email", "code": "invalid", "detail": "dana@example.com is bad"}]},
        template="/customer-profiles",
        headers={"X-Request-Id": "req-42"},
    )
    assert str(err) == "GET /customer-profiles returned 400 (invalid on email) [request req-42]"
    assert err.request_id == "req-42"
    assert "dana@example.com" not in str(err)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("1.5", 1.5),
        ("7", 7.0),
        ("-3", 0.0),
        ("86400", 120.0),
        ("soon", None),
    ],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
    headers = {} if header is None else {"Retry-After": header}
    err = _error(429, headers=headers)
    assert isinstance(err, RateLimitError)
    assert err.retry_after == seconds


def test_retry_after_as_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
