"""Which allocator pyarrow uses in a process that loads it through the archive.

Arrow chooses its default memory pool once, when pyarrow loads, from the environment variable
``ARROW_DEFAULT_MEMORY_POOL``: later calls (``pyarrow.set_memory_pool``) change the pool of
Python-level calls only, not the one the Parquet reader, writer and compute kernels use inside.
So this module sets the variable before pyarrow loads, and imports nothing that loads it.

jemalloc, not the default mimalloc: measured on bench/export_end_to_end.py (a first export of
306 k items: convert, commit, fold, facts), the whole run peaks at 542-553 MB with jemalloc
against 713-742 MB with mimalloc, in the same time (mimalloc keeps the pages that a phase freed
and the next phase cannot reuse). A value the user set wins, and so does a process that loaded
pyarrow first (its pool is chosen already); Linux only, where pyarrow's wheels have jemalloc.
The entry points (the CLI's package, gladly_pipeline, and the flows' package) import this
module before anything else, since some of the modules they load read Parquet without the
archive (audit_log) and would otherwise load pyarrow first.
"""

from __future__ import annotations

import os
import sys

__all__ = ["POOL_VARIABLE", "choose_default_pool"]

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def choose_default_pool() -> str | None:
    """Ask for jemalloc as Arrow's default pool, unless too late or chosen already; returns the
    pool this process will use if pyarrow is not yet loaded, else None."""
    if "pyarrow" in sys.modules:
        return None
    if sys.platform == "linux":
        os.environ.setdefault(POOL_VARIABLE, "jemalloc")
    return os.environ.get(POOL_VARIABLE)


choose_default_pool()
