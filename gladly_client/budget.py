"""One rate budget per organisation, shared by every process of ours that talks to it.

Gladly counts requests per organisation and per HTTP method, whoever sends them. Our
processes therefore draw from one pace (`gladly_client.pacing`), kept by a backend chosen
with `GLADLY_RATE_BUDGET`:

- `machine` (the default): a JSON file under a lock file (filelock) that every process of this
  machine reads and writes, so an export, an enrichment and a deletion running at once pace as
  one client;
- `process`: this process alone (tests, or a single script);
- `prefect`: Prefect global concurrency limits, for workers on several machines; built by
  `flows.rate_budget`, since only `flows/` imports Prefect.

`GLADLY_RATE_SHARE` (default 0.8) is the part of Gladly's limit we take; the rest is left to
the company's other integrations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from gladly_client.constants import (
    DEFAULT_RATE_SHARE,
    ENV_RATE_BUDGET,
    ENV_RATE_BUDGET_FILE,
    ENV_RATE_SHARE,
    ENV_REQUESTS_PER_SECOND,
    GLADLY_RATE_LIMIT_PER_SECOND,
)
from gladly_client.errors import GladlySettingsError
from gladly_client.pacing import Pace, Priority

__all__ = [
    "BUDGETS",
    "LockFilePaces",
    "RateBudget",
    "budget_kind",
    "default_budget_file",
    "rate_from_env",
]

logger = logging.getLogger(__name__)

BUDGETS = ("auto", "machine", "process", "prefect")
# A process holding the budget's lock does so for a read and a write; this long means stuck.
LOCK_TIMEOUT_SECONDS = 30.0
# The file's monotonic times are void after a reboot: a wall clock that moved this much more
# (or less) than the monotonic one since the last write says the machine restarted.
CLOCK_DRIFT_SECONDS = 5.0
_FORMAT = 1


class RateBudget(Protocol):
    """What the transport asks before every send and tells after every answer."""

    @property
    def configured_rate(self) -> float: ...

    @property
    def description(self) -> str: ...

    def acquire(self, method: str, priority: Priority = Priority.PROMPT) -> float: ...

    def on_response(
        self, method: str, status: int, remaining: int | None, limit: int | None = None
    ) -> None: ...

    def current_rate(self, method: str) -> float: ...


class LockFilePaces:
    """The methods' paces in a JSON file that every process of this machine shares.

    Each use holds a lock file (filelock: `flock` where there is one, so a killed process
    releases it) for one read and one write. The file holds times of the monotonic clock,
    which all processes of a machine share; a reboot is recognised and the file started anew.
    A file that cannot be read (cut short by a crash, edited) is started anew as well: the
    worst that costs is one burst that Gladly answers with 429s, which are retried.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.description = f"shared by this machine's processes ({self.path.name})"
        self._threads = threading.Lock()
        self._file_lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_SECONDS)
        self._fd: int | None = None

    @contextmanager
    def locked(self) -> Iterator[dict[str, Pace]]:
        with self._threads:
            try:
                self._file_lock.acquire()
            except Timeout:
                raise RuntimeError(
                    f"the rate budget's lock file {self.path}.lock was held for more than "
                    f"{LOCK_TIMEOUT_SECONDS:.0f} s; if no gladly-pipeline process is stuck, "
                    "delete it"
                ) from None
            try:
                fd = self._open()
                paces = self._parse(_read_all(fd))
                before = _dump(paces)
                yield paces
                if _dump(paces) != before:
                    after = self._encode(paces)
                    # In place, under the lock: a crash mid-write leaves a file the next
                    # reader cannot parse, and it starts anew (see the class docstring).
                    os.pwrite(fd, after, 0)
                    os.ftruncate(fd, len(after))
            finally:
                self._file_lock.release()

    def _open(self) -> int:
        """The data file's descriptor, reopened if the file was removed or replaced."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if self._fd is not None and current == os.fstat(self._fd).st_ino:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def _parse(self, raw: bytes) -> dict[str, Pace]:
        if not raw:
            return {}
        try:
            data = json.loads(raw)
            if data["format"] != _FORMAT or _rebooted(data["written"]):
                return {}
            return {str(k): Pace.from_json(v) for k, v in data["paces"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("rate budget file %s unreadable; starting it anew", self.path)
            return {}

    @staticmethod
    def _encode(paces: dict[str, Pace]) -> bytes:
        data: dict[str, Any] = {
            "format": _FORMAT,
            "written": {"monotonic": time.monotonic(), "wall": time.time()},
            "paces": {k: v.to_json() for k, v in paces.items()},
        }
        return json.dumps(data).encode()

    def close(self) -> None:
        """Close the data file (the lock file is only held inside `locked`)."""
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _dump(paces: dict[str, Pace]) -> str:
    return json.dumps({k: v.to_json() for k, v in paces.items()}, sort_keys=True)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def _rebooted(written: Mapping[str, float]) -> bool:
    monotonic_gone = time.monotonic() - float(written["monotonic"])
    wall_gone = time.time() - float(written["wall"])
    return monotonic_gone < 0 or abs(wall_gone - monotonic_gone) > CLOCK_DRIFT_SECONDS


def default_budget_file(base_url: str) -> Path:
    """Where this machine's processes share the budget of the organisation at `base_url`.

    A folder of the user's in the system's temporary directory, named after a digest of the
    organisation's address, so two organisations (production and a rehearsal sandbox) never
    share a budget.
    """
    folder = Path(tempfile.gettempdir()) / f"gladly-pipeline-rate-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    # Anyone may create names in the temporary directory: use the folder only if it is ours.
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise GladlySettingsError(
            f"{folder} is not a folder of this user's that only it can write; remove it, or "
            f"set {ENV_RATE_BUDGET_FILE} to a file in a folder of yours"
        )
    digest = hashlib.sha256(base_url.rstrip("/").lower().encode()).hexdigest()[:16]
    return folder / f"budget-{digest}.json"


def rate_from_env(env: Mapping[str, str]) -> float:
    """Requests per second per method: `GLADLY_REQUESTS_PER_SECOND`, else the share of 10."""
    explicit = env.get(ENV_REQUESTS_PER_SECOND)
    if explicit:
        return _number(ENV_REQUESTS_PER_SECOND, explicit, "a number of requests per second > 0")
    share = env.get(ENV_RATE_SHARE)
    if not share:
        return DEFAULT_RATE_SHARE * GLADLY_RATE_LIMIT_PER_SECOND
    value = _number(ENV_RATE_SHARE, share, "a fraction of Gladly's limit, > 0 and <= 1")
    if value > 1:
        raise GladlySettingsError(
            f"{ENV_RATE_SHARE} is {value:g}: it is a fraction of Gladly's limit, > 0 and <= 1 "
            "(0.8 leaves a fifth of the organisation's budget to its other integrations)"
        )
    return value * GLADLY_RATE_LIMIT_PER_SECOND


def budget_kind(env: Mapping[str, str]) -> str:
    """`GLADLY_RATE_BUDGET`, checked: one of BUDGETS (default `auto`)."""
    kind = env.get(ENV_RATE_BUDGET, "auto").strip().lower() or "auto"
    if kind not in BUDGETS:
        raise GladlySettingsError(
            f"{ENV_RATE_BUDGET} is {kind!r}: use one of {', '.join(BUDGETS)} "
            "(machine shares a lock file between this machine's processes; prefect uses "
            "the Prefect server's global concurrency limits)"
        )
    return kind


def budget_file_from_env(env: Mapping[str, str], base_url: str) -> Path:
    """`GLADLY_RATE_BUDGET_FILE`, or the default file for the organisation at `base_url`."""
    configured = env.get(ENV_RATE_BUDGET_FILE)
    return Path(configured) if configured else default_budget_file(base_url)


def _number(name: str, text: str, meaning: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise GladlySettingsError(f"{name} is {text!r}: it must be {meaning}")
    return value
