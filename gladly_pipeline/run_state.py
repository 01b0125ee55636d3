"""What the running command is doing, for the words printed when it stops early."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RunState", "current_run", "start_run"]

NOTHING_LOST = "nothing half-done is lost: run the same command again to resume"


@dataclass
class RunState:
    """The archive root the command uses, and what it has finished and is in the middle of.

    Commands fill it in as they go; the root command reads it when a failure or Ctrl-C stops
    the run. Counts and ids only: nothing personal is ever put here.
    """

    root: str | None = None  # the resolved archive root, once --root has been checked
    counted: str = ""  # what `done` counts, e.g. "export job(s) archived by this run"
    done: int = 0
    # Where the truth is on disk (the archive's manifests), how to count `done` from it instead.
    recount: Callable[[], int] | None = None
    current: str = ""  # what a stop cuts off, e.g. "export job 7f3a… was cut off …"
    # Reads from disk (the audit log) what a stop cut off, instead of `current`; "" for nothing.
    cut_off: Callable[[], str] | None = None
    resume: str = ""  # what the next run of the same command does about it

    def interrupted_lines(self) -> list[str]:
        """One short block for Ctrl-C: what was finished and cut off, and how to resume."""
        done = self.done
        if self.recount is not None:
            with contextlib.suppress(Exception):  # the count is a courtesy: never fail on it
                done = self.recount()
        current = self.current
        if self.cut_off is not None:
            with contextlib.suppress(Exception):  # as for the count: never fail on it
                current = self.cut_off()
        said = [f"{done} {self.counted}"] if self.counted else []
        said += [current] if current else []
        if not said:
            return [f"Interrupted; {NOTHING_LOST}."]
        resume = f" ({self.resume})" if self.resume else ""
        return [
            f"Interrupted: {'; '.join(said)}.",
            f"{NOTHING_LOST[0].upper()}{NOTHING_LOST[1:]}{resume}.",
        ]


class _Runs:
    """The state of the one command this process runs (a fresh one per invocation)."""

    state = RunState()


def start_run() -> RunState:
    """A fresh state for the command about to run."""
    _Runs.state = RunState()
    return _Runs.state


def current_run() -> RunState:
    """The running command's state."""
    return _Runs.state
