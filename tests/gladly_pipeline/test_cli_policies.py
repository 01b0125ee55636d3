"""`policies validate` and `holds hash` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import retention_policies
from gladly_archive.keyed import keyed_hash
from gladly_pipeline.errors import PipelineGroup
from gladly_pipeline.policies import holds_hash, validate
from tests._console import says

POLICIES = Path(retention_policies.__file__).parent / "policies"

app = typer.Typer(cls=PipelineGroup)  # the root command's handling of what escapes a command


@app.callback()
def _root() -> None:
    """Test app."""


app.command(name="validate")(validate)
app.command(name="hash")(holds_hash)
runner = CliRunner()


def test_validate_a_good_directory(tmp_path: Path) -> None:
    # Against an archive that has never listed its inboxes, a name cannot be checked: refused.
    empty = tmp_path / "archive"
    result = runner.invoke(app, ["validate", str(POLICIES), "--root", str(empty)])
    assert result.exit_code == 2
    assert says(
        result.stderr,
        "filters[2].not_in[0]: inbox 'VIP Support' cannot be checked: the archive has no "
        "inboxes yet",
    )
    # The files alone (a repository's CI, no archive at hand).
    result = runner.invoke(app, ["validate", str(POLICIES), "--no-names"])
    assert result.exit_code == 0, result.output
    assert says(
        result.stdout, "delete-inactive-customers  resource=customer  action=delete_customer  hash="
    )
    assert says(result.stdout, "5 policies valid.")


def test_validate_a_bad_file_exits_2_with_file_line_key(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "name: bad-one\ndescription: d\nresource: customer\nfilters:\n  - typ: age\n"
        "actions:\n  - type: delete_customer\n"
    )
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 2
    assert says(result.stderr, f"{file}:5: filters[0].typ: unknown key 'typ' (valid: type)")


def test_holds_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLADLY_AUDIT_KEY", "k3y")
    result = runner.invoke(app, ["hash", "--email", " Jane@Example.com"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == keyed_hash("jane@example.com", kind="email", key=b"k3y")
    result = runner.invoke(app, ["hash", "--phone", "+1 555 010 0000"])
    assert result.stdout.strip() == keyed_hash("+15550100000", kind="phone", key=b"k3y")


def test_holds_hash_needs_the_key_and_one_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLADLY_AUDIT_KEY", raising=False)
    result = runner.invoke(app, ["hash", "--email", "jane@example.com"])
    assert result.exit_code == 78  # a missing setting: configuration
    assert says(result.stderr, "GLADLY_AUDIT_KEY")
    monkeypatch.setenv("GLADLY_AUDIT_KEY", "k3y")
    assert runner.invoke(app, ["hash"]).exit_code == 2


@pytest.mark.parametrize("typed", ["(851) 555-0142", "851.555.0142", "+1 851-555-0142"])
def test_holds_hash_reads_phones_as_people_type_them(
    monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    monkeypatch.setenv("GLADLY_AUDIT_KEY", "k3y")
    result = runner.invoke(app, ["hash", "--phone", typed])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == keyed_hash("+18515550142", kind="phone", key=b"k3y")


def test_holds_hash_refuses_an_unreadable_phone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLADLY_AUDIT_KEY", "k3y")
    result = runner.invoke(app, ["hash", "--phone", "555-01"])
    assert result.exit_code == 2
    assert says(result.stderr, "not a phone number")
    assert "555-01" not in result.stderr
