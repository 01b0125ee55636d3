"""Run a command and take its own peak resident set and CPU time.

A child's `ru_maxrss` (from wait4 or its own getrusage) is not its own on Linux: a forked
process starts from its parent's high-water mark and keeps it across exec, so every child of a
parent that once held 700 MB reports at least 700 MB. Measured on this machine: a parent at
513 MB, a child touching 50 MB; the child's ru_maxrss said 513 MB, its VmHWM 13 MB.

So a command is started by a small trampoline (this file run as a script): a fresh interpreter
whose own mark is small forks the command, waits for it and writes its rusage to a pipe. A
process measuring itself reads VmHWM (`own_peak_mb`), which is its memory map's and starts
anew at exec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Finished", "own_peak_mb", "run_measured"]


@dataclass(frozen=True)
class Finished:
    """A command's exit code, peak RSS (MB) and CPU seconds (user + system)."""

    exit: int
    rss_mb: float
    cpu_s: float


def own_peak_mb() -> float:
    """This process's peak resident set since it was exec'd (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_measured(command: list[str], **popen: Any) -> Finished:
    """Run `command` (Popen's keyword arguments: stdout, stderr, env, ...) to its end."""
    read, write = os.pipe()
    try:
        trampoline = subprocess.Popen(
            [sys.executable, __file__, str(write), *command], pass_fds=[write], **popen
        )
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reported = pipe.read()
    if trampoline.wait() != 0 or not reported:
        raise RuntimeError(f"the measuring trampoline failed (exit {trampoline.returncode})")
    exit_code, maxrss_kib, cpu = json.loads(reported)
    return Finished(exit_code, maxrss_kib / 1024, cpu)


def _trampoline() -> None:
    fd = int(sys.argv[1])
    child = subprocess.Popen(sys.argv[2:])
    _, status, usage = os.wait4(child.pid, 0)
    usage_cpu = usage.ru_utime + usage.ru_stime
    os.write(
        fd, json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage_cpu]).encode()
    )


if __name__ == "__main__":
    _trampoline()
