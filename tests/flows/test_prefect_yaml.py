"""prefect.yaml, checked offline: entry points load, parameters fit the flows, schedules parse."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((REPO / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}
DELETING = {"weekly", "ad-hoc"}
SECRETISH = ("token", "password", "secret", "audit_key", "api_key")


def _flow(entrypoint: str) -> Any:
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(str(REPO / entrypoint))


def test_the_file_is_a_valid_prefect_project() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(SPEC)
    assert {d.name for d in model.deployments} == {"hourly", "weekly", "ad-hoc"}
    [pull] = SPEC["pull"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $PWD }}"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entry_point_loads_and_parameters_fit_its_signature(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    flow = _flow(deployment["entrypoint"])
    flow.validate_parameters(deployment.get("parameters") or {})  # raises on a mismatch
    assert deployment["enforce_parameter_schema"] is True
    assert deployment["work_pool"]["name"] == "gladly-process"
    signature = inspect.signature(flow.fn)
    for parameter in [*signature.parameters, *(deployment.get("parameters") or {})]:
        assert not any(word in parameter.lower() for word in SECRETISH), parameter


def test_a_wrong_parameter_would_be_caught() -> None:
    from prefect.exceptions import ParameterTypeError, SignatureMismatchError

    flow = _flow(DEPLOYMENTS["weekly"]["entrypoint"])
    with pytest.raises(SignatureMismatchError):
        flow.validate_parameters({"dry_rnu": True})
    with pytest.raises(ParameterTypeError):
        flow.validate_parameters({"approval_timeout_hours": "soon"})


def test_schedules_parse_and_match_the_intent() -> None:
    from prefect.client.schemas.schedules import CronSchedule

    for deployment in SPEC["deployments"]:
        for schedule in deployment.get("schedules") or []:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert DEPLOYMENTS["hourly"]["schedules"][0]["cron"].split()[1] == "*"  # every hour
    assert DEPLOYMENTS["weekly"]["schedules"][0]["cron"].split()[4] != "*"  # one weekday
    assert not DEPLOYMENTS["ad-hoc"].get("schedules")


def test_every_deleting_deployment_runs_alone_and_rehearses_by_default() -> None:
    for name in DELETING:
        deployment = DEPLOYMENTS[name]
        assert deployment["concurrency_limit"] == 1
        assert deployment["parameters"]["dry_run"] is True
