"""A local Gladly organisation served over HTTP on loopback: `with Sandbox() as sb: ...`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gladly_sandbox.clock import SandboxClock
    from gladly_sandbox.exports import ExportSpec
    from gladly_sandbox.orgdata import OrgSpec
    from gladly_sandbox.sandbox import Sandbox
    from gladly_sandbox.settings import FaultSpec, SandboxUser, ServerSettings

__all__ = [
    "ExportSpec",
    "FaultSpec",
    "OrgSpec",
    "Sandbox",
    "SandboxClock",
    "SandboxUser",
    "ServerSettings",
]

# Imported on first use, so `import gladly_sandbox.ids` stays light and a spawned child process
# only loads what it serves.
_HOMES = {
    "ExportSpec": "gladly_sandbox.exports",
    "FaultSpec": "gladly_sandbox.settings",
    "OrgSpec": "gladly_sandbox.orgdata",
    "Sandbox": "gladly_sandbox.sandbox",
    "SandboxClock": "gladly_sandbox.clock",
    "SandboxUser": "gladly_sandbox.settings",
    "ServerSettings": "gladly_sandbox.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gladly_sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
