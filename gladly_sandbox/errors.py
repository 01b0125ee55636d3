"""The sandbox's API error: status, Gladly error code, and which documented body shape it takes."""

from __future__ import annotations

from typing import Any, Literal

# Gladly's own examples are inconsistent about error bodies (api.md "Error body"); each quirk names
# one documented inconsistency. The server applies a quirk only while its switch is on, and falls
# back to the documented `{"errors": [...]}` list otherwise.
Quirk = Literal["object", "bare_list", "empty"]


class ApiError(Exception):
    """An error answer: HTTP status, Gladly `code`, `detail`, optional `attr` / `meta`, quirk."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        attr: str | None = None,
        meta: dict[str, Any] | None = None,
        quirk: Quirk | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.attr = attr
        self.meta = meta
        self.quirk = quirk
        self.headers = headers or {}

    def entry(self) -> dict[str, Any]:
        """One error entry as Gladly writes it."""
        entry: dict[str, Any] = {}
        if self.attr is not None:
            entry["attr"] = self.attr
        entry["code"] = self.code
        entry["detail"] = self.detail
        if self.meta is not None:
            entry["meta"] = self.meta
        return entry
