"""An unlink whose PATCH failed is open work under its own request in `status` (not under a
plan, nor lumped with other unlinks), and the rerun that finishes it closes it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from erasure.unlink import run_unlink
from erasure.unlink_request import parse_unlink
from evidence.status import read_audit_status
from gladly_client import GladlyClient
from gladly_client.errors import GladlyConnectionError
from tests.erasure._erasure_world import KEY, erasure_world

pytestmark = pytest.mark.integration


def test_a_failed_unlink_is_an_open_request_until_its_rerun_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with erasure_world(tmp_path, customers=8, seed=5) as world:
        cid = next(c for c in world.sandbox.org.customer_ids() if world.customer(c).get("emails"))
        world.sandbox.refill(cid, email="second@unlink-status.example")
        request = parse_unlink(customer=cid, email="second@unlink-status.example")
        root = str(world.root)
        sb = world.sandbox
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as c:

            def lost(*_: object, **__: object) -> None:
                raise GladlyConnectionError("PATCH", "/customer-profiles/{id}", "reset")

            with monkeypatch.context() as patched:
                patched.setattr(c.customers, "update", lost)
                failed = run_unlink(request, root=root, client=c, key=KEY, actor="t", dry_run=False)
            assert failed.outcome == "failed"
            [open_one] = read_audit_status(root, now=datetime.now(UTC), audit_key=KEY).requests.open
            assert (open_one.kind, open_one.hash) == ("request", failed.request_id)
            assert (open_one.failed, open_one.finished) == (1, 0)

            done = run_unlink(request, root=root, client=c, key=KEY, actor="t", dry_run=False)
        assert done.outcome == "unlinked"
        emails = [e["normalized"] for e in world.customer(cid)["emails"]]
        assert "second@unlink-status.example" not in emails  # the sandbox's own record
        status = read_audit_status(root, now=datetime.now(UTC), audit_key=KEY)
        assert status.requests.open == ()
        assert status.attention()["requests"] == []
