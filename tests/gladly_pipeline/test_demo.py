"""`gladly-pipeline demo` does the whole job and leaves nothing running."""

from __future__ import annotations

import shlex
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from tests._console import says

pytestmark = pytest.mark.integration


def test_the_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--customers", "120"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    # At 80 columns prose is wrapped between words; only a single path longer than a line,
    # or the command to copy, stands alone on its line, whole (the terminal folds it).
    for line in result.output.splitlines():
        whole = " " not in line.strip() or line.strip().startswith(".venv/bin/")
        assert len(line) <= 80 or whole, line
    assert says(result.output, str(out / "archive"))
    for words in ("APPROVES plan", "Audit chain holds", "Try a query", "evidence pack"):
        assert says(result.output, words)
    # The commands it offers work as printed: the query, and a conversation with a note.
    offered = [
        shlex.split(line.strip())[1:]
        for line in result.output.splitlines()
        if line.strip().startswith(".venv/bin/gladly-pipeline ")
    ]
    assert [args[0] for args in offered] == ["sql", "transcript"]
    for args in offered:
        ran = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
        assert ran.exit_code == 0, ran.output
    assert " · Note · Internal note (" in ran.output
    assert says(result.output, "deleted")
    assert says(result.output, "redacted")
    assert (out / "archive" / "_audit" / "runs").is_dir()
    assert any((out / "archive" / "_evidence").rglob("report.html"))
    assert any((out / "archive" / "tombstones").rglob("*.parquet"))
    # The sandbox's server thread and every worker thread are gone.
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []
