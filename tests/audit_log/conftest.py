"""Fixtures of the audit log's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit_log._audit import audit_log, intent


@pytest.fixture
def sealed_log(tmp_path: Path) -> Path:
    """Three sealed runs of four events each (every outcome "deleted")."""
    log = audit_log(tmp_path)
    for r in (1, 2, 3):
        with log.start_run(f"run{r}", actor="alice") as run:
            for n in range(4):
                run.append(**intent(n), outcome="deleted", duration_ms=1.25 * n)
    return tmp_path
