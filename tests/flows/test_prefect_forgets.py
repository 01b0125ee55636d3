"""Erasure reaches the orchestrator: after a `delete-customer-data` deployment run erased a
person, a byte scan of the Prefect server's database (and of all of PREFECT_HOME) finds none of
their emails, phones or name — not in parameters, task runs, logs, artifacts, results, events or
the work queue.

The run is a real deployment run: `prefect server start` with its own PREFECT_HOME (a SQLite
file), `prefect deploy` of prefect.yaml's `ad-hoc` deployment, a process worker that runs it,
as in test_real_server.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import requests

from audit_log import AuditLog
from gladly_archive import Archive
from gladly_archive.keyed import normalise_phone
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from tests._policies import NOW
from tests._scan import traces
from tests._world import World, sandbox_world
from tests.flows._server import PREFECT, REPO, free_port, serving, stop, tails

pytestmark = pytest.mark.integration

KEY = "prefect-forgets-test-key"
# Every logger of ours reaches the run logs (and so the database), at every level.
OUR_LOGGERS = "gladly_client,ingest,gladly_archive,audit_log,retention_policies,erasure,flows"


def _run_process_exited(worker: subprocess.Popen[bytes], run_id: Any, timeout: float) -> bool:
    """Wait for the process the worker started for this flow run to exit: it sends its last
    log lines as it exits, so afterwards every line it logged is stored (no polling)."""
    mine = []
    for child in psutil.Process(worker.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.environ().get("PREFECT__FLOW_RUN_ID") == str(run_id):
                mine.append(child)
    _, alive = psutil.wait_procs(mine, timeout=timeout)
    return not alive


def _stored_logs(client: Any, run_id: Any) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    only_this_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    return [log.message for log in client.read_logs(log_filter=only_this_run, limit=200)]


def _needles(record: dict[str, Any], typed_phone: str) -> list[str]:
    """Every email, phone (as stored, as typed in the request, E.164, national digits) and the
    name of the customer, each also as JSON would escape it."""
    values = {record["name"], typed_phone, normalise_phone(typed_phone)}
    for email in record["emails"]:
        values |= {email["original"], email["normalized"]}
    for phone in record["phones"]:
        values |= {phone["original"], phone["normalized"], phone["normalized"][2:]}
    values |= {json.dumps(v)[1:-1] for v in set(values)}
    return sorted(v for v in values if len(v) >= 4)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sandbox exported into an archive, then a real server, the deployment and a worker."""
    port = free_port()
    home = tmp_path / "prefect-home"
    root = tmp_path / "archive"
    with Sandbox(
        seed=41, customers=30, now=NOW, frozen_clock=True, rate_limit_per_second=None
    ) as sb:
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:
            assert run_export(c, Archive.open(root), now=NOW).failed == []
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "DEBUG",  # everything the run says goes to the database
            "PREFECT_LOGGING_EXTRA_LOGGERS": OUR_LOGGERS,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "DO_NOT_TRACK": "1",
            "GLADLY_BASE_URL": sb.base_url,
            "GLADLY_USER": sb.user,
            "GLADLY_API_TOKEN": sb.api_token,
            "GLADLY_REQUESTS_PER_SECOND": "200",
            "GLADLY_AUDIT_KEY": KEY,
            "GLADLY_PIPELINE_ROOT": str(root),
            "GLADLY_PIPELINE_ACTOR": "dpo-desk",
            "PWD": str(REPO),  # prefect.yaml's working directory: "{{ $PWD }}"
        }
        env.pop("PREFECT_PROFILE", None)
        output = tmp_path / "prefect-output"
        output.mkdir()
        logs = [output / "server.log", output / "worker.log"]
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**env, "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_LOGGING_LEVEL": "INFO"},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole below
        )
        procs = [server]
        try:
            if not serving(server, logs[0], 180):
                raise AssertionError("the Prefect server did not start\n" + tails(logs))
            assert requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).ok
            for args in (
                [PREFECT, "work-pool", "create", "gladly-process", "--type", "process"],
                [PREFECT, "--no-prompt", "deploy", "--name", "delete-customer-data/ad-hoc"],
            ):
                done = subprocess.run(
                    args, env=env, cwd=REPO, capture_output=True, text=True, timeout=180
                )
                assert done.returncode == 0, done.stdout + done.stderr
            procs.append(
                subprocess.Popen(
                    [PREFECT, "worker", "start", "--pool", "gladly-process"],
                    env=env,
                    cwd=REPO,
                    stdout=logs[1].open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            yield {"env": env, "sandbox": sb, "tmp": tmp_path, "logs": logs, "procs": procs}
        finally:
            for proc in reversed(procs):
                stop(proc)


def test_an_erasure_run_leaves_no_trace_of_the_person_in_prefect(world: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import wait_for_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env, sb, tmp, logs = world["env"], world["sandbox"], world["tmp"], world["logs"]
    root = Path(env["GLADLY_PIPELINE_ROOT"])
    archived = set(Archive(root).dataset("customers").to_table().column("customer_id").to_pylist())
    customer_id = next(
        c
        for c in sb.org.customer_ids()
        if c in archived
        and (r := sb.org.raw_customer(c))
        and r["emails"]
        and r["phones"]
        and not r["deleted"]
    )
    record = sb.org.raw_customer(customer_id)
    assert record is not None
    email = record["emails"][0]["original"]
    digits = record["phones"][0]["normalized"][2:]  # a US number: typed as (NPA) NXX-XXXX
    typed_phone = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    # The person, by email and by phone, in a request file on the worker: the only place the
    # deployment run learns who they are.
    request_file = tmp / "erasure-request-dsr-2041.csv"
    request_file.write_text(f"email,phone\n{email},\n,{typed_phone}\n")
    parameters = {
        "csv_path": str(request_file),
        "delete_request_file": True,
        "request_id": "DSR-2041",
        "reason": "DSR-2041",
        "close_open_conversations": True,
        "dry_run": False,
    }

    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        deployment = client.read_deployment_by_name("delete-customer-data/ad-hoc")
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        try:
            finished = anyio.run(lambda: wait_for_flow_run(run.id, timeout=240))
        except Exception as exc:
            raise AssertionError(f"the run did not finish: {exc!r}\n{tails(logs)}") from None
        state = finished.state
        assert state is not None
        assert state.is_completed(), f"{state}\n{tails(logs)}"
        # The run's process sends its logs in batches, the last ones as it exits: wait for
        # them, so the scan below also reads the run's own log lines.
        assert _run_process_exited(world["procs"][-1], run.id, 60), tails(logs)
        said = _stored_logs(client, run.id)
        for line in ("request file deleted", "Finished in state"):
            assert any(line in m for m in said), f"the run's logs are not stored\n{tails(logs)}"
        stored = client.read_flow_run(run.id).parameters
        assert stored["csv_path"] == str(request_file)
        assert not {"emails", "phones"} & {k for k, v in stored.items() if v}
    for proc in reversed(world["procs"]):  # stop the worker, then the server: files are final
        stop(proc)

    # The erasure happened: Gladly's truth, our audit log, and the request file is gone.
    assert sb.org.raw_customer(customer_id)["deleted"] is True  # type: ignore[index]
    outcomes = {
        e["outcome"]
        for e in AuditLog(root, key=KEY.encode()).events().to_pylist()
        if e["target_id"] == customer_id and e["phase"] == "result"
    }
    assert "deleted" in outcomes, outcomes
    assert not request_file.exists()

    # Prefect's database (the .db and any -wal/-shm) and everything else under PREFECT_HOME,
    # byte by byte, case-insensitive. The file's name is the control: what Prefect stores of a
    # parameter is found by this scan.
    home = Path(env["PREFECT_HOME"])
    assert (home / "prefect.db").is_file()
    needles = _needles(record, typed_phone)
    found = traces(home, [request_file.name, *needles])
    assert any(f.endswith("needle #0") for f in found), "the scan does not see parameters"
    leaks = [f for f in found if not f.endswith("needle #0")]
    assert leaks == [], f"personal data in Prefect's files: {leaks}"
    # Nor in what the server and the worker printed.
    assert traces(logs[0].parent, needles) == [], "personal data in the server's or worker's output"


# Local runs, on the session's test server: identifiers given as parameters are overwritten by
# the flow's first step (even when the run then fails), and the command line never gives them.


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with sandbox_world(tmp_path, monkeypatch) as w:
        monkeypatch.setenv("GLADLY_BASE_URL", w.sandbox.base_url)
        monkeypatch.setenv("GLADLY_USER", w.sandbox.user)
        monkeypatch.setenv("GLADLY_API_TOKEN", w.sandbox.api_token)
        yield w


def _person(world: World) -> tuple[str, str, str]:
    """A live customer's id, first email and first phone."""
    for cid in world.sandbox.org.customer_ids():
        record = world.customer(cid)
        if record["emails"] and record["phones"] and not record["deleted"]:
            return cid, record["emails"][0]["original"], record["phones"][0]["original"]
    raise AssertionError("no live customer with an email and a phone")


def _stored(run_id: Any) -> tuple[dict[str, Any], str]:
    """The flow run's stored parameters, and all the API returns of it and its task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return run.parameters, run.model_dump_json() + "".join(t.model_dump_json() for t in tasks)


def test_identifiers_given_as_parameters_are_overwritten_first(
    prefect_api: None, local: World
) -> None:
    from flows.delete_customer_data import delete_customer_data

    cid, email, phone = _person(local)
    rehearsal = delete_customer_data(
        emails=[email], phones=[phone], root=str(local.root), return_state=True
    )
    assert rehearsal.is_completed()
    refused = delete_customer_data(  # a bad row stops the run: its parameters are gone too
        emails=[email, "not an address"], phones=[phone], root=str(local.root), return_state=True
    )
    assert refused.is_failed()
    for state, emails in ((rehearsal, "[erased: 1 email]"), (refused, "[erased: 2 emails]")):
        parameters, stored = _stored(state.state_details.flow_run_id)
        assert email.casefold() not in stored.casefold()
        assert phone not in stored
        assert normalise_phone(phone) not in stored
        assert parameters["emails"] == emails
        assert parameters["phones"] == "[erased: 1 phone]"
    assert local.customer(cid)["deleted"] is False  # a rehearsal


def test_the_command_line_gives_the_flow_a_private_request_file(
    prefect_api: None, local: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    from flows.delete_customer_data import main

    cid, email, phone = _person(local)
    main(["--email", email, "--phone", phone, "--root", str(local.root), "--request-id", "D-7"])
    result = json.loads(capsys.readouterr().out)
    assert result["request_file"] == "kept"  # a rehearsal; the command line removes its file
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["delete-customer-data"])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    assert run.parameters["csv_path"].endswith("request.csv")
    assert not Path(run.parameters["csv_path"]).exists()
    assert not run.parameters.get("emails")
    assert not run.parameters.get("phones")
    _, stored = _stored(run.id)
    assert email.casefold() not in stored.casefold()
    assert phone not in stored
    assert local.customer(cid)["deleted"] is False
