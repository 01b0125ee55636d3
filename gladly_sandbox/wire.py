"""HTTP/1.1 on the wire: lean request parsing, request bodies, whole answers, resets."""

from __future__ import annotations

import email.utils
import os
import socket
import struct
import time
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler
from typing import Any

MAX_BODY_BYTES = 10 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 120.0  # keep-alive connections idle this long are closed
_MAX_HEADER_LINE = 65536  # the standard library's limits
_MAX_HEADERS = 100
_LINGER_ZERO = struct.pack("ii", 1, 0)

_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header value, formatted once per second rather than once per answer."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = email.utils.formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


class BadRequest(Exception):
    """A request the wire layer refuses before any route sees it (400, 413)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class WireHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 plumbing under the sandbox's request handler."""

    protocol_version = "HTTP/1.1"
    server_version = "gladly-sandbox"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    raw_requestline: bytes

    def setup(self) -> None:
        """Disable Nagle: an answer's head and body must not wait for the client's delayed ACK."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        """Parse the request line and headers; the common HTTP/1.x case without the email parser.

        The standard library parses headers with `email.parser`, which is most of a small
        request's cost; anything unusual still goes through the standard implementation.
        """
        words = self.raw_requestline.rstrip(b"\r\n").split()
        if len(words) != 3 or words[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            return super().parse_request()
        command, path, version = (w.decode("iso-8859-1") for w in words)
        self.command, self.request_version = command, version
        self.requestline = f"{command} {path} {version}"
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = HTTPMessage()
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE or len(headers) > _MAX_HEADERS:
                self.close_connection = True
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if not sep:
                self.close_connection = True
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            headers[name.strip()] = value.strip()
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        self.close_connection = version == "HTTP/1.0" or connection == "close"
        if connection == "keep-alive":
            self.close_connection = False
        expect = headers.get("Expect", "").lower()
        if expect == "100-continue" and version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs stay quiet (the stats count requests instead)."""

    def on_answer(self, status: int | str) -> None:
        """Called just before an answer (or a reset) leaves; subclasses count it."""

    def read_body(self) -> bytes:
        """The request body (Content-Length or chunked), always read so keep-alive stays in step."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise BadRequest(400, "Content-Length is not a number") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise BadRequest(413, "request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def write(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        content_length: int | None = None,
    ) -> None:
        """Write a whole answer in one send (head and body together)."""
        self.on_answer(status)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Date: {_http_date()}",
            "Server: gladly-sandbox",
        ]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if status != 204 and status >= 200:
            length = len(body) if content_length is None else content_length
            lines.append(f"Content-Length: {length}")
        if headers:
            lines.extend(f"{name}: {value}" for name, value in headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.wfile.write(body)

    def reset_connection(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), sending nothing."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            os.close(sock.detach())
        except OSError:
            pass
