"""Test-wide settings: Prefect stays quiet, offline and isolated from ~/.prefect."""

from __future__ import annotations

import os
import tempfile

# Must happen before anything imports prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="gladly-test-prefect-home-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tests never read a developer's real Gladly credentials.
for _var in ("GLADLY_BASE_URL", "GLADLY_USER", "GLADLY_API_TOKEN", "GLADLY_REQUESTS_PER_SECOND"):
    os.environ.pop(_var, None)
