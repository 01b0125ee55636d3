"""The delete-customer-data flow, run as Prefect runs it, against a sandbox organisation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_log import outcomes as o
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
