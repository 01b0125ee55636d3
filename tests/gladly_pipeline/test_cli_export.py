"""`gladly-pipeline export` end to end, and the README's first queries on what it wrote."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import responses
from responses import matchers
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from tests._console import says

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        seed=31, customers=50, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        yield sb


@pytest.fixture
def env(sandbox: Sandbox) -> dict[str, str]:
    sb = sandbox
    return {
        "GLADLY_BASE_URL": sb.base_url,
        "GLADLY_USER": sb.user,
        "GLADLY_API_TOKEN": sb.api_token,
        "GLADLY_REQUESTS_PER_SECOND": "200",
    }


def test_export_archives_prints_a_summary_and_the_readme_queries_work(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the README's queries use the default root, ./gladly-data
    result = CliRunner().invoke(app, ["export"], env=env)
    # Nothing is older than the warning threshold once everything is archived: exit 0.
    assert result.exit_code == 0, result.output
    assert says(result.output, "jobs archived now")
    assert not says(result.output, env["GLADLY_API_TOKEN"])

    sql = re.search(r"```sql\n(.*?)```", README.read_text(), re.S)
    assert sql is not None
    statements = [s for s in sql.group(1).split(";") if s.strip().replace("-- duckdb", "").strip()]
    assert len(statements) == 2
    by_type = duckdb.sql(statements[0]).fetchall()
    assert sum(row[1] for row in by_type) > 0
    latest = duckdb.sql(statements[1]).fetchall()
    assert len(latest) == 5
    assert all(":" in transcript for _, _, transcript in latest)

    python = re.search(r"```python\nimport pandas as pd\n(.*?)```", README.read_text(), re.S)
    assert python is not None
    scope: dict[str, object] = {"pd": pd}
    exec(python.group(1), scope)  # noqa: S102 - the README's own example, run as written
    assert int(scope["per_day"].sum()) == sum(row[1] for row in by_type)  # type: ignore[attr-defined]

    again = CliRunner().invoke(app, ["export"], env=env)
    assert again.exit_code == 0
    assert re.search(r"jobs archived now\s*│\s*0", again.output)


def test_export_exits_3_when_jobs_are_about_to_expire_unarchived(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["export", "--root", str(tmp_path / "a"), "--since", "2026-06-01"], env=env
    )
    assert result.exit_code == 3, result.output
    assert says(result.output, "AT RISK")


def test_export_for_one_customer_by_email(env: dict[str, str], tmp_path: Path) -> None:
    with Sandbox(seed=31, customers=50, now=NOW, frozen_clock=True) as truth:
        email = next(
            raw["emails"][0]["original"]
            for cid in truth.org.customer_ids()
            if (raw := truth.org.raw_customer(cid))
            and not raw.get("deleted")
            and not raw.get("merged_into")
        )
    result = CliRunner().invoke(
        app,
        ["export", "--root", str(tmp_path / "a"), "--customer-email", email],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert says(result.output, "customers found")
    assert not says(result.output, email)
    assert os.listdir(tmp_path / "a" / "items")


def test_export_skips_a_job_with_an_unsafe_id_archives_the_rest_and_exits_3(
    sandbox: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    completed = sandbox.exports.list_jobs(status="COMPLETED")
    good = max(completed, key=lambda j: j["updatedAt"])  # young: no expiry warning for it
    unsafe_id = "../escaped-evil\x1b[2J"
    root = tmp_path / "a" / "archive"
    with responses.RequestsMock() as mock:
        mock.add_passthru(sandbox.base_url)
        mock.get(
            f"{sandbox.base_url}/api/v1/export/jobs",
            json=[good, {**good, "id": unsafe_id}],
            match=[matchers.query_param_matcher({"status": "COMPLETED"})],
        )
        mock.get(
            f"{sandbox.base_url}/api/v1/export/jobs",
            json=[],
            match=[matchers.query_param_matcher({"status": "FAILED"})],
        )
        result = CliRunner().invoke(app, ["export", "--root", str(root)], env=env)
    assert result.exit_code == 3, result.output
    assert re.search(r"jobs archived now\s*│\s*1", result.output)
    assert says(result.output, "SKIPPED 1 export job(s) whose id is not a safe file name")
    assert len([line for line in result.output.splitlines() if "SKIPPED" in line]) == 1
    assert "escaped-evil" not in result.output  # not printable as it is: a hash prefix
    assert "\x1b[2J" not in result.output
    assert says(result.output, "sha256:")
    assert not says(result.output, "AT RISK")
    assert os.listdir(root / "items")
    written = [
        os.path.join(folder, name)
        for folder, dirs, files in os.walk(tmp_path)
        for name in [*dirs, *files]
    ]
    assert not [p for p in written if "evil" in os.path.relpath(p, tmp_path)]
