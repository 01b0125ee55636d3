"""The HTTP server: a threading HTTP/1.1 server on loopback that tracks and ends its connections."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from gladly_sandbox.control import RequestStats
from gladly_sandbox.faults import FaultInjector
from gladly_sandbox.ratelimit import RateLimiter
from gladly_sandbox.settings import ServerSettings

if TYPE_CHECKING:
    from gladly_sandbox.clock import SandboxClock
    from gladly_sandbox.exports import ExportService
    from gladly_sandbox.store import Organisation

log = logging.getLogger(__name__)


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server bound to loopback that serves one sandbox organisation."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[BaseHTTPRequestHandler],
        *,
        org: Organisation,
        exports: ExportService,
        clock: SandboxClock,
        settings: ServerSettings,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.org = org
        self.exports = exports
        self.clock = clock
        self.settings = settings
        self.ratelimiter = RateLimiter(monotonic=monotonic)
        self.faults = FaultInjector(settings.fault_seed)
        self.stats = RequestStats()
        self._stopping = threading.Event()
        # Tests replace `sleep`; the default wakes up early when the server stops.
        self.sleep: Callable[[float], None] = sleep or self._interruptible_sleep
        self._latency_rng = random.Random(settings.fault_seed)
        self._latency_lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler_class)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow on some machines)."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return self.server_port

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def latency_seconds(self) -> float:
        """This request's artificial latency: latency_ms plus a uniform 0..jitter."""
        settings = self.settings
        delay = settings.latency_ms
        if settings.latency_jitter_ms:
            with self._latency_lock:
                delay += self._latency_rng.uniform(0.0, settings.latency_jitter_ms)
        return delay / 1000.0

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve each connection in its own daemon thread, remembered so `close` can end it."""
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="gladly-sandbox-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up are normal; anything else is logged, not printed to stderr."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, close the listening socket and every open connection, join threads."""
        self._stopping.set()
        self.server_close()
        with self._connections_lock:
            open_connections = list(self._connections.items())
        for sock, _ in open_connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in open_connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    def open_connections(self) -> int:
        """How many client connections are being served."""
        with self._connections_lock:
            return len(self._connections)
