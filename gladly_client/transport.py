"""The one place that sends HTTP: auth, throttle, retries, error mapping and spooled downloads."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, overload
from urllib.parse import quote, urlsplit

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from gladly_client.budget import RateBudget
from gladly_client.constants import (
    API_PREFIX,
    CONNECTION_POOL_SIZE,
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    HEADER_CONTENT_ENCODING,
    HEADER_CONTENT_LENGTH,
    HEADER_RATE_LIMIT,
    HEADER_RATE_REMAINING,
    STREAM_CHUNK_BYTES,
    USER_AGENT,
)
from gladly_client.errors import (
    GladlyConnectionError,
    GladlySettingsError,
    GladlyTimeoutError,
    IncompleteDownloadError,
    RateLimitError,
    body_cut_short,
    error_from_body,
    error_from_response,
)
from gladly_client.pacing import Priority
from gladly_client.retry import build_retrying
from gladly_client.throttle import ReportGate, Throttle

logger = logging.getLogger("gladly_client")

T = TypeVar("T")


class _DropQueryStrings(logging.Filter):
    """urllib3 logs every request line at DEBUG with its query string, and Gladly's customer
    search carries the email or phone there. Cut everything after '?' from such records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] + "?…" if isinstance(a, str) and "?" in a else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = record.msg.split("?", 1)[0] + "?…"
        return True


# Installed once, on import of the client: personal data must not reach any log handler.
_URLLIB3_LOG = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _DropQueryStrings) for f in _URLLIB3_LOG.filters):
    _URLLIB3_LOG.addFilter(_DropQueryStrings())

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# What a DNS name may hold (underscores too: some internal names have them).
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def normalize_base_url(base_url: str) -> str:
    """Return `scheme://host[:port]` for an organisation host, refusing plain HTTP off loopback.

    Accepts the host with or without a trailing `/api/v1`. Regional hosts (`org.us-1.gladly.com`)
    and any other host are fine: Gladly tenants live on several. A value that cannot be a base
    URL raises `GladlySettingsError` saying what is wrong with it and what it should look like.
    """
    if not base_url or not base_url.strip():
        raise GladlySettingsError(
            "base_url is empty: set GLADLY_BASE_URL to your organisation's host, "
            "e.g. https://yourorg.gladly.com"
        )
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        got = f"the scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise GladlySettingsError(
            f"base_url (GLADLY_BASE_URL) must look like https://yourorg.gladly.com (got {got}"
            f"{'' if parts.hostname else ' and no host'})"
        )
    if not _HOST_NAME.fullmatch(parts.hostname) and not _is_ip(parts.hostname):
        # requests would refuse it later with a message quoting the whole URL; say it here.
        raise GladlySettingsError(
            f"base_url (GLADLY_BASE_URL) has the host {parts.hostname!r}, which cannot be a host "
            "name (a space, or a character host names do not hold); it must look like "
            "https://yourorg.gladly.com"
        )
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise GladlySettingsError(
            "base_url (GLADLY_BASE_URL) has a port that is not a number from 0 to 65535"
        ) from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise GladlySettingsError(
            "base_url uses plain http:// for a non-loopback host; Gladly is HTTPS only and the "
            "API token would travel in clear. Use https://, or a loopback address for the sandbox."
        )
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def why_no_answer(exc: BaseException) -> str:
    """Why a request got no answer, in words that never carry its URL: the exception's type and,
    when its causes hold one, the operating system's reason (`ConnectionError: Connection
    refused`, `ConnectionError: the host name does not resolve`)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cause = todo.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return f"{type(exc).__name__}: the host name does not resolve"
        if isinstance(cause, OSError) and cause.errno is not None and cause.errno > 0:
            return f"{type(exc).__name__}: {os.strerror(cause.errno)}"
        # requests and urllib3 keep the cause in args, `reason`, or the exception chain.
        todo += [arg for arg in cause.args if isinstance(arg, BaseException)]
        for attribute in ("reason", "__cause__", "__context__"):
            found = getattr(cause, attribute, None)
            if isinstance(found, BaseException):
                todo.append(found)
    return type(exc).__name__


@dataclass(frozen=True)
class HTTPResult:
    """A successful answer, already read: status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Download:
    """A file that arrived whole: where it was spooled, its size and SHA-256."""

    path: Path
    bytes_read: int
    sha256: str


