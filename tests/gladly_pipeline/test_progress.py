"""The one progress renderer: when it draws, what each phase looks like, what it leaves out."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from gladly_pipeline.progress import PROGRESS_ENV, progress_bars

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _last_frame(drawn: str) -> str:
    """What the display showed last, before it erased itself (control sequences removed)."""
    shown = drawn[: drawn.rindex("\x1b[?25h")]
    return _CONTROL.sub("", shown[shown.rindex("\x1b[2K") + len("\x1b[2K") :])


def _terminal(out: io.StringIO) -> Console:
    return Console(file=out, force_terminal=True, width=80, color_system=None)


def test_a_bar_per_phase_downloads_in_sizes_and_gone_once_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    out = io.StringIO()
    with progress_bars(_terminal(out), in_bytes=lambda p: p.startswith("dl ")) as progress:
        assert progress is not None
        progress("jobs", 0, 2)
        progress("dl first", 500, 1000)
        progress("dl second", 10, 2000)  # the first stopped short (a failed job): replaced
        progress("dl second", 2000, 2000)
        progress("nothing to do", 0, 0)
        progress("jobs", 2, 2)
        progress("dl third", 5, 100)
        progress("purge", 1, 3)  # another kind of phase leaves the download in place
    drawn = out.getvalue()
    plain = _CONTROL.sub("", drawn)
    assert "dl first" in plain  # each phase is drawn at once, however short
    assert "10 bytes/2.0 kB" in plain
    frame = _last_frame(drawn)
    assert "jobs" in frame
    assert "2/2" in frame
    assert "dl first" not in frame
    assert "dl second" not in frame
    assert "dl third" in frame
    assert "5 bytes/100 bytes" in frame
    assert "1/3" in frame
    assert "nothing to do" not in plain
    assert drawn.endswith("\x1b[2K")  # transient: erased at the end


@pytest.mark.parametrize(("mode", "terminal"), [(None, False), ("auto", False), ("never", True)])
def test_nobody_watching_gets_no_callback_and_no_output(
    monkeypatch: pytest.MonkeyPatch, mode: str | None, terminal: bool
) -> None:
    if mode is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, mode)
    out = io.StringIO()
    console = _terminal(out) if terminal else Console(file=out, width=80)
    with progress_bars(console) as progress:
        assert progress is None
    assert out.getvalue() == ""


def test_always_draws_on_the_console_s_stream_even_when_it_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "always")
    out = io.StringIO()
    with progress_bars(Console(file=out, width=40)) as progress:
        assert progress is not None
        progress("targets", 1, 3)
    assert "targets" in _CONTROL.sub("", out.getvalue())
    assert "\x1b[?25l" in out.getvalue()
