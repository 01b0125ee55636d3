"""A real `prefect server start`: deploy prefect.yaml, run through a worker, approve and reject."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from prefect.exceptions import FlowRunWaitTimeout
from typer.testing import CliRunner

from audit_log import AuditLog, verify_chain
from flows.approval import resume_settled
from flows.secrets import BLOCKS
from gladly_archive import Archive
from gladly_pipeline.cli import app
from gladly_sandbox import Sandbox
from gladly_sandbox.ids import parse_timestamp
from tests._policies import INACTIVE, NOW
from tests.flows._server import PREFECT, REPO, free_port, serving, stop, tails

pytestmark = pytest.mark.integration

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SECRETS = ("GLADLY_BASE_URL", "GLADLY_USER", "GLADLY_API_TOKEN", "GLADLY_AUDIT_KEY")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        env=env,
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole in `finally`
    )


def _timed_out(what: str, logs: list[Path]) -> AssertionError:
    return AssertionError(f"timed out waiting for {what}\n{tails(logs)}")


async def _reach(run_id: Any, wanted: set[str], timeout: float) -> str:
    """Wait for the flow run to enter one of ``wanted`` states, on the server's event stream
    (subscribed before the first read, so no change is missed)."""
    from prefect.client.orchestration import get_client
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    only_this_run = EventFilter(
        event=EventNameFilter(prefix=["prefect.flow-run"]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
    )
    with anyio.fail_after(timeout):
        async with get_events_subscriber(filter=only_this_run) as events, get_client() as client:
            run = await client.read_flow_run(run_id)
            if run.state is not None and run.state.type.value in wanted:
                return str(run.state.type.value)
            async for event in events:
                state = event.resource.get("prefect.state-type")
                if state in wanted:
                    return str(state)
    raise AssertionError("unreachable")  # fail_after raises first


async def _states_after(run_id: Any, act: Any, until: str, timeout: float) -> list[str]:
    """The states the run enters after `act()` (run in a thread) up to its first `until` after
    a RUNNING, observed on the event stream subscribed before acting, so none is missed."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    only_this_run = EventFilter(
        event=EventNameFilter(prefix=["prefect.flow-run"]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
    )
    seen: list[str] = []
    with anyio.fail_after(timeout):
        async with get_events_subscriber(filter=only_this_run) as events:
            await anyio.to_thread.run_sync(act)
            async for event in events:
                state = event.resource.get("prefect.state-type")
                if state is not None:
                    seen.append(str(state))
                if state == until and "RUNNING" in seen:
                    return seen
    raise AssertionError("unreachable")  # fail_after raises first


def _wait_state(run_id: Any, wanted: set[str], what: str, logs: list[Path]) -> str:
    try:
        if wanted == FINAL:
            # Prefect's own wait: events, then reads until the final state is visible.
            from prefect.flow_runs import wait_for_flow_run

            run = anyio.run(lambda: wait_for_flow_run(run_id, timeout=240))
            return str(run.state.type.value)
        return anyio.run(_reach, run_id, wanted, 240.0)
    except (TimeoutError, FlowRunWaitTimeout):
        raise _timed_out(what, logs) from None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    with Sandbox(
        seed=37, customers=50, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        env = {
            **os.environ,
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",  # as `make server` sets it
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "DO_NOT_TRACK": "1",
            "GLADLY_REQUESTS_PER_SECOND": "200",
            "GLADLY_PIPELINE_ROOT": str(tmp_path / "archive"),
            "GLADLY_PIPELINE_ACTOR": "scheduler",
            "PWD": str(REPO),  # prefect.yaml's working directory: "{{ $PWD }}"
        }
        env.pop("PREFECT_PROFILE", None)
        # The worker has no Gladly setting in its environment: only the Secret blocks below.
        for name in SECRETS:
            env.pop(name, None)
        secrets = {
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_AUDIT_KEY": "real-server-test-key",
        }
        logs = [tmp_path / "server.log", tmp_path / "worker.log"]
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**env, "PREFECT_SERVER_LOGGING_LEVEL": "INFO"},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker: subprocess.Popen[bytes] | None = None
        try:
            if not serving(server, logs[0], 180):
                raise _timed_out("the Prefect server", logs)
            assert requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).ok
            # The UI asks this where the API is: on a port other than 4200 it must say so.
            ui = requests.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()
            assert ui["api_url"] == f"http://127.0.0.1:{port}/api"
            save_blocks = (
                "import json, sys\n"
                "from prefect.blocks.system import Secret\n"
                "for name, value in json.loads(sys.stdin.read()).items():\n"
                "    Secret(value=value).save(name, overwrite=True)\n"
            )
            blocks = json.dumps({BLOCKS[name]: value for name, value in secrets.items()})
            # Blocks first: deploying creates the rate budget's limits, named after the
            # organisation, whose address the worker (and so the deploy) has only as a block.
            for args, stdin in (
                ([PREFECT, "work-pool", "create", "gladly-process", "--type", "process"], None),
                ([sys.executable, "-c", save_blocks], blocks),
                ([PREFECT, "--no-prompt", "deploy", "--all"], None),
            ):
                done = subprocess.run(
                    args,
                    env=env,
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    input=stdin,
                )
                assert done.returncode == 0, done.stdout + done.stderr
            worker = _start([PREFECT, "worker", "start", "--pool", "gladly-process"], env, logs[1])
            yield {"env": env, "sandbox": sb, "tmp": tmp_path, "logs": logs}
        finally:
            if worker is not None:
                stop(worker)
            stop(server)


