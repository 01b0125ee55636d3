"""The delete-customer-data flow, run as Prefect runs it, against a sandbox organisation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_log import outcomes as o
from erasure.request_metadata import metadata_hash
from retention_policies import HoldRegistry
from tests._world import KEY, World, sandbox_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with sandbox_world(tmp_path, monkeypatch) as w:
        yield w


def test_the_one_off_flow_honours_legal_holds(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.delete_customer_data import delete_customer_data

    monkeypatch.setenv("GLADLY_BASE_URL", world.sandbox.base_url)
    monkeypatch.setenv("GLADLY_USER", world.sandbox.user)
    monkeypatch.setenv("GLADLY_API_TOKEN", world.sandbox.api_token)
    held = next(c for c in world.sandbox.org.customer_ids() if not world.customer(c)["deleted"])
    registry = HoldRegistry.empty(key=KEY.encode()).add(
        "customer_id", held, reason="litigation", reference="L-9"
    )
    holds = world.tmp / "holds.yaml"
    registry.write(holds)
    result = delete_customer_data(
        customer_ids=[held],
        dry_run=False,
        close_open_conversations=True,
        root=str(world.root),
        holds_path=str(holds),
    )
    assert result["outcomes"] == {o.HELD: 1}
    assert world.customer(held)["deleted"] is False


def test_the_flow_audits_a_request_files_reason_as_given_only_with_keep_reason(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit_log import AuditLog
    from flows.delete_customer_data import delete_customer_data

    monkeypatch.setenv("GLADLY_BASE_URL", world.sandbox.base_url)
    monkeypatch.setenv("GLADLY_USER", world.sandbox.user)
    monkeypatch.setenv("GLADLY_API_TOKEN", world.sandbox.api_token)
    cid = next(c for c in world.sandbox.org.customer_ids() if not world.customer(c)["deleted"])
    request = world.tmp / "request.csv"
    request.write_text(f"customer_id,reason,notes\n{cid},DSR-5150 QZW,private note QZW\n")
    for keep_reason in (False, True):
        result = delete_customer_data(
            csv_path=str(request), keep_reason=keep_reason, root=str(world.root)
        )
        assert "QZW" not in json.dumps(result, default=str)
    audited = [
        json.loads(e["detail"])["metadata"]
        for e in AuditLog(world.root, key=KEY.encode()).events().to_pylist()
        if e["step"] == "request_metadata"
    ]
    notes = metadata_hash(KEY.encode(), "notes", ["private note QZW"])
    assert audited == [
        {"reason": metadata_hash(KEY.encode(), "reason", ["DSR-5150 QZW"]), "notes": notes},
        {"reason": "DSR-5150 QZW", "notes": notes},
    ]