class Transport:
    """Sends requests for one client: every call is throttled, retried and mapped to errors."""

    def __init__(
        self,
        *,
        base_url: str,
        user: str,
        api_token: str,
        requests_per_second: float,
        timeout: float,
        max_attempts: int,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        budget: RateBudget | None = None,
        priority: Priority = Priority.PROMPT,
    ) -> None:
        if not user:
            raise ValueError("user is empty: set GLADLY_USER to the email of the API token's user")
        if not api_token:
            raise ValueError("api_token is empty: set GLADLY_API_TOKEN")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.base_url = normalize_base_url(base_url)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.throttle: RateBudget = (
            budget
            if budget is not None
            else Throttle(requests_per_second, clock=clock, sleep=sleep)
        )
        self.priority = priority
        self._retrying = build_retrying(max_attempts=max_attempts, sleep=sleep, logger=logger)
        self._session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=CONNECTION_POOL_SIZE, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.auth = (user, api_token)
        self._session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        # requests would otherwise read ~/.netrc and proxy variables; neither belongs here.
        self._session.trust_env = False

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def url(self, template: str, path_params: Mapping[str, str] | None = None) -> str:
        """Fill a path template with URL-quoted parameters."""
        quoted = {k: quote(str(v), safe="") for k, v in (path_params or {}).items()}
        return f"{self.base_url}{API_PREFIX}{template.format(**quoted)}"

    @overload
    def request(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        parse: None = None,
        gate: ReportGate | None = None,
    ) -> HTTPResult: ...

    @overload
    def request(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        parse: Callable[[HTTPResult], T],
        gate: ReportGate | None = None,
    ) -> T: ...

    def request(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        parse: Callable[[HTTPResult], T] | None = None,
        gate: ReportGate | None = None,
    ) -> HTTPResult | T:
        """Send one logical request (with retries) and return its successful answer.

        With `parse`, the answer's body is decoded inside the retried unit and `parse(result)`
        is returned: a garbled or cut-short body raises `MalformedResponseError`, which is
        retried like a reset connection; a pydantic `ValidationError` on valid JSON becomes
        `ResponseValidationError`, which is not (a changed API stays changed). Without
        `parse` the body is not looked at (204 and empty answers are fine). `gate` (the
        Reports API's own budget) is held around each attempt's send, on top of the throttle;
        a 429 tells it the organisation's minute is spent.
        """
        url = self.url(template, path_params)

        def send_once() -> HTTPResult | T:
            with gate.slot() if gate is not None else nullcontext(0.0):
                try:
                    with self._send(
                        method, template, url, params=params, json=json, stream=False
                    ) as resp:
                        result = HTTPResult(resp.status_code, resp.headers, resp.content)
                except RateLimitError:
                    if gate is not None:
                        gate.refused()
                    raise
            if parse is None:
                return result
            return _decode(parse, result, method, template)

        answer: HTTPResult | T = self._retrying.copy()(send_once)
        return answer

    def download(
        self,
        template: str,
        path_params: Mapping[str, str],
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        destination: str | os.PathLike[str] | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> Download:
        """Stream a file to disk, verify it arrived whole, and retry from the start if not.

        The body never sits in memory: it is written in chunks to a temporary file beside
        `destination` (or in `spool_dir`), hashed on the way, and renamed into place only when
        complete. A cut-short body raises `IncompleteDownloadError`, which the retry policy
        treats like a dropped connection. `on_progress(received, expected)` is called per chunk
        (and starts again from 0 when an attempt is retried).
        """
        url = self.url(template, path_params)
        target_dir = Path(destination).parent if destination else spool_dir

        def download_once() -> Download:
            fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=target_dir)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    received, digest = self._stream_body(template, url, out, on_progress)
                final = Path(destination) if destination else tmp
                if destination:
                    os.replace(tmp, final)
                return Download(final, received, digest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        download: Download = self._retrying.copy()(download_once)
        return download

    def _stream_body(
        self,
        template: str,
        url: str,
        out: IO[bytes],
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> tuple[int, str]:
        digest = hashlib.sha256()
        received = 0
        with self._send("GET", template, url, stream=True) as resp:
            announced = resp.headers.get(HEADER_CONTENT_LENGTH)
            expected = int(announced) if announced and announced.isdigit() else None
            encoded = bool(resp.headers.get(HEADER_CONTENT_ENCODING))
            try:
                for chunk in resp.raw.stream(STREAM_CHUNK_BYTES, decode_content=True):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if on_progress is not None:
                        on_progress(received, expected)
            except (requests.RequestException, Urllib3HTTPError, OSError) as exc:
                logger.warning(
                    "GET %s: download interrupted (%s) after %d bytes",
                    template,
                    type(exc).__name__,
                    received,
                )
                raise IncompleteDownloadError("GET", template, received, expected) from None
            if expected is not None and not encoded and received != expected:
                raise IncompleteDownloadError("GET", template, received, expected)
        return received, digest.hexdigest()

    def _send(
        self,
        method: str,
        template: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        stream: bool,
    ) -> closing[requests.Response]:
        waited = self.throttle.acquire(method, self.priority)
        started = time.perf_counter()
        try:
            resp = self._session.request(
                method,
                url,
                params=params,
                json=json,
                timeout=(min(DEFAULT_CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout),
                allow_redirects=False,
                stream=stream,
            )
        # `from None`: requests' own messages contain the full URL, query string included.
        except requests.Timeout as exc:
            raise GladlyTimeoutError(method, template, why_no_answer(exc)) from None
        except requests.RequestException as exc:
            raise GladlyConnectionError(method, template, why_no_answer(exc)) from None
        self.throttle.on_response(
            method,
            resp.status_code,
            _header_int(resp.headers, HEADER_RATE_REMAINING),
            _header_int(resp.headers, HEADER_RATE_LIMIT),
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %d in %.0f ms (throttled %.0f ms)",
            method,
            template,
            resp.status_code,
            elapsed_ms,
            waited * 1000,
        )
        if resp.status_code >= 300:
            try:
                body = resp.content
            except requests.RequestException:
                body = b""
            finally:
                resp.close()
            raise error_from_response(
                status=resp.status_code,
                method=method,
                path_template=template,
                headers=resp.headers,
                body=body,
            )
        # Closed whatever happens to its reader.
        return closing(resp)


def _decode(parse: Callable[[HTTPResult], T], result: HTTPResult, method: str, template: str) -> T:
    """Apply `parse` to a 2xx answer; a body it cannot use is mapped by `error_from_body`."""
    if body_cut_short(result.headers, result.body):
        raise error_from_body(
            status=result.status,
            method=method,
            path_template=template,
            headers=result.headers,
            body=result.body,
        )
    try:
        return parse(result)
    except ValidationError as exc:
        # `from None`: pydantic's message and the exception's context quote the body.
        raise error_from_body(
            status=result.status,
            method=method,
            path_template=template,
            headers=result.headers,
            body=result.body,
            validation=exc,
        ) from None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    """A count header as a number >= 0; None when absent or not a count."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def iter_file_lines(path: Path, *, delete: bool) -> Iterator[bytes]:
    """Yield a file's lines without their line ending; optionally delete it when done."""
    try:
        with open(path, "rb") as f:
            for line in f:
                yield line.rstrip(b"\r\n")
    finally:
        if delete:
            path.unlink(missing_ok=True)
