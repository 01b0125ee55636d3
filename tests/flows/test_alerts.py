"""Alerts: bad settings are refused before Prefect is asked, and an alert never fails a run."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from flows import alerts
from flows.alerts import JOB_NEAR_EXPIRY, emit_alert, install_automations
from gladly_pipeline.cli import app
from gladly_pipeline.exit_codes import EXIT_USAGE


@pytest.mark.parametrize("hours", [0.001, 0.0, -1.0, 24 * 31])
def test_an_approval_wait_prefect_cannot_watch_is_refused_naming_the_range(hours: float) -> None:
    with pytest.raises(ValueError, match=r"--approval-hours .*between 0\.003 .*and 720"):
        install_automations("custom-webhook/gladly-alerts", approval_hours=hours)


def test_a_block_not_named_type_slash_name_is_refused_with_an_example() -> None:
    example = "<block-type>/<name>, e.g. custom-webhook/gladly-alerts"
    with pytest.raises(ValueError, match=re.escape(example)):
        install_automations("gladly-alerts")


def test_the_command_says_it_in_one_line_and_exits_2() -> None:
    result = CliRunner().invoke(
        app, ["alerts", "install", "--block", "custom-webhook/x", "--approval-hours", "0.001"]
    )
    assert result.exit_code == EXIT_USAGE
    assert "Traceback" not in result.output
    assert "10 seconds" in result.output


def test_without_a_prefect_api_an_alert_is_not_sent_and_nothing_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(alerts, "api_reachable", lambda env: False)
    monkeypatch.setattr(alerts, "emit_event", lambda **kw: sent.append(kw["event"]))
    emit_alert(JOB_NEAR_EXPIRY, "job-1", {"status": "COMPLETED"})
    assert sent == []  # a CLI run with no server: emitting would start a temporary one


def test_an_alert_that_cannot_be_sent_is_logged_without_failing_the_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kw: object) -> None:
        raise ConnectionError("the events socket closed")

    monkeypatch.setattr(alerts, "api_reachable", lambda env: True)
    monkeypatch.setattr(alerts, "emit_event", broken)
    with caplog.at_level("WARNING"):
        emit_alert(JOB_NEAR_EXPIRY, "job-1")
    assert f"could not emit {JOB_NEAR_EXPIRY} (ConnectionError)" in caplog.text
    assert "socket" not in caplog.text  # the class only: an error's text may carry anything


def test_emitted_events_name_the_resource_by_id_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(alerts, "api_reachable", lambda env: True)
    monkeypatch.setattr(alerts, "emit_event", lambda **kw: sent.append(kw))
    emit_alert(JOB_NEAR_EXPIRY, "job-1", {"status": "COMPLETED"})
    assert sent == [
        {
            "event": JOB_NEAR_EXPIRY,
            "resource": {"prefect.resource.id": f"{JOB_NEAR_EXPIRY}.job-1", "gladly.id": "job-1"},
            "payload": {"status": "COMPLETED"},
        }
    ]
