"""Two Prefect workers, an export and a deletion at once, one Gladly: not a single 429."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from flows.rate_limits import limit_names
from gladly_archive import Archive
from gladly_sandbox import Sandbox
from tests._policies import NOW
from tests.flows._server import PREFECT, REPO, free_port, serving, stop, tails

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DELETED = 40  # customers the deletion erases: about 100 GETs and 40 DELETEs
BUDGET_LINE = "rate budget: Prefect limits"


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _logs(client: Any, run_id: Any) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200)
    return "\n".join(log.message for log in logs)


def test_an_export_and_a_deletion_on_two_workers_share_the_budget(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import wait_for_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    with Sandbox(
        seed=29, customers=70, now=NOW, frozen_clock=True, rate_limit_per_second=10.0
    ) as sb:
        env = {
            **os.environ,
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",  # the runs' INFO lines reach the API's logs
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "DO_NOT_TRACK": "1",
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_AUDIT_KEY": "shared-budget-test-key",
            "GLADLY_PIPELINE_ACTOR": "dpo-desk",
            "GLADLY_RATE_BUDGET": "prefect",  # nothing may fall back to another budget
            "PWD": str(REPO),  # prefect.yaml's working directory: "{{ $PWD }}"
        }
        for name in ("PREFECT_PROFILE", "GLADLY_PIPELINE_ROOT", "GLADLY_REQUESTS_PER_SECOND"):
            env.pop(name, None)
        logs = [tmp_path / "server.log", tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**env, "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "INFO"},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole below
        )
        workers: list[subprocess.Popen[bytes]] = []
        try:
            assert serving(server, logs[0], 180), "the Prefect server did not start\n" + tails(logs)
            cli = [sys.executable, "-m", "gladly_pipeline.cli"]
            # The limits first, as an operator would; deploying finds them unchanged.
            assert "get: created" in _run([*cli, "rate-budget", "create"], env)
            _run([PREFECT, "work-pool", "create", "gladly-process", "--type", "process"], env)
            deployed = _run(
                [
                    *[PREFECT, "--no-prompt", "deploy"],
                    *["--name", "export-transcripts/hourly"],
                    *["--name", "delete-customer-data/ad-hoc"],
                ],
                env,
            )
            assert "unchanged (8 requests/s per method)" in deployed
            for log in logs[1:]:
                workers.append(
                    subprocess.Popen(
                        [PREFECT, "worker", "start", "--pool", "gladly-process", "--limit", "1"],
                        env=env,
                        cwd=REPO,
                        stdout=log.open("wb"),
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            doomed = [c for c in sb.org.customer_ids() if not sb.org.raw_customer(c)["deleted"]]
            doomed = doomed[:DELETED]
            sb.reset_stats()
            with (
                temporary_settings(updates={PREFECT_API_URL: api}),
                get_client(sync_client=True) as client,
            ):
                export_id = client.create_flow_run_from_deployment(
                    client.read_deployment_by_name("export-transcripts/hourly").id,
                    parameters={"root": str(tmp_path / "archive")},
                ).id
                delete_id = client.create_flow_run_from_deployment(
                    client.read_deployment_by_name("delete-customer-data/ad-hoc").id,
                    parameters={
                        "customer_ids": doomed,
                        "close_open_conversations": True,
                        "dry_run": False,
                        "approval_threshold": 1000,
                        "request_id": "DSR-SHARED-1",
                        "root": str(tmp_path / "erasure-archive"),
                    },
                ).id
                runs = {}
                for run_id in (export_id, delete_id):
                    try:
                        runs[run_id] = anyio.run(
                            lambda r=run_id: wait_for_flow_run(r, timeout=300)  # type: ignore[misc]
                        )
                    except Exception:
                        raise AssertionError("a run did not finish\n" + tails(logs)) from None
                states = {r: str(run.state.type.value) for r, run in runs.items()}
                assert set(states.values()) == {"COMPLETED"}, (states, tails(logs))
                # Both at once: each started before the other ended, on its own worker.
                export, delete = runs[export_id], runs[delete_id]
                assert export.start_time < delete.end_time, (export, delete)
                assert delete.start_time < export.end_time, (export, delete)
                # Each paced by the Prefect limits (GLADLY_RATE_BUDGET=prefect allows nothing else).
                assert BUDGET_LINE in _logs(client, export_id)
                assert BUDGET_LINE in _logs(client, delete_id)
                delete_limit = client.read_global_concurrency_limit_by_name(
                    limit_names(sb.base_url)["DELETE"]
                )
                # Written to since `rate-budget create` made it: the DELETEs took its slots.
                assert delete_limit.updated > delete_limit.created, delete_limit
        finally:
            for worker in workers:
                stop(worker)
            stop(server)
        stats = sb.stats()
        assert stats["rate_limited"] == 0, stats["by_method"]
        assert stats["by_method"]["GET"].get("200", 0) > 100  # both wanted more than Gladly's 10/s
        assert all(sb.org.raw_customer(c)["deleted"] for c in doomed)
        assert Archive(tmp_path / "archive").dataset("items").count_rows() > 0
