"""The rooms stay true: Prefect only in flows/, Parquet written by the archive and audit log."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOMS = (
    "gladly_client",
    "gladly_sandbox",
    "ingest",
    "gladly_archive",
    "audit_log",
    "retention_policies",
    "erasure",
    "evidence",
    "flows",
    "gladly_pipeline",
)
PARQUET_WRITERS = ("gladly_archive", "audit_log")
# What writes Parquet: pyarrow's writers, pandas/polars' and DuckDB's COPY … (FORMAT PARQUET).
_WRITE_CALLS = {"write_table", "ParquetWriter", "write_dataset", "to_parquet", "write_parquet"}


def _modules(room: str) -> list[Path]:
    return sorted((REPO / room).rglob("*.py"))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _imports_prefect(path: Path) -> bool:
    return any(
        n == "prefect" or n.startswith("prefect.") for n in _imported(ast.parse(path.read_text()))
    )


def _parquet_writes(path: Path) -> list[tuple[int, str]]:
    """Each place in a module that writes Parquet: (line, what)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in _WRITE_CALLS:
            name = node.attr
        elif isinstance(node, ast.Name) and node.id in _WRITE_CALLS:
            name = node.id
        elif isinstance(node, ast.alias) and node.name in _WRITE_CALLS:
            name = node.name
        elif isinstance(node, ast.Constant) and "FORMAT PARQUET" in str(node.value).upper():
            name = "COPY … (FORMAT PARQUET)"
        if name is not None:
            found.append((getattr(node, "lineno", 0), name))
    return found


def test_every_room_exists_as_a_package() -> None:
    for room in ROOMS:
        assert (REPO / room / "__init__.py").is_file(), room
        assert (REPO / room / "py.typed").is_file(), room


def test_every_flows_module_imports_prefect() -> None:
    """flows/ is for Prefect wiring only: a module there without Prefect belongs in another room."""
    modules = [p for p in _modules("flows") if p.name != "__init__.py"]
    assert modules
    without = [str(p.relative_to(REPO)) for p in modules if not _imports_prefect(p)]
    assert without == [], f"modules in flows/ that do not import Prefect: {without}"


def test_no_module_outside_flows_imports_prefect() -> None:
    offenders = [
        str(p.relative_to(REPO))
        for room in ROOMS
        if room != "flows"
        for p in _modules(room)
        if _imports_prefect(p)
    ]
    assert offenders == []


def test_parquet_is_written_only_by_the_archive_and_the_audit_log() -> None:
    writers = [
        hit
        for room in ROOMS
        if room not in PARQUET_WRITERS
        for p in _modules(room)
        for line, what in _parquet_writes(p)
        for hit in [f"{p.relative_to(REPO)}:{line} {what}"]
    ]
    assert writers == []


def test_the_parquet_scan_sees_each_way_of_writing(tmp_path: Path) -> None:
    """The scan above must be able to fail: each writer it looks for is found in a sample."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pyarrow.parquet as pq\n"
        "from pyarrow.parquet import ParquetWriter\n"
        "pq.write_table(t, 'x')\n"
        "ds.write_dataset(t, 'y')\n"
        "df.to_parquet('z')\n"
        "con.execute(\"COPY t TO 'f' (FORMAT PARQUET)\")\n"
    )
    found = " ".join(what for _, what in _parquet_writes(sample))
    for name in ("write_table", "ParquetWriter", "write_dataset", "to_parquet", "FORMAT PARQUET"):
        assert name in found


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(script), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy_of_the_rooms(tmp_path: Path) -> Path:
    """The packages and their contracts, copied so a test may break them."""
    for room in ROOMS:
        shutil.copytree(REPO / room, tmp_path / room, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold_on_a_copy(copy_of_the_rooms: Path) -> None:
    """The copy the next test breaks is as clean as the tree `make lint` checks."""
    untouched = _lint_imports(copy_of_the_rooms)
    assert untouched.returncode == 0, untouched.stdout[-2000:] + untouched.stderr[-2000:]
    assert "BROKEN" not in untouched.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("gladly_archive/__init__.py", "import erasure.engine", "gladly_archive imports nothing"),
        ("gladly_client/__init__.py", "import prefect", "Prefect is imported only in flows/"),
        ("ingest/__init__.py", "import retention_policies", "ingest may import"),
        ("evidence/__init__.py", "import gladly_client", "evidence may import"),
        ("flows/__init__.py", "import gladly_pipeline.cli", "flows wire the rooms"),
        ("erasure/engine.py", "import rich.progress", "Only the command line draws"),
        ("audit_log/verify.py", "import audit_log.writer", "No import cycles"),
    ],
)
def test_a_wrong_import_breaks_the_contracts(
    copy_of_the_rooms: Path, module: str, line: str, contract: str
) -> None:
    path = copy_of_the_rooms / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    broken = _lint_imports(copy_of_the_rooms)
    assert broken.returncode != 0
    flat = " ".join(broken.stdout.split())
    assert f"{contract}" in flat, flat[-2000:]
    assert "BROKEN" in flat
