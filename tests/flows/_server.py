"""A real local Prefect server and worker for the deployment tests: start, watch, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, its children with it (TERM, then KILL)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def tails(logs: list[Path]) -> str:
    """The end of each log, for an assertion message."""
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())


def serving(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> bool:
    """Copy the server's output to its log; True once Uvicorn says it is serving (the line is
    read as it is written: no polling), False if the process ends or the time runs out."""
    ready = threading.Event()

    def copy() -> None:
        assert proc.stdout is not None
        with log.open("wb") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if b"Uvicorn running on" in line:
                    ready.set()

    threading.Thread(target=copy, daemon=True).start()
    return ready.wait(timeout)
