"""Settings come from the environment first, then from Prefect Secret blocks."""

from __future__ import annotations

import pytest

from flows.secrets import run_env


def test_blocks_fill_only_what_the_environment_lacks(prefect_api: None) -> None:
    from prefect.blocks.system import Secret

    Secret(value="token-from-block").save("gladly-api-token", overwrite=True)
    Secret(value="key-from-block").save("gladly-audit-key", overwrite=True)
    env = run_env({"GLADLY_AUDIT_KEY": "key-from-env", "OTHER": "x"})
    assert env["GLADLY_API_TOKEN"] == "token-from-block"
    assert env["GLADLY_AUDIT_KEY"] == "key-from-env"  # the environment wins
    assert "GLADLY_USER" not in env  # no block, no value: the caller names what is missing
    assert env["OTHER"] == "x"


def test_without_a_server_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    asked: list[str] = []
    monkeypatch.setattr(Secret, "load", classmethod(lambda cls, name: asked.append(name)))
    with temporary_settings(updates={PREFECT_API_URL: None}):
        env = run_env({"GLADLY_BASE_URL": "https://org.gladly.com"})
    assert env == {"GLADLY_BASE_URL": "https://org.gladly.com"}
    assert asked == []  # it would have started Prefect's temporary server just to ask
