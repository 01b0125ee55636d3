"""`gladly-pipeline demo` does the whole job and leaves nothing running."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.integration


def test_the_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--customers", "120"])
    assert result.exit_code == 0, result.output
    for words in ("APPROVES plan", "Audit chain holds", "Try a query", "evidence pack"):
        assert words in result.output
    assert "deleted" in result.output
    assert "redacted" in result.output
    assert (out / "archive" / "_audit" / "runs").is_dir()
    assert any((out / "archive" / "_evidence").rglob("report.html"))
    assert any((out / "archive" / "tombstones").rglob("*.parquet"))
    # The sandbox's server thread and every worker thread are gone.
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []
