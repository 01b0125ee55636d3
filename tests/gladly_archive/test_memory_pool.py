"""Arrow's allocator in a process that loads pyarrow through the archive (memory_pool.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gladly_archive.memory_pool import POOL_VARIABLE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="jemalloc is chosen on Linux")

_SHOW = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _pool(code: str, **extra: str) -> str:
    """The backend a fresh interpreter ends with after ``code`` (its own environment)."""
    env = {k: v for k, v in os.environ.items() if k != POOL_VARIABLE} | extra
    done = subprocess.run(
        [sys.executable, "-c", f"{code}; {_SHOW}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "entry",
    ["gladly_archive", "gladly_pipeline.cli", "flows.export_transcripts", "flows.apply_retention"],
)
def test_the_cli_and_the_flows_allocate_with_jemalloc(entry: str) -> None:
    # The CLI loads audit_log (which reads Parquet itself) before the archive: the entry
    # packages choose the pool first.
    assert _pool(f"import {entry}") == "jemalloc"


def test_the_users_own_choice_of_pool_wins() -> None:
    assert _pool("import gladly_archive", **{POOL_VARIABLE: "system"}) == "system"


def test_a_process_that_loaded_pyarrow_first_keeps_its_pool() -> None:
    # Too late to choose: Arrow read the variable when pyarrow loaded; nothing is set
    # that would mislead a later reader of the environment either.
    code = f"import pyarrow, os, gladly_archive; assert os.environ.get({POOL_VARIABLE!r}) is None"
    assert _pool(code) == _pool("import pyarrow")
