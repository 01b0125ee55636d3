"""Where `Sandbox(**options)` go: OrgSpec, ExportSpec, ServerSettings or Organisation switches."""

from __future__ import annotations

import ipaddress
from dataclasses import fields
from typing import Any

from gladly_sandbox.control import ORG_SWITCHES
from gladly_sandbox.exports import ExportSpec
from gladly_sandbox.orgdata import OrgSpec
from gladly_sandbox.settings import FaultSpec, SandboxUser, setting_names

_EXPLICIT = ("seed", "customers", "now")  # OrgSpec fields that are Sandbox parameters


def is_loopback_host(host: str) -> bool:
    """Whether `host` names the loopback interface (the sandbox serves nowhere else)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def option_names() -> dict[str, tuple[str, ...]]:
    """Valid `Sandbox(**options)` names, by where they go."""
    return {
        "OrgSpec": tuple(f.name for f in fields(OrgSpec) if f.name not in _EXPLICIT),
        "ExportSpec": tuple(f.name for f in fields(ExportSpec) if f.name != "seed"),
        "ServerSettings": setting_names(),
        "Organisation": ORG_SWITCHES,
    }


def split_options(
    options: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Options by destination: OrgSpec, ExportSpec, ServerSettings, Organisation switches.

    An unknown name raises TypeError listing every valid one.
    """
    names = option_names()
    unknown = sorted(set(options) - {n for group in names.values() for n in group})
    if unknown:
        valid = "; ".join(
            f"{group}: {', '.join(group_names)}" for group, group_names in names.items()
        )
        raise TypeError(f"unknown Sandbox option(s) {', '.join(unknown)}. Valid options — {valid}")
    groups = [{k: v for k, v in options.items() if k in names[g]} for g in names]
    return groups[0], groups[1], groups[2], groups[3]


def to_control_json(value: Any) -> Any:
    """Python option values in the control surface's JSON form."""
    if isinstance(value, FaultSpec):
        return {f.name: getattr(value, f.name) for f in fields(FaultSpec)}
    if isinstance(value, SandboxUser):
        return {"email": value.email, "token": value.token, "roles": sorted(value.roles)}
    if isinstance(value, dict):
        return {k: to_control_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_control_json(v) for v in value]
    return value
