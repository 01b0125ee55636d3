"""Flow tests share one Prefect test server per session (it costs 10-15 s to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.flows._limits import delete_limits, fresh_org


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API with the 1 s heartbeat join disabled (see prefect-notes)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def org(prefect_api: None) -> Iterator[str]:
    """An organisation of its own, whose rate limits are removed afterwards."""
    base_url = fresh_org()
    yield base_url
    delete_limits(base_url)
