"""Export file downloads against a loopback server: memory stays flat, cut-short bodies retry."""

from __future__ import annotations

import hashlib
import itertools
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gladly_client import GladlyClient, IncompleteDownloadError

LINE = (
    b'{"id":"ZPu-7jwbtb6dT1vQX-gxcQ","conversationId":"ouZT1WCcewJK5TyPyBvwFg",'
    b'"customerId":"a7CGCp3DqbtOuWXdckwQeQ","timestamp":"2025-01-08T16:02:11.412Z",'
    b'"initiator":{"id":"a7CGCp3DqbtOuWXdckwQeQ","type":"CUSTOMER"},"content":{"type":'
    b'"CHAT_MESSAGE","messageType":"TEXT","sessionId":"BHJUE3Xc_8qmr9d9mUyWXA","content":'
    b'"Synthetic message text for a streaming test, padded to a realistic length."}}\n'
)


class FileServer:
    """Serves generated JSONL at any path; `plan` scripts how each successive request ends."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.size = lines * len(LINE)
        self.plan: list[str] = []  # "ok" | "short" (body shorter than Content-Length) | "reset"
        self.requests = 0
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def body_chunks(self, limit: int) -> Iterator[bytes]:
        block = LINE * 2048
        sent = 0
        while sent < limit:
            chunk = block[: min(len(block), limit - sent)]
            sent += len(chunk)
            yield chunk

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                mode = outer.plan.pop(0) if outer.plan else "ok"
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(outer.size))
                self.send_header("Ratelimit-Remaining-Second", "9")
                self.end_headers()
                limit = outer.size if mode == "ok" else outer.size // 3
                for chunk in outer.body_chunks(limit):
                    self.wfile.write(chunk)
                if mode == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                self.close_connection = True

        return Handler

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def expected_sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.body_chunks(self.size):
            digest.update(chunk)
        return digest.hexdigest()


def _client(base_url: str, tmp_path: Path, sleeps: list[float]) -> GladlyClient:
    return GladlyClient(
        base_url,
        "api@example.com",
        "tok",
        requests_per_second=1000.0,
        max_attempts=3,
        sleep=sleeps.append,
        spool_dir=tmp_path,
    )


@pytest.mark.slow
def test_streaming_200_mb_keeps_traced_memory_under_50_mb(tmp_path: Path) -> None:
    lines = (200 * 1024 * 1024) // len(LINE) + 1
    with FileServer(lines) as server:
        client = _client(server.base_url, tmp_path, [])
        tracemalloc.start()
        try:
            count = 0
            size = 0
            stream = client.exports.stream_file("job-1", "conversation_items.jsonl")
            for line in stream:
                count += 1
                size += len(line) + 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert size >= 200 * 1024 * 1024
    assert count == lines
    assert stream.bytes_read == size
    assert peak < 50 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert list(tmp_path.iterdir()) == []  # the spooled copy is gone once read


@pytest.mark.parametrize("failure", ["short", "reset"])
def test_cut_short_download_is_retried_from_the_start(tmp_path: Path, failure: str) -> None:
    sleeps: list[float] = []
    with FileServer(5000) as server:
        server.plan = [failure, failure]
        client = _client(server.base_url, tmp_path, sleeps)
        stream = client.exports.stream_file("job-1", "customers.jsonl")
        received = list(stream)
        assert server.requests == 3
        assert len(received) == 5000
        assert stream.bytes_read == server.size
        assert stream.sha256 == server.expected_sha256()
    assert [s for s in sleeps if s >= 0.01]  # it backed off between attempts


def test_download_that_never_completes_is_never_returned(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "conversation_items.jsonl"
    dest.parent.mkdir()
    with FileServer(5000) as server:
        server.plan = ["short"] * 10
        client = _client(server.base_url, tmp_path, [])
        with pytest.raises(IncompleteDownloadError) as err:
            client.exports.download_file("job-1", "conversation_items.jsonl", dest)
        assert server.requests == 3
    assert err.value.expected == server.size
    assert err.value.received < server.size
    # Neither the destination nor any partial file is left behind.
    assert list(dest.parent.iterdir()) == []


def test_download_file_renames_into_place_only_when_whole(tmp_path: Path) -> None:
    dest = tmp_path / "conversation_items.jsonl"
    with FileServer(1000) as server:
        client = _client(server.base_url, tmp_path, [])
        download = client.exports.download_file("job-1", "conversation_items.jsonl", dest)
        assert download.path == dest
        assert download.bytes_read == server.size == dest.stat().st_size
        assert download.sha256 == server.expected_sha256()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversation_items.jsonl"]


def test_download_reports_progress_and_restarts_it_on_retry(tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    # Large enough that the cut-short attempt delivers whole 1 MiB chunks before it breaks.
    with FileServer(20000) as server:
        server.plan = ["short"]
        client = _client(server.base_url, tmp_path, [])
        client.exports.download_file(
            "job-1",
            "conversation_items.jsonl",
            tmp_path / "f.jsonl",
            on_progress=lambda received, expected: seen.append((received, expected)),
        )
    assert seen[-1] == (server.size, server.size)
    received = [r for r, _ in seen]
    # The cut-short attempt reported progress, then the retry started again from the beginning.
    assert any(later < earlier for earlier, later in itertools.pairwise(received))
