"""A fault-injecting HTTP/1.1 proxy for chaos tests.

It sits between a client (e.g. `GladlyClient`) and an upstream server (e.g. `gladly_sandbox`),
so tests can take the truth from the upstream's state while the client sees a hostile network:

    with Sandbox(seed=1, customers=20) as sb, FaultProxy(
        sb.base_url, seed=7, rates={"503": 0.1, "reset_after": 0.05},
        exclude_paths=(CONTROL_PREFIX,),
    ) as proxy:
        client = GladlyClient(proxy.base_url, sb.user, sb.api_token, ...)

Fault kinds (`rates` maps each to its probability per eligible request; the sum is at most 1):

- "429": answer 429 with Gladly's error body, no `Retry-After`; not forwarded.
- "500", "502", "503": answer that status with an error body; not forwarded.
- "reset_before": reset the client connection (TCP RST) without forwarding.
- "reset_after": forward the request (its side effect happens upstream), read the whole answer,
  then reset the client connection without answering.
- "timeout_after": forward, then keep the client connection silent for `hold_seconds`, then
  close it (a shorter client read timeout fires first).
- "truncated": forward, then send the upstream status and headers with the full
  `Content-Length` but only the first half of the body, then close.
- "garbled": forward, then send the upstream status and headers with the body replaced by
  non-JSON bytes of the same length (correct `Content-Length`), then close.

A request is eligible when `enabled` is true, its method is in `methods` (default all) and its
path does not start with one of `exclude_paths`. Every fault closes the client connection. One
seeded RNG draw is made per eligible request, under a lock, so sequential requests see the same
faults for the same seed. Without a fault the answer is streamed through in chunks.

Standard library only; listens on 127.0.0.1 only. Bodies are never logged or printed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FAULT_KINDS", "FORWARDED", "UPSTREAM_ERROR", "FaultProxy"]

# Fixed order: it maps one uniform draw onto the kinds, so it is part of the determinism.
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "reset_before",
    "reset_after",
    "timeout_after",
    "truncated",
    "garbled",
)
FORWARDED = "forwarded"  # stats key: passed through untouched
UPSTREAM_ERROR = "upstream_error"  # stats key: the upstream failed; the client was reset

_STATUS_FAULTS = frozenset({"429", "500", "502", "503"})
_CHUNK = 64 * 1024
_UPSTREAM_TIMEOUT = 60.0
_LINGER_ZERO = struct.pack("ii", 1, 0)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_GARBLE = b"<html><head><title>502 Bad Gateway</title></head><body>garbled</body></html>"


def _error_body(status: int) -> tuple[bytes, str]:
    if status == 429:
        body: Any = {"errors": [{"code": "rate_limit_exceeded", "detail": "rate limit reached"}]}
        return json.dumps(body, separators=(",", ":")).encode(), "application/json"
    if status == 500:
        body = {"errors": [{"code": "internal_error", "detail": "internal server error"}]}
        return json.dumps(body, separators=(",", ":")).encode(), "application/json"
    # 502/503 come from a load balancer in front of Gladly: HTML, not JSON.
    reason = http.client.responses.get(status, "Error")
    page = f"<html><head><title>{status} {reason}</title></head><body>{reason}</body></html>"
    return page.encode(), "text/html"


def _garbled(length: int) -> bytes:
    """Non-JSON bytes of exactly `length` (starts with '<', which no JSON text does)."""
    repeats = length // len(_GARBLE) + 1
    return (_GARBLE + b" " * len(_GARBLE) * (repeats - 1))[:length]


def _hop_by_hop(headers: list[tuple[str, str]]) -> set[str]:
    names = set(_HOP_BY_HOP)
    for name, value in headers:
        if name.lower() == "connection":
            names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that drop or reset their connections; loud about the rest."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # ---- plumbing -----------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to each keep-alive answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.proxy._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines carry query strings (emails, phone numbers)."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:
            # E.g. the client reset an idle keep-alive connection while we waited for a request.
            self.close_connection = True

    def _dispatch(self) -> None:
        try:
            self._handle()
        except OSError:
            # The client went away (or was reset on purpose); nothing more to say on it.
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    # ---- one request --------------------------------------------------------------------

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_request_body()
        kind = proxy._draw(self.command, self.path)
        if kind is not None:
            proxy._record(self.command, self.path, kind)
        if kind is not None and kind in _STATUS_FAULTS:
            self._answer_error(int(kind))
            return
        if kind == "reset_before":
            self._reset()
            return
        conn = proxy._upstream_connection()
        try:
            try:
                resp = self._forward(conn, body)
            except (OSError, http.client.HTTPException):
                proxy._record(self.command, self.path, UPSTREAM_ERROR)
                self._reset()
                return
            if kind is None:
                proxy._record(self.command, self.path, FORWARDED)
                self._relay(resp)
            elif kind == "reset_after":
                self._drain(resp)
                self._reset()
            elif kind == "timeout_after":
                self._drain(resp)
                self.close_connection = True
                proxy._stopping.wait(proxy.hold_seconds)
            elif kind == "truncated":
                self._send_truncated(resp)
            elif kind == "garbled":
                self._send_garbled(resp)
        finally:
            conn.close()

    def _read_request_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        return self.rfile.read(int(length))

    def _forward(
        self, conn: http.client.HTTPConnection, body: bytes | None
    ) -> http.client.HTTPResponse:
        proxy = self.server.proxy
        conn.putrequest(
            self.command,
            proxy._upstream_path + self.path,
            skip_host=True,
            skip_accept_encoding=True,
        )
        items = list(self.headers.items())
        drop = _hop_by_hop(items) | {"host", "content-length"}
        for name, value in items:
            if name.lower() not in drop:
                conn.putheader(name, value)
        conn.putheader("Host", proxy._upstream_netloc)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return conn.getresponse()

    # ---- answers ------------------------------------------------------------------------

    def _send_head(
        self, resp: http.client.HTTPResponse, *, length: int | None, chunked: bool = False
    ) -> None:
        """Status line and the upstream's end-to-end headers, with our own framing."""
        self.send_response_only(resp.status, resp.reason)
        items = resp.getheaders()
        drop = _hop_by_hop(items) | {"content-length"}
        for name, value in items:
            if name.lower() not in drop:
                self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _relay(self, resp: http.client.HTTPResponse) -> None:
        """No fault: pass the answer through, streaming the body in chunks."""
        no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        announced = resp.getheader("Content-Length")
        if no_body:
            length = int(announced) if announced and announced.isdigit() else None
            self._send_head(resp, length=length)
            return
        if announced is not None and announced.isdigit():
            self._send_head(resp, length=int(announced))
            try:
                for chunk in _chunks(resp):
                    self.wfile.write(chunk)
            except (OSError, http.client.HTTPException):
                # The upstream cut its own body short: so does the client's copy.
                self.close_connection = True
            return
        self._send_head(resp, length=None, chunked=True)
        try:
            for chunk in _chunks(resp):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (OSError, http.client.HTTPException):
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def _answer_error(self, status: int) -> None:
        body, content_type = _error_body(status)
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_truncated(self, resp: http.client.HTTPResponse) -> None:
        self.close_connection = True
        announced = resp.getheader("Content-Length")
        if self.command != "HEAD" and announced is not None and announced.isdigit():
            full = int(announced)
            self._send_head(resp, length=full)
            remaining = full // 2
            while remaining > 0:  # stream the first half; the rest is never read
                chunk = resp.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
            return
        body = self._drain(resp)
        self._send_head(resp, length=len(body))
        self.wfile.write(body[: len(body) // 2])

    def _send_garbled(self, resp: http.client.HTTPResponse) -> None:
        self.close_connection = True
        body = self._drain(resp)
        if self.command == "HEAD":
            self._send_head(resp, length=int(resp.getheader("Content-Length") or 0))
            return
        self._send_head(resp, length=len(body))
        self.wfile.write(_garbled(len(body)))

    def _drain(self, resp: http.client.HTTPResponse) -> bytes:
        """Read the whole upstream answer (so its side effect is complete)."""
        try:
            return b"".join(_chunks(resp))
        except (OSError, http.client.HTTPException):
            return b""

    def _reset(self) -> None:
        """Abort the client connection with a TCP RST (SO_LINGER 0), sending nothing more."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            os.close(sock.detach())


def _chunks(resp: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = resp.read(_CHUNK)
        if not chunk:
            return
        yield chunk


class FaultProxy:
    """A loopback HTTP proxy that injects seeded faults in front of `upstream`.

    `base_url` is what to hand to the client; `stats` counts injected faults by kind plus
    "forwarded" (passed through untouched) and "upstream_error" (the upstream itself failed);
    `injected` is the number of faults; `log` holds (method, path without query, kind) tuples.
    Set `enabled = False` to forward everything (setup and inspection phases).
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int,
        rates: Mapping[str, float],
        methods: Collection[str] | None = None,
        exclude_paths: Collection[str] = (),
        hold_seconds: float = 1.0,
    ) -> None:
        unknown = sorted(set(rates) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(
                f"unknown fault kind(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(FAULT_KINDS)}"
            )
        for kind, rate in rates.items():
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"rate of {kind!r} must be in [0, 1], got {rate!r}")
        if sum(float(r) for r in rates.values()) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        if hold_seconds < 0:
            raise ValueError(f"hold_seconds must be >= 0, got {hold_seconds!r}")
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("upstream must be an http://host[:port] URL")
        self.upstream = upstream
        self.seed = seed
        self.rates = {k: float(rates[k]) for k in FAULT_KINDS if float(rates.get(k, 0.0)) > 0}
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        self.exclude_paths = tuple(exclude_paths)
        self.hold_seconds = float(hold_seconds)
        self.enabled = True
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._upstream_netloc = parts.netloc
        self._upstream_path = parts.path.rstrip("/")
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stats: Counter[str] = Counter()
        self._log: list[tuple[str, str, str]] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1 (a free port) and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end every open client connection and free the port. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for sock in open_connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` of the running proxy."""
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- observation --------------------------------------------------------------------

    @property
    def stats(self) -> Counter[str]:
        """A copy: injected faults by kind, plus "forwarded" (and "upstream_error")."""
        with self._lock:
            return Counter(self._stats)

    @property
    def injected(self) -> int:
        """How many faults were injected in all."""
        with self._lock:
            return sum(n for kind, n in self._stats.items() if kind in FAULT_KINDS)

    @property
    def log(self) -> list[tuple[str, str, str]]:
        """(method, path without its query string, kind or "forwarded") per request, in order."""
        with self._lock:
            return list(self._log)

    def reset_stats(self) -> None:
        """Forget the counts and the log (the fault sequence goes on)."""
        with self._lock:
            self._stats.clear()
            self._log.clear()

    # ---- used by the handler ------------------------------------------------------------

    def _eligible(self, method: str, path: str) -> bool:
        if not self.enabled or not self.rates:
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return not any(path.startswith(prefix) for prefix in self.exclude_paths)

    def _draw(self, method: str, path: str) -> str | None:
        """The fault for one request, or None. One seeded draw per eligible request."""
        if not self._eligible(method, path):
            return None
        with self._lock:
            u = self._rng.random()
        cumulative = 0.0
        for kind, rate in self.rates.items():
            cumulative += rate
            if u < cumulative:
                return kind
        return None

    def _record(self, method: str, path: str, kind: str) -> None:
        with self._lock:
            self._stats[kind] += 1
            self._log.append((method, path.split("?", 1)[0], kind))

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def _upstream_connection(self) -> http.client.HTTPConnection:
        # One upstream connection per request: a reused one that the upstream closed while idle
        # could not be told apart from a request that failed after its side effect.
        return http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=_UPSTREAM_TIMEOUT
        )
