"""`prefect deploy` creates the rate budget's limits (prefect.yaml's build step)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.rate_limits import RateBudgetError, describe_limits, limit_names

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(prefect_api: None) -> Iterator[str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    base_url = f"https://org-{uuid.uuid4().hex[:10]}.gladly.com"
    yield base_url
    with get_client(sync_client=True) as client:
        for name in limit_names(base_url).values():
            with contextlib.suppress(ObjectNotFound):
                client.delete_global_concurrency_limit_by_name(name)


def test_prefect_yaml_builds_the_limits_before_the_deployments() -> None:
    from prefect.utilities.importtools import import_object

    from flows.deploy_steps import create_rate_limits

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert spec["build"] == [{"flows.deploy_steps.create_rate_limits": {}}]
    assert import_object("flows.deploy_steps.create_rate_limits") is create_rate_limits


def test_the_step_creates_the_limits_of_the_organisation_in_the_environment(
    org: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.deploy_steps import create_rate_limits

    monkeypatch.setenv("GLADLY_BASE_URL", org)
    monkeypatch.setenv("GLADLY_RATE_SHARE", "0.6")
    prefix = limit_names(org)["GET"].removesuffix("-get")
    assert create_rate_limits() == {"rate_budget": f"{prefix}-*"}
    assert capsys.readouterr().out == (
        f"rate budget: Prefect limits {prefix}-* created (6 requests/s per method)\n"
    )
    assert [(s.state, s.requests_per_second) for s in describe_limits(org)] == [("ready", 6.0)] * 5
    create_rate_limits()  # a second deployment of the same file: nothing changes
    assert "unchanged" in capsys.readouterr().out


def test_the_step_reads_the_base_url_block_and_refuses_without_one(
    org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    from flows.deploy_steps import create_rate_limits

    monkeypatch.delenv("GLADLY_BASE_URL", raising=False)
    name = f"gladly-base-url-{uuid.uuid4().hex[:6]}"
    monkeypatch.setattr("flows.deploy_steps.BLOCKS", {"GLADLY_BASE_URL": name})
    with pytest.raises(
        RateBudgetError, match=f"set GLADLY_BASE_URL or save the Secret block {name}"
    ):
        create_rate_limits()
    Secret(value=org).save(name)
    create_rate_limits()
    assert {s.state for s in describe_limits(org)} == {"ready"}
