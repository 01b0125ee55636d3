"""Every number and header name the client depends on, in one place."""

from __future__ import annotations

API_PREFIX = "/api/v1"

# Gladly allows 10 requests per second per HTTP method per organisation, shared by every
# integration of that organisation. We default to 8 to leave room for the others.
GLADLY_RATE_LIMIT_PER_SECOND = 10.0
DEFAULT_RATE_SHARE = 0.8
DEFAULT_REQUESTS_PER_SECOND = DEFAULT_RATE_SHARE * GLADLY_RATE_LIMIT_PER_SECOND
# The throttle never slows below this, however many 429s it sees.
MIN_REQUESTS_PER_SECOND = 0.5
# On a 429 the method's rate is multiplied by this; it recovers additively afterwards.
THROTTLE_BACKOFF_FACTOR = 0.5
# Share of the configured rate regained per second without a 429 or an exhausted window.
THROTTLE_RECOVERY_PER_SECOND = 0.08
# An answer saying the organisation's window is spent (`Ratelimit-Remaining-Second: 0`) while we
# kept to our share means other integrations are busy: the pace is multiplied by this.
GIVE_WAY_FACTOR = 0.9
# The Reports API has its own budget per organisation (api.md "Rate limits"): 10 requests a
# minute and 2 at once, on top of the POST method's 10 a second.
REPORTS_PER_MINUTE = 10
REPORT_CONCURRENCY = 2
# Gladly counts in one-second windows; when it says none remain we wait this long.
RATE_WINDOW_SECONDS = 1.0

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_ATTEMPTS = 6
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# Retry-After values beyond this are capped: a broken header must not park a run for hours.
RETRY_AFTER_MAX_SECONDS = 120.0

# Concurrent connections the client keeps open (the throttle, not this, sets the pace).
CONNECTION_POOL_SIZE = 32

# Export files are read in chunks of this size; lines are split from them.
STREAM_CHUNK_BYTES = 1 << 20

HEADER_LIMITED_DATA = "Gladly-Limited-Data"
HEADER_RATE_LIMIT = "Ratelimit-Limit-Second"
HEADER_RATE_REMAINING = "Ratelimit-Remaining-Second"
HEADER_RETRY_AFTER = "Retry-After"
HEADER_LOCATION = "Location"
HEADER_CONTENT_LENGTH = "Content-Length"
HEADER_CONTENT_ENCODING = "Content-Encoding"
# A rehearsal sandbox answers a call Gladly documents but it does not model with 501 and this
# error code: the client reports it as the sandbox's limit, never as Gladly's refusal.
NOT_MODELLED_STATUS = 501
NOT_MODELLED_CODE = "not_modelled"
# Gladly documents no request-id header; these are the names we look for, in order.
REQUEST_ID_HEADERS = ("Gladly-Request-Id", "X-Request-Id", "X-Amzn-Trace-Id")

ENV_BASE_URL = "GLADLY_BASE_URL"
ENV_USER = "GLADLY_USER"
ENV_API_TOKEN = "GLADLY_API_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_REQUESTS_PER_SECOND = "GLADLY_REQUESTS_PER_SECOND"
ENV_RATE_SHARE = "GLADLY_RATE_SHARE"
ENV_RATE_BUDGET = "GLADLY_RATE_BUDGET"
ENV_RATE_BUDGET_FILE = "GLADLY_RATE_BUDGET_FILE"

USER_AGENT = "gladly-pipeline/0.1 (+https://github.com/gladly-pipeline)"

# What Gladly's API can erase, by item `content.type` (api.md §4). Everything else can only go
# together with the whole customer profile.
REDACTABLE_CONTENT_TYPES = frozenset(
    {"CHAT_MESSAGE", "EMAIL", "SMS", "PHONE_CALL", "VOICEMAIL", "WHATSAPP", "TWITTER"}
)
DELETABLE_CONTENT_TYPES = frozenset({"CUSTOMER_ACTIVITY"})
