"""A deletion run that SIGKILLs itself right after its k-th audit event (for the crash tests).

    python -m tests.erasure._crash_child PLAN_DIR HASH ROOT BASE_URL USER TOKEN KILL_AT

Prints one JSON line per acknowledged audit event (run, seq, hash) before going on, so the
parent knows exactly which events the log promised to keep. KILL_AT 0 never kills.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from audit_log import writer as audit


def main() -> None:
    plan_dir, plan_hash, root, base_url, user, token, kill_at = sys.argv[1:8]
    limit = int(kill_at)
    count = 0
    original = audit.AuditRun.append

    def append(self: audit.AuditRun, **fields: Any) -> dict[str, Any]:
        nonlocal count
        event = original(self, **fields)
        count += 1
        print(json.dumps({"run": event["run_id"], "seq": event["seq"], "hash": event["hash"]}))
        sys.stdout.flush()
        if count == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return event

    audit.AuditRun.append = append  # type: ignore[method-assign]
    from erasure.execution import run_apply
    from gladly_client import GladlyClient

    with GladlyClient(base_url, user, token, requests_per_second=500.0) as client:
        report = run_apply(plan_dir, plan_hash, root=root, dry_run=False, client=client)
    print(json.dumps({"done": report.counts(), "chain_ok": report.chain_ok}))


if __name__ == "__main__":
    main()
