"""`gladly-pipeline fold`: folds on demand, and refuses bad input without changing anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gladly_archive import Archive
from gladly_archive.layout import read_layout
from gladly_pipeline.cli import app
from tests._console import says
from tests.gladly_archive.test_purge import build, files, rows, tables

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    build(root)
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "archive"
    shutil.copytree(built, copy)
    return copy


def test_fold_moves_old_rows_and_reports_them(root: Path) -> None:
    before = {name: rows(t) for name, t in tables(Archive(root)).items()}
    result = runner.invoke(app, ["fold", "--root", str(root), "--through", "2025-03-04"])
    assert result.exit_code == 0, result.output
    assert says(result.output, "through 2025-03-04")
    assert says(result.output, "items")
    layout = read_layout(Archive(root).fs, str(root))
    assert layout.folded_through is not None
    assert layout.folded_through.isoformat() == "2025-03-04"
    assert (root / "items" / "folded").is_dir()
    after = {name: rows(t) for name, t in tables(Archive(root)).items()}
    del before["_index/customer_files"], after["_index/customer_files"]
    assert after == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--through", "2025-13-01"], "2025-13-01"),
        (["--through", "2025-03-04", "--buckets", "3"], "power of two"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    root: Path, args: list[str], message: str
) -> None:
    snapshot = files(root)
    result = runner.invoke(app, ["fold", "--root", str(root), *args])
    assert result.exit_code == 2
    assert says(result.output, message)
    assert files(root) == snapshot
    assert not (root / "_layout.json").exists()


def test_an_archive_of_the_earlier_layout_is_named_and_left_alone(tmp_path: Path) -> None:
    old = tmp_path / "old" / "transcripts" / "bucket=03"
    old.mkdir(parents=True)
    result = runner.invoke(app, ["fold", "--root", str(tmp_path / "old")])
    assert result.exit_code == 2
    assert says(result.output, "earlier release")
    assert says(result.output, "transcripts/bucket=03")
    assert old.is_dir()
    assert not (tmp_path / "old" / "_layout.json").exists()
