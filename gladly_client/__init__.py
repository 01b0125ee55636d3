"""A typed, throttled, retrying client for Gladly's REST API."""

from __future__ import annotations

from gladly_client.budget import LockFilePaces, RateBudget
from gladly_client.client import GladlyClient, GladlySettings
from gladly_client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CustomerMovedError,
    GladlyAPIError,
    GladlyConnectionError,
    GladlyError,
    GladlySettingsError,
    GladlyTimeoutError,
    IncompleteDownloadError,
    MalformedResponseError,
    NotFoundError,
    NotModelledError,
    PermissionDeniedError,
    ProfileHasOpenConversationsError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    UnexpectedStatusError,
)
from gladly_client.pacing import Priority
from gladly_client.resources import ExportFileStream
from gladly_client.throttle import Throttle
from gladly_client.transport import Download

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CustomerMovedError",
    "Download",
    "ExportFileStream",
    "GladlyAPIError",
    "GladlyClient",
    "GladlyConnectionError",
    "GladlyError",
    "GladlySettings",
    "GladlySettingsError",
    "GladlyTimeoutError",
    "IncompleteDownloadError",
    "LockFilePaces",
    "MalformedResponseError",
    "NotFoundError",
    "NotModelledError",
    "PermissionDeniedError",
    "Priority",
    "ProfileHasOpenConversationsError",
    "RateBudget",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "Throttle",
    "UnexpectedStatusError",
]
