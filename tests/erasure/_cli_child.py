"""`gladly-pipeline ARGS…` in a child process that SIGKILLs itself right after its k-th audit
event (for the crash tests of one-off erasure through the command line).

    python -m tests.erasure._cli_child KILL_AT ARGS…

KILL_AT 0 never kills. Gladly's settings and the audit key come from the environment.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from audit_log import writer


def main() -> None:
    kill_at = int(sys.argv[1])
    if kill_at > 0:
        original = writer.AuditRun.append
        count = 0

        def append(self: writer.AuditRun, **fields: Any) -> dict[str, Any]:
            nonlocal count
            event = original(self, **fields)
            count += 1
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return event

        writer.AuditRun.append = append  # type: ignore[method-assign]
    from gladly_pipeline.cli import app

    app(sys.argv[2:], prog_name="gladly-pipeline")


if __name__ == "__main__":
    main()
