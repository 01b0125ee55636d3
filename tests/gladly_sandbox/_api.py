"""Raw HTTP against one sandbox with the admin's credentials (the sandbox's own tests)."""

from __future__ import annotations

from typing import Any

import requests

from gladly_sandbox import Sandbox


class Api:
    """`api(method, path, **requests_kwargs)` → the sandbox's answer to `/api/v1<path>`."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.session = requests.Session()
        self.session.auth = (sb.user, sb.api_token)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(
            method, f"{self.sb.base_url}/api/v1{path}", timeout=30, **kwargs
        )
