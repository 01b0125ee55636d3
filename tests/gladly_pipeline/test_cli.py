"""The command line: settings errors are clear and exit 78; a working API answers OK."""

from __future__ import annotations

import pytest
import responses
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from tests._console import says

runner = CliRunner()
ENV = {
    "GLADLY_BASE_URL": "https://acme.gladly.com",
    "GLADLY_USER": "api@acme.example.com",
    "GLADLY_API_TOKEN": "tok-cli-secret",
}


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert says(result.output, "check")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "GLADLY_BASE_URL"),
        ({**ENV, "GLADLY_BASE_URL": "http://acme.gladly.com"}, "plain http"),
    ],
)
def test_check_reports_configuration_errors(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    result = runner.invoke(app, ["check"], env=env)
    assert result.exit_code == 78  # configuration (EX_CONFIG)
    assert says(result.output, message)
    assert not says(result.output, "tok-cli-secret")


@responses.activate
def test_check_succeeds_and_fails_with_exit_codes() -> None:
    url = "https://acme.gladly.com/api/v1/export/schedules"
    responses.get(url, json=[{"id": "s1", "frequency": "DAILY", "type": "CONVERSATIONS"}])
    ok = runner.invoke(app, ["check"], env=ENV)
    assert ok.exit_code == 0, ok.output
    assert says(ok.output, "DAILY")
    responses.replace(responses.GET, url, status=401)
    denied = runner.invoke(app, ["check"], env=ENV)
    assert denied.exit_code == 78  # credentials refused: configuration
    assert says(denied.output, "401")
    assert says(denied.output, "check GLADLY_USER and GLADLY_API_TOKEN")
    assert not says(denied.output, "tok-cli-secret")
