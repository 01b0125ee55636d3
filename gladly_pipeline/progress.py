"""Progress bars for the long commands: transient, on stderr, fed by a plain callback."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

__all__ = ["PROGRESS_ENV", "ProgressCallback", "progress_bars"]

# What the libraries call (ingest, retention_policies, erasure, gladly_archive): a phase name
# (never anything personal), how much of it is done, and of how much.
ProgressCallback = Callable[[str, int, int], None]

# auto (the default): bars only when stderr is a terminal; always: draw them anyway (a terminal
# is assumed: tests, `script` recordings); never: no bars at all.
PROGRESS_ENV = "GLADLY_PIPELINE_PROGRESS"


class _Count(ProgressColumn):
    """`done/total`, as sizes for phases that count bytes."""

    def render(self, task: Task) -> Text:
        done, total = int(task.completed), int(task.total or 0)
        if task.fields.get("in_bytes"):
            return Text(f"{decimal(done)}/{decimal(total)}", style="progress.download")
        return Text(f"{done}/{total}", style="progress.download")


def _console_for(console: Console) -> Console | None:
    """The console to draw on, or None when nobody would see the bars."""
    mode = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if mode == "never":
        return None
    if mode == "always":
        return Console(file=console.file, force_terminal=True)
    if not console.is_terminal or console.is_dumb_terminal:
        # A pipe, a file, cron, a test runner: transient bars would print nothing there anyway;
        # the libraries then skip even computing their progress.
        return None
    return console


@contextmanager
def progress_bars(
    console: Console, *, in_bytes: Callable[[str], bool] | None = None
) -> Iterator[ProgressCallback | None]:
    """A bar per phase on `console` while the block runs, erased when it ends.

    Yields the callback to hand to the library (None when `console` is not a terminal, or
    GLADLY_PIPELINE_PROGRESS=never: the library then reports nothing). A phase gets its bar at
    its first report with something to do. Phases `in_bytes` names count one download's bytes:
    their bar goes once complete, or once the next download starts (a failed one stops short)."""
    target = _console_for(console)
    if target is None:
        yield None
        return
    counts_bytes = in_bytes or (lambda _phase: False)
    bars = Progress(
        TextColumn(
            "{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)
        ),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        _Count(),
        TimeRemainingColumn(compact=True),
        console=target,
        transient=True,
        expand=True,
    )
    tasks: dict[str, TaskID] = {}
    download: list[str] = []  # the bytes phase on screen, if any
    lock = threading.Lock()  # the libraries may report from worker threads

    def drop(phase: str) -> None:
        bars.remove_task(tasks.pop(phase))
        download.remove(phase)

    def progress(phase: str, done: int, total: int) -> None:
        with lock:
            task = tasks.get(phase)
            in_bytes = counts_bytes(phase)
            if task is None:
                if total <= 0:
                    return  # nothing to do: no bar
                if in_bytes:
                    for other in list(download):
                        drop(other)
                    download.append(phase)
                task = bars.add_task(phase, total=total, completed=done, in_bytes=in_bytes)
                tasks[phase] = task
                # Drawn now, so even a phase shorter than a refresh tick is seen.
                bars.refresh()
            else:
                bars.update(task, completed=done, total=total)
            if in_bytes and done >= total:
                drop(phase)

    with bars:
        yield progress
