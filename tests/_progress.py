"""A progress callback that remembers every call, and what a progress bar needs of them."""

from __future__ import annotations

import threading


class ProgressLog:
    """progress(phase, done, total), recorded in call order (thread-safe, as the engine's is)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self.calls.append((phase, done, total))

    def phases(self) -> list[str]:
        """Each phase once, in the order it was first reported."""
        return list(dict.fromkeys(phase for phase, _, _ in self.calls))

    def runs(self, phase: str) -> list[list[tuple[int, int]]]:
        """The phase's (done, total) reports, one list per time it ran from 0 to its total.

        Asserts what a bar relies on: the total stays put within a run, done never goes back,
        never passes the total, and each run ends at done == total. A phase may run again (the
        engine purges its archive before and after its targets) only once the last run ended.
        """
        runs: list[list[tuple[int, int]]] = []
        for name, done, total in self.calls:
            if name != phase:
                continue
            assert 0 <= done <= total, (phase, done, total)
            last = runs[-1][-1] if runs else None
            if last is None or (last[0] == last[1] and (done < last[0] or total != last[1])):
                runs.append([(done, total)])
                continue
            assert total == last[1], f"{phase}: total changed from {last[1]} to {total}"
            assert done >= last[0], f"{phase}: done went back from {last[0]} to {done}"
            runs[-1].append((done, total))
        assert runs, f"{phase} was never reported"
        for run in runs:
            assert run[-1][0] == run[-1][1], f"{phase} ended at {run[-1]}"
        return runs

    def final(self, phase: str) -> int:
        """The total the phase's last run reached (checked as `runs` checks it)."""
        return self.runs(phase)[-1][-1][1]
