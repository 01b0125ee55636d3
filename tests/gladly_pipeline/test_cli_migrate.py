"""`gladly-pipeline migrate`: a dry run unless --execute; and every command that writes refuses
an archive of the previous release in one line naming it."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gladly_archive import Archive
from gladly_archive.layout import archive_version
from gladly_archive.schemas import SCHEMA_VERSION
from gladly_pipeline.cli import app
from tests._console import says
from tests.gladly_archive.test_migrate import copy_fixture, snapshot

runner = CliRunner()
# Settings a command reads before it opens the archive (nothing listens there: the refusal
# comes first).
ENV = {
    "GLADLY_BASE_URL": "http://127.0.0.1:9",
    "GLADLY_USER": "api@example.com",
    "GLADLY_API_TOKEN": "not-a-token",
    "GLADLY_AUDIT_KEY": "cli-migrate-test-key",
    "COLUMNS": "40",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_fixture(tmp_path)


def test_a_dry_run_lists_the_changes_and_changes_nothing(root: Path) -> None:
    before = snapshot(root)
    result = runner.invoke(app, ["migrate", "--root", str(root)], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert says(result.output, "from schema version 2 to 3")
    assert says(result.output, "directories renamed")
    assert says(result.output, "items files derived again")
    assert says(result.output, "Dry run: nothing was changed")
    assert says(result.output, "--execute")
    assert snapshot(root) == before


def test_execute_migrates_and_a_second_run_has_nothing_to_do(root: Path) -> None:
    result = runner.invoke(app, ["migrate", "--root", str(root), "--execute"])
    assert result.exit_code == 0, result.output
    assert says(result.output, f"the archive is at schema version {SCHEMA_VERSION}")
    archive = Archive(root)
    assert archive_version(archive.fs, archive.root) == SCHEMA_VERSION
    after = snapshot(root)
    again = runner.invoke(app, ["migrate", "--root", str(root), "--execute"])
    assert again.exit_code == 0, again.output
    assert says(again.output, "nothing to migrate")
    assert snapshot(root) == after
    folded = runner.invoke(app, ["fold", "--root", str(root), "--through", "2025-04-20"])
    assert folded.exit_code == 0, folded.output


def test_a_root_without_an_archive_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate", "--root", str(tmp_path / "typo")])
    assert result.exit_code == 2
    assert says(result.output, "No archive at")


@pytest.mark.parametrize(
    "args",
    [
        ["export"],
        ["enrich", "--max-calls", "10"],
        ["fold"],
        ["plan", "--policies", "retention_policies/policies"],
        ["delete", "--customer-id", "XyZ0123456789abcdefABC"],
        ["sweep"],
    ],
    ids=lambda args: args[0],
)
def test_writers_refuse_the_previous_release_archive_in_one_line(
    root: Path, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the shipped policies
    before = snapshot(root)
    result = runner.invoke(app, [args[0], "--root", str(root), *args[1:]], env=ENV)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, however narrow the terminal
    assert f"gladly-pipeline migrate --root {shlex.quote(str(root))}" in lines[0]
    assert "earlier release" in lines[0]
    assert snapshot(root) == before
