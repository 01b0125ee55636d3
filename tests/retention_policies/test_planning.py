"""make_plan over an archive exported from the sandbox: what it tells a progress display."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention_policies.evaluate import POLICIES_PHASE
from retention_policies.facts import FACTS_PHASE
from retention_policies.facts_cache import SAVE_PHASE
from retention_policies.planning import make_plan
from tests._policies import INACTIVE_AND_CALLS, NOW
from tests._progress import ProgressLog
from tests._world import sandbox_world

pytestmark = pytest.mark.integration


def test_progress_follows_the_facts_then_each_policy_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(INACTIVE_AND_CALLS)
    with sandbox_world(tmp_path, monkeypatch) as world:
        root = str(world.root)
        built = ProgressLog()
        plan, _ = make_plan(policies, root=root, now=NOW, out=tmp_path / "a", progress=built)
        assert built.phases() == [FACTS_PHASE, SAVE_PHASE, POLICIES_PHASE]
        (facts,) = built.runs(FACTS_PHASE)
        assert [done for done, _ in facts] == list(range(facts[-1][1] + 1))
        assert facts[-1][1] > 1  # the build's steps, one by one
        assert built.final(SAVE_PHASE) == 1
        (evaluated,) = built.runs(POLICIES_PHASE)
        assert [done for done, _ in evaluated] == [0, 1, 2]
        # The saved facts serve the next plan: one step, nothing saved.
        cached = ProgressLog()
        again, _ = make_plan(policies, root=root, now=NOW, out=tmp_path / "b", progress=cached)
        assert cached.phases() == [FACTS_PHASE, POLICIES_PHASE]
        assert cached.runs(FACTS_PHASE) == [[(1, 1)]]
        # Listening changes nothing in the plan.
        quiet, _ = make_plan(policies, root=root, now=NOW, out=tmp_path / "c")
        assert plan.hash == again.hash == quiet.hash
        assert plan.targets.num_rows > 0
