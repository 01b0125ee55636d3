"""`gladly-pipeline sandbox`: serves on loopback, prints what to paste, stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from gladly_sandbox.serve import main as serve_main
from tests._console import says

runner = CliRunner()


def _read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """Read the printed lines up to "Press Ctrl-C" and pick out the exported settings."""
    assert process.stdout is not None
    exported: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exported[name] = value
        if line.startswith("Press Ctrl-C"):
            return exported
    raise AssertionError(f"the sandbox exited early with {process.wait()}")


@pytest.fixture
def launched(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, *request.param, "--port", "0", "--customers", "15", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("launched", "stop_signal"),
    [
        (["-m", "gladly_pipeline.cli", "sandbox"], signal.SIGINT),
        (["-m", "gladly_sandbox"], signal.SIGTERM),
    ],
    indirect=["launched"],
    ids=["cli-ctrl-c", "module-sigterm"],
)
def test_sandbox_command_serves_prints_settings_and_stops(
    launched: subprocess.Popen[str], stop_signal: signal.Signals
) -> None:
    exported = _read_banner(launched)
    assert set(exported) == {"GLADLY_BASE_URL", "GLADLY_USER", "GLADLY_API_TOKEN"}
    base_url = exported["GLADLY_BASE_URL"]
    assert base_url.startswith("http://127.0.0.1:")
    answer = requests.get(
        f"{base_url}/api/v1/agents",
        auth=(exported["GLADLY_USER"], exported["GLADLY_API_TOKEN"]),
        timeout=10,
    )
    assert answer.status_code == 200
    launched.send_signal(stop_signal)
    assert launched.wait(timeout=30) == 0
    assert launched.stdout is not None
    assert "stopped" in launched.stdout.read()


def test_non_loopback_host_is_refused() -> None:
    result = runner.invoke(app, ["sandbox", "--host", "0.0.0.0", "--port", "0"])  # noqa: S104
    assert result.exit_code == 2
    assert says(result.output, "loopback")


def test_help_lists_the_sandbox_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert says(result.output, "sandbox")


def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = runner.invoke(app, ["sandbox", "--port", port, "--customers", "5"])
    assert result.exit_code == 2
    assert says(result.output, "Cannot start the sandbox")


@pytest.mark.parametrize(
    "launched",
    [
        ["-m", "gladly_sandbox", "--other-integrations", "3"],
        ["-m", "gladly_pipeline.cli", "sandbox", "--other-integrations", "3"],
    ],
    indirect=True,
    ids=["module", "cli"],
)
def test_other_integrations_flag_sets_the_switch(launched: subprocess.Popen[str]) -> None:
    base_url = _read_banner(launched)["GLADLY_BASE_URL"]
    settings = requests.get(f"{base_url}/_sandbox/settings", timeout=10).json()
    assert settings["other_integrations_per_second"] == 3.0
    assert settings["rate_limit_per_second"] == 10.0
    launched.send_signal(signal.SIGTERM)
    assert launched.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("flags", "phrase"),
    [
        (["--other-integrations", "10"], "must be below rate_limit_per_second"),
        (["--other-integrations", "-1"], "must be a number >= 0"),
        (["--rate-limit", "0", "--other-integrations", "3"], "--rate-limit 0 switches it off"),
    ],
)
def test_bad_other_integrations_flag_is_a_usage_error(
    flags: list[str], phrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve_main(["--port", "0", "--customers", "5", *flags]) == 2
    assert says(capsys.readouterr().err, phrase)
    result = runner.invoke(app, ["sandbox", "--port", "0", "--customers", "5", *flags])
    assert result.exit_code == 2
    assert says(result.output, phrase)
