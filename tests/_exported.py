"""An organisation's first export, made once per test session and copied for every test.

Exporting a sandbox organisation into a fresh archive takes seconds (many small Parquet files,
each fsynced), and dozens of erasure tests start from the very same one: the same seed, the
same frozen clock, so the same customers, conversations and export jobs. The first test that
asks runs the real export; later ones get a byte-for-byte copy of its archive, and a sandbox
built from the same seed, which is the same organisation. Tests that need the export itself
call `run_export` directly and are not served from here.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from gladly_archive import Archive
from gladly_archive.catalog import write_catalog
from gladly_client import GladlyClient
from gladly_sandbox import Sandbox
from ingest.exporting import run_export
from tests._policies import NOW

_TEMPLATES: dict[tuple[object, ...], Path] = {}
_FOLDER: list[Path] = []


def exported_archive(sb: Sandbox, root: Path, key: tuple[object, ...]) -> None:
    """Fill `root` with the export of `sb`, built for `key` (seed, customers, ...) once."""
    template = _TEMPLATES.get(key)
    if template is not None:
        shutil.copytree(template, root, symlinks=True)
        # The catalog's views name their files by absolute path: made anew for this root.
        archive = Archive.open(root)
        write_catalog(archive.fs, archive.root)
        return
    with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=500.0) as client:
        report = run_export(client, Archive.open(root), now=NOW)
    assert report.failed == []
    if not _FOLDER:
        _FOLDER.append(Path(tempfile.mkdtemp(prefix="gladly-test-exports-")))
        atexit.register(shutil.rmtree, _FOLDER[0], True)
    template = _FOLDER[0] / str(len(_TEMPLATES))
    shutil.copytree(root, template, symlinks=True)
    _TEMPLATES[key] = template
