"""The error for a wrong GLADLY_* setting this room reads: audit key, region, archive root."""

from __future__ import annotations

__all__ = ["SettingError"]


class SettingError(ValueError):
    """A setting is missing or cannot work: raised before anything is read or changed because of
    it. The message names the setting and how to fix it, never a secret's value."""
