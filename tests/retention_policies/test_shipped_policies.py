"""The example policies shipped in retention_policies/policies/ all load and say why."""

from __future__ import annotations

from pathlib import Path

import pytest

import retention_policies
from retention_policies.loader import load_policies

POLICIES = Path(retention_policies.__file__).parent / "policies"
FILES = sorted(POLICIES.glob("*.yaml"))


def test_there_are_shipped_policies() -> None:
    assert len(FILES) >= 5


@pytest.mark.parametrize("file", FILES, ids=[f.name for f in FILES])
def test_each_file_loads_with_a_real_description_and_limits(file: Path) -> None:
    [policy] = load_policies(file)
    assert policy.name == file.stem
    assert len(policy.description) > 80
    assert policy.limits.max_targets is not None
    assert policy.limits.max_percent is not None


def test_the_directory_loads_as_a_whole() -> None:
    names = [p.name for p in load_policies(POLICIES)]
    assert names == [f.stem for f in FILES]
    kinds = {(p.resource, p.action.type) for p in load_policies(POLICIES)}
    assert kinds == {
        ("customer", "delete_customer"),
        ("conversation", "erase_conversation"),
        ("item", "redact_items"),
    }
