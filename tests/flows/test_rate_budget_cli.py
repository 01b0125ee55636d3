"""`gladly-pipeline rate-budget create|show`, and commands paced by GLADLY_RATE_BUDGET=prefect."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from flows.rate_limits import limit_names
from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from tests._console import says
from tests.flows._limits import delete_limits

runner = CliRunner()
CREATE = "gladly-pipeline rate-budget create"


def test_create_and_show_the_limits_on_a_narrow_terminal(org: str) -> None:
    env = {"GLADLY_BASE_URL": org, "COLUMNS": "40"}
    names = list(limit_names(org).values())
    missing = runner.invoke(app, ["rate-budget", "show"], env=env)
    assert missing.exit_code == 3, missing.output  # needs a look
    assert [f"{n}: missing" for n in names] == missing.output.splitlines()[1:6]
    assert says(missing.output, CREATE)

    created = runner.invoke(app, ["rate-budget", "create"], env=env)
    assert created.exit_code == 0, created.output
    assert "8 requests/s per method, shared by every worker" in created.output
    assert [f"{n}: created" for n in names] == created.output.splitlines()[2:]
    again = runner.invoke(app, ["rate-budget", "create"], env=env)
    assert [f"{n}: unchanged" for n in names] == again.output.splitlines()[2:]
    halved = runner.invoke(app, ["rate-budget", "create"], env={**env, "GLADLY_RATE_SHARE": "0.5"})
    assert [f"{n}: updated" for n in names] == halved.output.splitlines()[2:]

    shown = runner.invoke(app, ["rate-budget", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"rate budget of {org}"
    assert lines[1:] == [f"{n}: ready, 5 requests/s, burst 2" for n in names]
    assert all(len(line) <= 60 for line in lines[1:])


def test_the_commands_need_a_prefect_api_and_an_organisation() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        for command in ("create", "show"):
            result = runner.invoke(
                app, ["rate-budget", command], env={"GLADLY_BASE_URL": "https://a.gladly.com"}
            )
            assert result.exit_code == 78, result.output
            assert says(result.output, "no Prefect API is configured: set PREFECT_API_URL")
            assert not says(result.output, "GLADLY_RATE_BUDGET")


def test_the_command_names_the_base_url_it_lacks(prefect_api: None) -> None:
    result = runner.invoke(app, ["rate-budget", "show"], env={"GLADLY_BASE_URL": ""})
    assert result.exit_code == 78, result.output
    assert says(result.output, "set GLADLY_BASE_URL or save the Secret block gladly-base-url")


def test_a_command_paced_by_prefect_sends_nothing_until_the_limits_exist(
    prefect_api: None,
) -> None:
    from prefect.client.orchestration import get_client

    with Sandbox(seed=9, customers=5, rate_limit_per_second=None) as sb:
        env = {
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_RATE_BUDGET": "prefect",
        }
        try:
            refused = runner.invoke(app, ["check"], env=env)
            assert refused.exit_code == 78, refused.output
            assert says(refused.output, CREATE)
            assert sb.stats()["total"] == 0  # fail closed: not one request unpaced

            assert runner.invoke(app, ["rate-budget", "create"], env=env).exit_code == 0
            checked = runner.invoke(app, ["check"], env=env)
            assert checked.exit_code == 0, checked.output
            assert sb.stats()["total"] == 1
            with get_client(sync_client=True) as client:
                get = client.read_global_concurrency_limit_by_name(limit_names(sb.base_url)["GET"])
            assert get.active_slots > 0  # the request took its slot from Prefect's limit
        finally:
            delete_limits(sb.base_url)


def test_the_command_line_imports_prefect_only_for_the_prefect_budget() -> None:
    probe = "import sys, gladly_pipeline.cli; print('prefect' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"
