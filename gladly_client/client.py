"""`GladlyClient`: one organisation's API, with its resources hanging off it as nouns."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import requests
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from gladly_client.constants import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_REQUESTS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_API_TOKEN,
    ENV_BASE_URL,
    ENV_REQUESTS_PER_SECOND,
    ENV_USER,
    REPORT_CONCURRENCY,
    REPORTS_PER_MINUTE,
)
from gladly_client.errors import GladlySettingsError
from gladly_client.resources import (
    ConversationsResource,
    CustomersResource,
    EventsResource,
    ExportsResource,
    ItemsResource,
    OrganisationResource,
    ReportsResource,
)
from gladly_client.throttle import ReportGate, Throttle
from gladly_client.transport import Transport


class GladlySettings(BaseSettings):
    """Connection settings read from `GLADLY_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="GLADLY_", extra="ignore")

    base_url: str = ""
    user: str = ""
    api_token: SecretStr = SecretStr("")
    requests_per_second: float = Field(default=DEFAULT_REQUESTS_PER_SECOND, gt=0)


class GladlyClient:
    """A careful client for one Gladly organisation.

    Every request is paced by a per-method throttle shared by all threads using this client,
    retried on 429/5xx/connection errors with jittered backoff, and mapped to one exception
    tree rooted at `GladlyError`. Nothing personal or secret reaches a log or an error message.

        client = GladlyClient("https://yourorg.gladly.com", "api-user@yourorg.com", token)
        for customer in client.customers.find(email="someone@example.com"):
            client.customers.delete(customer.id)
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        api_token: str | SecretStr,
        *,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        reports_per_minute: int = REPORTS_PER_MINUTE,
    ) -> None:
        token = api_token.get_secret_value() if isinstance(api_token, SecretStr) else api_token
        self._transport = Transport(
            base_url=base_url,
            user=user,
            api_token=token,
            requests_per_second=requests_per_second,
            timeout=timeout,
            max_attempts=max_attempts,
            sleep=sleep,
            clock=clock,
            session=session,
        )
        self.customers = CustomersResource(self._transport)
        self.conversations = ConversationsResource(self._transport)
        self.items = ItemsResource(self._transport)
        self.exports = ExportsResource(self._transport, spool_dir)
        self.org = OrganisationResource(self._transport)
        self.reports = ReportsResource(
            self._transport,
            ReportGate(reports_per_minute, REPORT_CONCURRENCY, clock=clock, sleep=sleep),
        )
        self.events = EventsResource(self._transport)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: object) -> GladlyClient:
        """Build a client from `GLADLY_BASE_URL`, `GLADLY_USER` and `GLADLY_API_TOKEN`.

        `GLADLY_REQUESTS_PER_SECOND` optionally overrides the pace. Keyword options are passed
        through to the constructor. Missing or invalid variables are named in one
        `GladlySettingsError` (a `ValueError`).
        """
        source = dict(os.environ if env is None else env)
        try:
            # model_validate reads only `source`, never the process environment behind it.
            settings = GladlySettings.model_validate(
                {
                    key: source[var]
                    for key, var in (
                        ("base_url", ENV_BASE_URL),
                        ("user", ENV_USER),
                        ("api_token", ENV_API_TOKEN),
                        ("requests_per_second", ENV_REQUESTS_PER_SECOND),
                    )
                    if var in source
                }
            )
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise GladlySettingsError(
                f"invalid Gladly settings in the environment ({fields}); "
                f"{ENV_REQUESTS_PER_SECOND} must be a positive number"
            ) from None
        missing = [
            var
            for var, value in (
                (ENV_BASE_URL, settings.base_url),
                (ENV_USER, settings.user),
                (ENV_API_TOKEN, settings.api_token.get_secret_value()),
            )
            if not value
        ]
        if missing:
            raise GladlySettingsError(
                "missing Gladly settings: set " + ", ".join(missing) + " in the environment "
                "(the organisation host, the API user's email and its API token)"
            )
        kwargs: dict[str, object] = {"requests_per_second": settings.requests_per_second}
        kwargs.update(options)
        return cls(
            settings.base_url,
            settings.user,
            settings.api_token,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def base_url(self) -> str:
        """The organisation host this client talks to."""
        return self._transport.base_url

    @property
    def requests_per_second(self) -> float:
        """The configured per-method request budget."""
        return self._transport.throttle.configured_rate

    @property
    def throttle(self) -> Throttle:
        """The shared per-method throttle (exposed for monitoring)."""
        return self._transport.throttle

    def close(self) -> None:
        """Release pooled connections."""
        self._transport.close()

    def __enter__(self) -> GladlyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Neither the token nor the user's email: both are secrets or personal data.
        return (
            f"GladlyClient(base_url={self.base_url!r}, "
            f"requests_per_second={self.requests_per_second}, api_token='***')"
        )
