"""`GladlyClient`: one organisation's API, with its resources hanging off it as nouns."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import requests
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from gladly_client.budget import (
    LockFilePaces,
    RateBudget,
    budget_file_from_env,
    budget_kind,
    rate_from_env,
)
from gladly_client.constants import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_REQUESTS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_API_TOKEN,
    ENV_BASE_URL,
    ENV_RATE_BUDGET,
    ENV_USER,
    REPORT_CONCURRENCY,
    REPORTS_PER_MINUTE,
)
from gladly_client.errors import GladlySettingsError
from gladly_client.pacing import Priority
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
        budget: RateBudget | None = None,
        priority: Priority = Priority.PROMPT,
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
            budget=budget,
            priority=priority,
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

        The pace is `GLADLY_RATE_SHARE` (default 0.8) of Gladly's 10 requests per second, or
        `GLADLY_REQUESTS_PER_SECOND` when set. Unless a `budget` option is given, it is shared
        as `GLADLY_RATE_BUDGET` says (`gladly_client.budget`): by default with every process
        of this machine through a lock file. Keyword options are passed through to the
        constructor. Missing or invalid variables are named in one `GladlySettingsError`.
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
                    )
                    if var in source
                }
            )
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise GladlySettingsError(
                f"invalid Gladly settings in the environment ({fields})"
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
        rate = rate_from_env(source)
        kind = budget_kind(source)
        kwargs: dict[str, object] = {"requests_per_second": rate}
        kwargs.update(options)
        if "budget" not in options and kind == "prefect":
            raise GladlySettingsError(
                f"{ENV_RATE_BUDGET}=prefect: the Prefect budget is built by the flows and the "
                "command line (flows.rate_budget); unset it, or set it to machine or process"
            )
        if "budget" not in options and kind in ("auto", "machine"):
            clock = options.get("clock", time.monotonic)
            sleep = options.get("sleep", time.sleep)
            paces = LockFilePaces(budget_file_from_env(source, settings.base_url))
            kwargs["budget"] = Throttle(rate, clock=clock, sleep=sleep, store=paces)  # type: ignore[arg-type]
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
    def throttle(self) -> RateBudget:
        """The rate budget every request of this client draws from (exposed for monitoring)."""
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
