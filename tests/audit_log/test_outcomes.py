"""The outcome vocabulary: which outcomes are final, done, or need a person, in plain words."""

from __future__ import annotations

import pytest

from audit_log import outcomes as o


def _report(*names: str) -> o.RunReport:
    report = o.RunReport(run_id="r", plan_hash="a" * 64, dry_run=False)
    for i, name in enumerate(names):
        report.outcomes.append(
            o.TargetOutcome("customer", f"c{i}", f"c{i}", "p", "delete_customer", "x", name)
        )
    return report


@pytest.mark.parametrize("name", [o.SKIPPED_CHANGED, o.BECAME_ACTIVE])
def test_skipped_targets_are_final_not_failures_and_need_a_person(name: str) -> None:
    assert name in o.FINAL_OUTCOMES  # a rerun of the plan leaves them alone
    report = _report(o.DELETED, name)
    assert report.ok
    assert report.needs_attention
    assert report.counts() == {o.DELETED: 1, name: 1}


def test_every_outcome_says_in_words_whether_it_was_done() -> None:
    names = {v for k, v in vars(o).items() if k.isupper() and isinstance(v, str)}
    names -= {o.ONE_OFF_POLICY, o.UNLINK_POLICY}
    assert set(o.MEANINGS) == names
    done = {n for n, words in o.MEANINGS.items() if words.startswith("done")}
    assert done == {o.DELETED, o.REDACTED, o.ITEM_DELETED, o.UNLINKED}
    assert o.MEANINGS[o.SKIPPED_CHANGED] == "not done: skipped because the facts changed"
