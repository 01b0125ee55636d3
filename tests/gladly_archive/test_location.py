"""The archive root: a file or a directory this user cannot reach is refused before any I/O."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gladly_archive.location import ArchiveRootError, check_archive_root
from gladly_archive.settings import SettingError


def test_a_directory_a_new_path_and_a_uri_are_fine(tmp_path: Path) -> None:
    check_archive_root(str(tmp_path))
    check_archive_root(str(tmp_path / "not" / "yet"))
    check_archive_root("s3://bucket/prefix")


@pytest.mark.parametrize(
    ("relative", "message"),
    [("file", "is a file, not a directory"), ("file/below", "lies under a file")],
)
def test_a_file_is_refused_naming_the_settings(tmp_path: Path, relative: str, message: str) -> None:
    (tmp_path / "file").write_text("not an archive")
    with pytest.raises(ArchiveRootError, match=message) as caught:
        check_archive_root(str(tmp_path / relative))
    assert "GLADLY_PIPELINE_ROOT" in str(caught.value)
    assert isinstance(caught.value, SettingError)


def test_a_root_this_user_cannot_reach_or_read_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "archive").mkdir(parents=True)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        locked.chmod(0o755)
        pytest.skip("this user reads every directory (root with its capabilities)")
    try:
        with pytest.raises(ArchiveRootError, match="cannot be reached"):
            check_archive_root(str(locked / "archive"))
        with pytest.raises(ArchiveRootError, match="cannot be read"):
            check_archive_root(str(locked))
    finally:
        locked.chmod(0o755)
