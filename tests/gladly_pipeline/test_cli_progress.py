"""Progress bars of `export`, `plan` and `apply`: drawn on a terminal, absent from a pipe."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from gladly_pipeline.progress import PROGRESS_ENV
from gladly_sandbox import Sandbox
from tests._console import flat, says
from tests._policies import INACTIVE

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
# A live display hides the cursor while it draws; a drawn bar is coloured segments of ━ ╸ ╺.
# (Plain ━ alone proves nothing: the summary tables' heavy header lines use it too.)
_LIVE = "\x1b[?25l"
_BAR = re.compile(r"\x1b\[[0-9;]*m[━╸╺]+")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=31, customers=40, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        yield sb


def _run(
    sb: Sandbox, root: Path, progress: str | None, *args: str, color: str | None = None
) -> Result:
    env: dict[str, str | None] = {
        "GLADLY_BASE_URL": sb.base_url,
        "GLADLY_USER": sb.user,
        "GLADLY_API_TOKEN": sb.api_token,
        "GLADLY_REQUESTS_PER_SECOND": "200",
        "GLADLY_AUDIT_KEY": "cli-progress-test-key",
        "GLADLY_PIPELINE_ROOT": str(root),
        "GLADLY_PIPELINE_ACTOR": "test-admin",
        # Whatever the developer's shell says: the default run is a pipe without colour
        # overrides, the forced one a narrow colour terminal.
        PROGRESS_ENV: progress,
        "FORCE_COLOR": color,
        "TTY_COMPATIBLE": None,
        "NO_COLOR": None,
        "TERM": "xterm-256color",
        "COLUMNS": "40",
    }
    return CliRunner().invoke(app, list(args), env=env)


def _drawn(result: Result) -> bool:
    return _LIVE in result.stderr and _BAR.search(result.stderr) is not None


def _plain(result: Result) -> bool:
    """No control sequence at all: no bar, no colour, no cursor movement."""
    return "\x1b" not in result.output and not _BAR.search(result.output)


def test_export_and_apply_draw_bars_on_a_terminal_and_print_none_into_a_pipe(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The same jobs into two archives: one run as from cron, one as on a terminal.
    piped = _run(sandbox, tmp_path / "piped", None, "export")
    assert piped.exit_code == 0, piped.output
    assert _plain(piped)
    assert says(piped.stderr, "jobs archived now")
    root = tmp_path / "terminal"
    shown = _run(sandbox, root, "always", "export")
    assert shown.exit_code == 0, shown.output
    assert _drawn(shown)
    assert says(shown.stderr, "jobs archived now")  # the summary is still printed whole

    policies = tmp_path / "inactive.yaml"
    policies.write_text(INACTIVE.format(close="true"))
    planned = _run(sandbox, root, "always", "plan", "--policies", str(policies))
    assert planned.exit_code == 0, planned.output
    assert _drawn(planned)
    found = re.search(r"planhash:([0-9a-f]{64})", flat(planned.stderr))
    assert found is not None, planned.stderr
    plan_dir = next((root / "_plans").iterdir())
    apply = ("apply", str(plan_dir), "--approve", found.group(1))

    rehearsed = _run(sandbox, root, None, *apply)
    assert rehearsed.exit_code == 0, rehearsed.output
    assert _plain(rehearsed)
    assert says(rehearsed.stderr, "REHEARSAL")
    executed = _run(sandbox, root, "always", *apply, "--execute")
    assert executed.exit_code == 0, executed.output
    assert _drawn(executed)
    assert "targets" in executed.stderr
    assert "purge: " in executed.stderr  # our archive's copy, erased after the targets
    assert says(executed.stderr, "EXECUTED")


@pytest.mark.parametrize(("mode", "drawn"), [(None, True), ("never", False)])
def test_a_terminal_gets_bars_unless_told_never(
    sandbox: Sandbox, tmp_path: Path, mode: str | None, drawn: bool
) -> None:
    """FORCE_COLOR makes rich take the pipe for a terminal, as it would a real one."""
    result = _run(sandbox, tmp_path / "archive", mode, "export", color="1")
    assert result.exit_code == 0, result.output
    assert _drawn(result) is drawn
    assert says(result.stderr, "jobs archived now")
