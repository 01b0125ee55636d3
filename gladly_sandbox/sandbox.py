"""`Sandbox`: a seeded Gladly organisation served on loopback, in a thread or a child process."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from gladly_sandbox.clock import SandboxClock
from gladly_sandbox.control import (
    INBOX_PREFIX,
    MERGES_PATH,
    ORG_SWITCHES,
    apply_changes,
    check_org_switch,
    reset_stats,
    stats_json,
)
from gladly_sandbox.exports import ExportService, ExportSpec
from gladly_sandbox.handler import SandboxRequestHandler
from gladly_sandbox.options import is_loopback_host, split_options, to_control_json
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.server import SandboxServer
from gladly_sandbox.settings import (
    ROLE_COMPLIANCE_ADMIN,
    SandboxUser,
    ServerSettings,
    default_users,
    setting_names,
)
from gladly_sandbox.store import Organisation

POLL_INTERVAL_SECONDS = 0.05  # how quickly serve_forever notices a stop
PROCESS_START_TIMEOUT_SECONDS = 120.0  # generating a large organisation takes a while


class Sandbox:
    """A local Gladly organisation on a loopback port; `with Sandbox() as sb:` starts and stops it.

    Thread mode (default) serves from a background thread and exposes `org`, `exports`, `clock`,
    `settings` and `server` for tests. `process=True` serves from a spawned child process (a real
    second interpreter, e.g. for benchmarks); then only the HTTP control surface is shared.
    """

    def __init__(
        self,
        seed: int = 42,
        customers: int = 2000,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        frozen_clock: bool = False,
        process: bool = False,
        files_dir: Path | None = None,
        **options: Any,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(
                f"host {host!r} is not a loopback address; the sandbox has a well-known token "
                "and must only listen on 127.0.0.1, ::1 or localhost"
            )
        org_options, export_options, server_options, switches = split_options(options)
        self._init_args: dict[str, Any] = {
            "seed": seed,
            "customers": customers,
            "host": host,
            "port": port,
            "now": now,
            "frozen_clock": frozen_clock,
            "files_dir": files_dir,
            **options,
        }
        self.org_spec = OrgSpec(seed=seed, customers=customers, now=now, **org_options)
        self.export_spec = ExportSpec(seed=seed, **export_options)
        server_options.setdefault("users", default_users(seed))
        server_options.setdefault("fault_seed", seed)
        self._settings = ServerSettings(**server_options)
        self._switches = {name: check_org_switch(name, v) for name, v in switches.items()}
        admin = [u for u in self._settings.users if u.has(ROLE_COMPLIANCE_ADMIN)]
        first = (admin or self._settings.users or [SandboxUser("nobody@sandbox.example", "-")])[0]
        self.user: str = first.email
        self.api_token: str = first.token
        self._host = host
        self._port = port
        self._now = now
        self._frozen = frozen_clock
        self._process = process
        self._files_dir = files_dir
        self._state = "new"
        self._base_url: str | None = None
        self._lock = threading.Lock()
        # thread mode
        self._org: Organisation | None = None
        self._exports: ExportService | None = None
        self._clock: SandboxClock | None = None
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._temp_dir: Path | None = None
        # process mode
        self._child: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Sandbox:
        """Build the organisation and serve it; returns self once requests are answered."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"this Sandbox was already started (it is {self._state})")
            if self._process:
                self._start_process()
            else:
                self._start_thread()
            self._state = "running"
        return self

    def _start_thread(self) -> None:
        start = self._now or datetime.now(UTC)
        clock = SandboxClock(start, frozen=self._frozen)
        org = Organisation(self.org_spec, clock)
        for name, value in self._switches.items():
            setattr(org, name, value)
        if self._files_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="gladly-sandbox-"))
        files_dir = self._files_dir or self._temp_dir
        assert files_dir is not None
        try:
            exports = ExportService(org, clock, self.export_spec, files_dir)
            server = SandboxServer(
                (self._host, self._port),
                SandboxRequestHandler,
                org=org,
                exports=exports,
                clock=clock,
                settings=self._settings,
            )
        except BaseException:
            self._remove_temp_dir()
            raise
        self._org, self._exports, self._clock, self._server = org, exports, clock, server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name="gladly-sandbox-server",
            daemon=True,
        )
        self._thread.start()
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._base_url = f"http://{host}:{server.port}"

    def _start_process(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_child_main, args=(child, self._init_args), name="gladly-sandbox", daemon=True
        )
        process.start()
        child.close()
        self._child, self._pipe = process, parent
        try:
            if not parent.poll(PROCESS_START_TIMEOUT_SECONDS):
                raise RuntimeError("the sandbox child process did not start in time")
            try:
                message = parent.recv()
            except EOFError:
                process.join(5)
                raise RuntimeError(
                    f"the sandbox child process exited while starting (exit code "
                    f"{process.exitcode}); with process=True the main module needs an "
                    "`if __name__ == '__main__':` guard"
                ) from None
            if message[0] != "ready":
                raise RuntimeError(f"the sandbox child process failed to start: {message[1]}")
            self._base_url = str(message[1])
            self._wait_healthy()
        except BaseException:
            self._stop_process()
            raise

    def _wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._control("GET", "/_sandbox/health")
                return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox child process does not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving, end connections and threads, remove the temporary files. Idempotent."""
        with self._lock:
            if self._state == "running":
                if self._process:
                    self._stop_process()
                else:
                    self._stop_thread()
            self._state = "stopped"

    def _stop_thread(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close()
        if self._thread is not None:
            self._thread.join(10)
        self._remove_temp_dir()

    def _stop_process(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(OSError):  # the child is already gone
                self._pipe.send("stop")
        if self._child is not None:
            self._child.join(15)
            if self._child.is_alive():
                self._child.terminate()
                self._child.join(5)
        if self._pipe is not None:
            self._pipe.close()

    def _remove_temp_dir(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # --- attributes ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (clients append /api/v1)."""
        if self._base_url is None:
            raise RuntimeError("the sandbox is not started yet; call start() or use `with`")
        return self._base_url

    @property
    def files_dir(self) -> Path:
        """Where export files are rendered (a temporary directory unless `files_dir` was given)."""
        directory = self._files_dir or self._temp_dir
        path: Path = self._thread_only("files_dir", directory)
        return path

    def _thread_only(self, name: str, value: Any) -> Any:
        if self._process:
            raise RuntimeError(
                f"Sandbox.{name} is only available in thread mode; this sandbox runs in a child "
                "process (process=True) — use stats(), configure(), advance() or /_sandbox/"
            )
        if value is None:
            raise RuntimeError(f"Sandbox.{name} exists once the sandbox is started")
        return value

    @property
    def org(self) -> Organisation:
        """The organisation's data and rules (thread mode only)."""
        org: Organisation = self._thread_only("org", self._org)
        return org

    @property
    def exports(self) -> ExportService:
        """The export schedule and jobs (thread mode only)."""
        exports: ExportService = self._thread_only("exports", self._exports)
        return exports

    @property
    def clock(self) -> SandboxClock:
        """The organisation's clock (thread mode only)."""
        clock: SandboxClock = self._thread_only("clock", self._clock)
        return clock

    @property
    def settings(self) -> ServerSettings:
        """The live server settings (thread mode only)."""
        settings: ServerSettings = self._thread_only("settings", self._settings)
        return settings

    @property
    def server(self) -> SandboxServer:
        """The HTTP server, for tests that inject a sleep or a rate-limit clock (thread mode)."""
        server: SandboxServer = self._thread_only("server", self._server)
        return server

    # --- operations ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Request counts by route template, method and status, injected faults, and the other
        integrations' served and refused requests."""
        if self._process:
            data: dict[str, Any] = self._control("GET", "/_sandbox/stats")
            return data
        return stats_json(self.server)

    def reset_stats(self) -> None:
        """Zero the request counts (and the other integrations' counts)."""
        if self._process:
            self._control("POST", "/_sandbox/stats/reset")
        else:
            reset_stats(self.server)

    def state(self) -> dict[str, Any]:
        """Organisation and export counts plus the clock, as GET /_sandbox/state shows them."""
        data: dict[str, Any] = self._control("GET", "/_sandbox/state")
        return data

    def configure(self, **changes: Any) -> None:
        """Change ServerSettings fields or Organisation switches (contact_again, …) while running.

        Unknown names raise TypeError; bad values raise ValueError naming the field.
        """
        if not self._process:
            apply_changes(self.server, changes)
            return
        valid = (*setting_names(), *ORG_SWITCHES)
        unknown = sorted(set(changes) - set(valid))
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        self._control("PATCH", "/_sandbox/settings", to_control_json(changes))

    def advance(self, **timedelta_kwargs: float) -> None:
        """Move the organisation's clock forward, e.g. `advance(days=15)`."""
        delta = timedelta(**timedelta_kwargs)
        if not self._process:
            self.clock.advance(delta)
            # Jobs due in the jump render now, so a later direct `org` change can't leak into them.
            self.exports.refresh()
            return
        self._control("POST", "/_sandbox/clock", {"advance_seconds": delta.total_seconds()})

    def rename_inbox(self, inbox_id: str, name: str) -> dict[str, Any]:
        """Rename an inbox, as an admin does in Gladly's UI; returns it as GET /inboxes lists it.

        Raises KeyError for an unknown inbox id and ValueError for a blank name.
        """
        if not self._process:
            return self.org.rename_inbox(inbox_id, name)
        path = INBOX_PREFIX + quote(inbox_id, safe="")
        try:
            data: dict[str, Any] = self._control("PATCH", path, {"name": name})
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                exc.close()
                raise KeyError(inbox_id) from None
            raise
        return data

    def merge_customers(self, source: str, destination: str) -> dict[str, Any]:
        """Merge customer `source` into `destination`, as an agent does in Gladly's UI.

        Returns the `CUSTOMER/MERGED` event's content. Raises ValueError for an unknown,
        deleted or merged-away id, or when both ids are the same.
        """
        if not self._process:
            self.exports.refresh()  # jobs that came due render before the data changes
            return self.org.merge_customers(source, destination)
        data: dict[str, Any] = self._control(
            "POST", MERGES_PATH, {"source": source, "destination": destination}
        )
        return data

    def refill(
        self,
        customer_id: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        external_id: str | None = None,
        contact: bool = False,
    ) -> dict[str, Any]:
        """A lookup adaptor fills one detail back into the profile (exactly one of email,
        phone, external_id); with `contact` the person writes in too. Goes through the
        control route POST /_sandbox/customers/<id>/refill; returns the profile as GET shows
        it. ValueError for a 400 (the server's detail), HTTPError for 404 or 409."""
        given = {"email": email, "phone": phone, "externalCustomerId": external_id}
        body: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        body["contact"] = contact
        path = f"/_sandbox/customers/{quote(customer_id, safe='')}/refill"
        data: dict[str, Any] = self._control("POST", path, body)
        return data

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control surface; a 400 becomes ValueError with the server's detail."""
        data = None if body is None else json.dumps(body).encode()
        # The URL is our own loopback base URL, never user input.
        request = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            if exc.code == 400:
                raise ValueError(detail) from None
            raise
        return json.loads(raw) if raw else None


def _child_main(pipe: Connection, init_args: dict[str, Any]) -> None:
    """Entry point of the `process=True` child: serve until the parent says stop (or dies)."""
    try:
        sandbox = Sandbox(**init_args).start()
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        pipe.send(("ready", sandbox.base_url))
        with contextlib.suppress(EOFError):  # the parent went away: stop as well
            pipe.recv()
    finally:
        sandbox.stop()
