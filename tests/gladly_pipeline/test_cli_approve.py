"""`gladly-pipeline approve` refuses what the run would refuse anyway, before any call."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gladly_pipeline.cli import app
from tests._console import says

RUN = "2dd5eba2-d582-41a3-a7a9-af2dafcfc11b"


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ([RUN, "--plan-hash", "abc", "--approver", "alice"], "invalid --plan-hash"),
        ([RUN, "--plan-hash", "0123456789abcdef", "--approver", "a@b.example"], "--approver"),
        (["not-a-run", "--plan-hash", "0123456789abcdef", "--approver", "alice"], "not a flow run"),
    ],
)
def test_bad_answers_exit_2_naming_what_is_wrong(args: list[str], phrase: str) -> None:
    result = CliRunner().invoke(app, ["approve", *args])
    assert result.exit_code == 2, result.output
    assert says(result.output, phrase)
    assert "Traceback" not in result.output
