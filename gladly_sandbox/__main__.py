"""`python -m gladly_sandbox`: serve a local Gladly sandbox until Ctrl-C."""

from __future__ import annotations

import sys

from gladly_sandbox.serve import main

if __name__ == "__main__":
    sys.exit(main())
