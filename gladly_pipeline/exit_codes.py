"""Exit codes of every `gladly-pipeline` command, so a scheduler can act on them."""

from __future__ import annotations

EXIT_OK = 0
# A job, a call or a check failed.
EXIT_FAILED = 1
# A bad option, argument or input file, or a refusal (a plan not approved, a request not clean):
# nothing was changed.
EXIT_USAGE = 2
# The run did its work but something needs a person: a job about to expire unarchived, a failed
# Gladly export, a customer export that Gladly's API limits cut short, or a detail `unlink`
# removed that is back on a profile (refilled).
EXIT_ATTENTION = 3
# Gladly could not be reached or kept failing (sysexits EX_UNAVAILABLE): connection refused, a
# host name that does not resolve, a timeout, 5xx or 429 after every retry. Try again later.
EXIT_UNAVAILABLE = 69
# The configuration is wrong (sysexits EX_CONFIG): a GLADLY_* setting missing or invalid, a base
# URL that cannot be one, credentials Gladly refuses (401), an API user without the permission or
# role a call needs (403), an archive root that is a file or that this user cannot read.
EXIT_CONFIG = 78
# Interrupted (Ctrl-C, SIGINT): what was finished is kept; the same command again resumes.
EXIT_INTERRUPTED = 130
