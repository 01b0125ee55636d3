"""Exit codes of every `gladly-pipeline` command, so a scheduler can act on them."""

from __future__ import annotations

EXIT_OK = 0
# A job, a call or a check failed.
EXIT_FAILED = 1
# Bad settings or options: nothing was changed.
EXIT_USAGE = 2
# The run did its work but something needs a person: a job about to expire unarchived, a failed
# Gladly export, or a customer export that Gladly's API limits cut short.
EXIT_ATTENTION = 3
