"""Test-wide settings: Prefect stays quiet, offline and isolated from ~/.prefect."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Must happen before anything imports prefect. A home made here is removed when the run ends.
if "PREFECT_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="gladly-test-prefect-home-")
    os.environ["PREFECT_HOME"] = _home
    atexit.register(shutil.rmtree, _home, True)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tests never read a developer's real Gladly credentials.
# Nor their audit key, archive root or identity: a test must never touch a real archive.
for _var in (
    "GLADLY_BASE_URL",
    "GLADLY_USER",
    "GLADLY_API_TOKEN",
    "GLADLY_REQUESTS_PER_SECOND",
    "GLADLY_RATE_SHARE",
    "GLADLY_RATE_BUDGET",
    "GLADLY_RATE_BUDGET_FILE",
    "GLADLY_AUDIT_KEY",
    "GLADLY_PIPELINE_ROOT",
    "GLADLY_PIPELINE_ACTOR",
):
    os.environ.pop(_var, None)

import duckdb  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_duckdb_default_connection() -> None:
    """Each test gets a new default connection (`duckdb.sql`, `duckdb.execute`): a relation one
    test left unfetched must not make another fail, whatever order a worker runs them in."""
    duckdb.set_default_connection(duckdb.connect())
