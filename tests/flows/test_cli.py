"""The command line: settings errors are clear and exit 2; a working API answers OK."""

from __future__ import annotations

import pytest
import responses
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()
ENV = {
    "GLADLY_BASE_URL": "https://acme.gladly.com",
    "GLADLY_USER": "api@acme.example.com",
    "GLADLY_API_TOKEN": "tok-cli-secret",
}


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "check" in result.output


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
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
    assert "tok-cli-secret" not in result.output


@responses.activate
def test_check_succeeds_and_fails_with_exit_codes() -> None:
    url = "https://acme.gladly.com/api/v1/export/schedules"
    responses.get(url, json=[{"id": "s1", "frequency": "DAILY", "type": "CONVERSATIONS"}])
    ok = runner.invoke(app, ["check"], env=ENV)
    assert ok.exit_code == 0, ok.output
    assert "DAILY" in ok.output
    responses.replace(responses.GET, url, status=401)
    denied = runner.invoke(app, ["check"], env=ENV)
    assert denied.exit_code == 1
    assert "401" in denied.output
    assert "tok-cli-secret" not in denied.output
