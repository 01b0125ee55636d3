"""Ctrl-C a child command at a moment the sandbox says (never by the clock)."""

from __future__ import annotations

import signal
import subprocess
import threading


def interrupt_when(
    ready: threading.Event, child: subprocess.Popen[bytes], what: str, *, still_running: bool
) -> int:
    """Send SIGINT to `child` once `ready` is set (within two minutes) and return its exit
    code; `still_running` first asserts that it had not ended by itself. Killed if it hangs."""
    try:
        assert ready.wait(timeout=120), f"no {what} in two minutes"
        if still_running:
            assert child.poll() is None, "the command ended before it could be interrupted"
        child.send_signal(signal.SIGINT)
        return child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