class _Receiver:
    """A loopback HTTP endpoint the notification block posts to; `got` is set on the first."""

    def __init__(self) -> None:
        self.got = threading.Event()
        self.bodies: list[str] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                with outer.arrived:
                    outer.bodies.append(body)
                    outer.arrived.notify_all()
                self.send_response(200)
                self.end_headers()
                outer.got.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alert"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, *words: str, timeout: float) -> str | None:
        """The first notification holding every one of `words`, as soon as it arrives."""

        def matching() -> str | None:
            return next((b for b in self.bodies if all(w in b for w in words)), None)

        with self.arrived:
            self.arrived.wait_for(lambda: matching() is not None, timeout=timeout)
            return matching()

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _run(client: Any, name: str, parameters: dict[str, Any]) -> Any:
    deployment = client.read_deployment_by_name(name)
    return client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


def _state(client: Any, run_id: Any) -> str:
    return str(client.read_flow_run(run_id).state.type.value)


def test_deployments_run_through_a_worker_with_approval(stack: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env, sb, tmp, logs = stack["env"], stack["sandbox"], stack["tmp"], stack["logs"]
    root = Path(env["GLADLY_PIPELINE_ROOT"])
    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        # The hourly export, run by the worker against the sandbox.
        export = _run(client, "export-transcripts/hourly", {})
        _wait_state(export.id, FINAL, "the export run", logs)
        assert _state(client, export.id) == "COMPLETED", _state(client, export.id)
        assert Archive(root).dataset("items").count_rows() > 0

        policies = tmp / "policies.yaml"
        policies.write_text(INACTIVE.format(close="true"))
        params = {"dry_run": False, "policies": str(policies), "approval_timeout_hours": 1}

        # A run a second person approves: paused, resumed with the plan's hash, executed.
        approved = _run(client, "apply-retention/weekly", params)
        _wait_state(approved.id, {"PAUSED"}, "the pause", logs)
        plans = sorted((root / "_plans").iterdir())
        from retention_policies.plan import Plan

        plan = Plan.read(plans[-1])
        # the scheduled run enriched the archive before planning (the conversations' facts
        # from Gladly's report; no profile: this policy reads no custom attribute)
        assert Archive(root).dataset("conversations").count_rows() > 0
        assert (root / "_enrichment" / "state.json").is_file()
        assert Archive(root).dataset("customer_profiles").count_rows() == 0
        targets = [t["target_id"] for t in plan.targets.to_pylist()]
        assert targets
        deleted_before = sb.org.counts()["deleted_customers"]

        # From the shell, as the run's log says: first a mistyped hash, which the run refuses
        # and keeps waiting; then the right one.
        def answer(plan_hash: str) -> None:
            answered = CliRunner().invoke(
                app,
                ["approve", str(approved.id), "--plan-hash", plan_hash, "--approver", "alice"],
                env={"PREFECT_API_URL": env["PREFECT_API_URL"]},
            )
            assert answered.exit_code == 0, answered.output

        try:
            states = anyio.run(
                _states_after, approved.id, lambda: answer("0123456789ab"), "PAUSED", 240.0
            )
        except TimeoutError:
            raise _timed_out("the refusal of a wrong hash", logs) from None
        # Resumed, refused, and waiting again (never COMPLETED nor FAILED in between).
        assert states[-1] == "PAUSED", states
        assert not FINAL & set(states), states
        _wait_state(approved.id, {"PAUSED"}, "the pause after the refusal", logs)
        assert sb.org.counts()["deleted_customers"] == deleted_before
        # An answer missing a field (as a script calling Prefect directly might send) is refused
        # by the server itself, naming the field, and never reaches the run, which keeps waiting.
        with pytest.raises(RuntimeError, match="plan_hash"):
            resume_settled(str(approved.id), {"decision": "approve", "approver": "alice"})
        assert _state(client, approved.id) == "PAUSED"
        assert sb.org.counts()["deleted_customers"] == deleted_before
        answer(plan.hash[:12])
        _wait_state(approved.id, FINAL, "the approved run", logs)
        assert _state(client, approved.id) == "COMPLETED"
        assert all(sb.org.raw_customer(t)["deleted"] for t in targets)
        assert sb.org.counts()["deleted_customers"] == deleted_before + len(targets)

        # A run that is rejected deletes nothing, and the rejection is audited.
        recent = tmp / "recent.yaml"
        recent.write_text(
            INACTIVE.format(close="true").replace("older_than: 400", "older_than: 30")
        )
        rejected = _run(client, "apply-retention/weekly", {**params, "policies": str(recent)})
        _wait_state(rejected.id, {"PAUSED"}, "the second pause", logs)
        counts = sb.org.counts()
        second = Plan.read(sorted((root / "_plans").iterdir())[-1])
        assert second.targets.num_rows > 0
        assert second.hash != plan.hash
        resume_settled(
            str(rejected.id), {"decision": "reject", "approver": "bob", "plan_hash": second.hash}
        )
        _wait_state(rejected.id, FINAL, "the rejected run", logs)
        assert _state(client, rejected.id) == "COMPLETED"
        assert sb.org.counts() == counts

        # Alerts: our automations notify through a webhook block (a receiver on loopback) when
        # an export leaves a completed job unarchived near its expiry. Gladly's clock is moved
        # to the worker's, so that its jobs' ages are real: one is 13 days old (Gladly deletes
        # it at 14) and this run archives nothing (all skipped by `since`).
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        with _Receiver() as receiver:
            CustomWebhookNotificationBlock(
                name="gladly-alerts",
                url=receiver.url,
                json_data={"subject": "{{subject}}", "body": "{{body}}"},
                allow_private_urls=True,
            ).save("gladly-alerts", overwrite=True)
            installed = CliRunner().invoke(
                app,
                # 15 s: Prefect's shortest watch for an absent event (the default is 72 h)
                [
                    "alerts",
                    "install",
                    "--block",
                    "custom-webhook/gladly-alerts",
                    "--approval-hours",
                    "0.0042",
                ],
                env={"PREFECT_API_URL": env["PREFECT_API_URL"]},
            )
            assert installed.exit_code == 0, installed.output
            real_now = datetime.now(UTC)
            sb.clock.set(real_now)
            ages = {
                job["id"]: real_now - parse_timestamp(job["updatedAt"])
                for job in sb.exports.list_jobs()
                if job["status"] == "COMPLETED"
            }
            thirteen = [
                j for j, age in ages.items() if timedelta(days=13) <= age < timedelta(days=14)
            ]
            assert len(thirteen) == 1, ages
            later = (real_now + timedelta(days=1)).isoformat()
            skipped = _run(
                client, "export-transcripts/hourly", {"since": later, "expiry_warning_days": 13}
            )
            _wait_state(skipped.id, FINAL, "the export that archives nothing", logs)
            assert receiver.got.wait(timeout=180), "no notification from the automation"
            assert "gladly.export.job.near-expiry" in receiver.bodies[0]
            # about that job, and only that one: the younger jobs are not near their expiry
            assert thirteen[0] in receiver.bodies[0]
            assert not any(j in body for body in receiver.bodies for j in set(ages) - {thirteen[0]})

            # A plan nobody answers: the proactive automation notices the silence.
            waiting = _run(client, "apply-retention/weekly", {**params, "policies": str(recent)})
            _wait_state(waiting.id, {"PAUSED"}, "the third pause", logs)
            third = Plan.read(sorted((root / "_plans").iterdir())[-1])
            said = receiver.wait_for("still awaits approval", third.hash, timeout=180)
            assert said is not None, f"no reminder for plan {third.hash}: {receiver.bodies}"
            resume_settled(
                str(waiting.id),
                {"decision": "reject", "approver": "bob", "plan_hash": third.hash},
            )
            _wait_state(waiting.id, FINAL, "the third run, rejected", logs)
            assert sb.org.counts()["deleted_customers"] == counts["deleted_customers"]
    decisions = [
        (e["outcome"], e["approver"], e["actor"])
        for e in AuditLog(root, key=b"real-server-test-key").events().to_pylist()
        if e["step"] == "approval"
    ]
    assert decisions == [
        ("refused", "alice", "scheduler"),  # the mistyped hash: audited, and the run waited on
        ("approved", "alice", "scheduler"),
        ("rejected", "bob", "scheduler"),
        ("rejected", "bob", "scheduler"),  # the plan the reminder was about
    ]
    assert verify_chain(root, key=b"real-server-test-key").ok
