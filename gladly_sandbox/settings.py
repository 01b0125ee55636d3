"""The server's run-time switches: rate limit, latency, faults, users and error-body quirks."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from gladly_sandbox.route_templates import ROUTE_TEMPLATES

ROLE_API_USER = "API_USER"
ROLE_COMPLIANCE_ADMIN = "COMPLIANCE_ADMIN"
ROLES = frozenset({ROLE_API_USER, ROLE_COMPLIANCE_ADMIN})

ADMIN_EMAIL = "admin@sandbox.example"
AGENT_EMAIL = "agent@sandbox.example"

RateLimitAlgorithm = Literal["fixed_window", "leaky_bucket"]
RATE_LIMIT_ALGORITHMS: tuple[str, ...] = ("fixed_window", "leaky_bucket")

# Fault keys name a route template under /api/v1 (as the stats show them) or "*" for every route.
ANY_ROUTE = "*"
API_PREFIX = "/api/v1"


def derive_token(seed: int, email: str) -> str:
    """A deterministic API token: the same seed gives the same token, so demos can hard-code it."""
    digest = hashlib.sha256(f"gladly-sandbox:{seed}:{email.lower()}".encode()).hexdigest()
    return f"sbx_{digest[:32]}"


@dataclass(frozen=True)
class SandboxUser:
    """A Gladly user whose API token the sandbox accepts (HTTP Basic: email + token)."""

    email: str
    token: str
    roles: frozenset[str] = frozenset({ROLE_API_USER})

    def has(self, role: str) -> bool:
        """Whether the user holds `role`."""
        return role in self.roles


def default_users(seed: int) -> list[SandboxUser]:
    """The Compliance Administrator API user and an agent who may only use the API."""
    return [
        SandboxUser(ADMIN_EMAIL, derive_token(seed, ADMIN_EMAIL), frozenset(ROLES)),
        SandboxUser(AGENT_EMAIL, derive_token(seed, AGENT_EMAIL), frozenset({ROLE_API_USER})),
    ]


@dataclass(frozen=True)
class FaultSpec:
    """How often one route (or every route) misbehaves; each rate is a probability in [0, 1]."""

    error_rate: float = 0.0  # answers 500, 502 or 503, chosen at random
    reset_rate: float = 0.0  # closes the connection with a TCP reset before any answer
    truncate_rate: float = 0.0  # file downloads only: full Content-Length, body cut short
    slow_first_byte_rate: float = 0.0  # waits `slow_first_byte_ms` before the first byte
    slow_first_byte_ms: float = 0.0
    # Answers 429 with `Ratelimit-Remaining-Second: 0`, as when another integration of the
    # organisation used up the shared per-method budget this second.
    throttle_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "error_rate",
            "reset_rate",
            "truncate_rate",
            "slow_first_byte_rate",
            "throttle_rate",
        ):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"faults: {name} must be a number between 0 and 1 (got {value!r})")
        if not _is_number(self.slow_first_byte_ms) or self.slow_first_byte_ms < 0:
            raise ValueError(
                "faults: slow_first_byte_ms must be a number >= 0 "
                f"(got {self.slow_first_byte_ms!r})"
            )

    @property
    def active(self) -> bool:
        """Whether any fault can fire."""
        return bool(
            self.error_rate
            or self.reset_rate
            or self.truncate_rate
            or self.slow_first_byte_rate
            or self.throttle_rate
        )


@dataclass
class ServerSettings:
    """Switches the server reads on every request; change them with `update` (validated, locked)."""

    rate_limit_per_second: float | None = 10.0  # per HTTP method, per organisation; None = off
    rate_limit_algorithm: RateLimitAlgorithm = "fixed_window"
    # The organisation's other integrations (CRM sync, chatbot): this many requests per second of
    # each method, evenly spaced, counted against the same per-method limit as ours.
    other_integrations_per_second: float = 0.0
    retry_after_header: bool = (
        False  # Gladly documents no Retry-After; switch on to send one on 429
    )
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # adds a uniform 0..jitter on top of latency_ms
    faults: dict[str, FaultSpec] = field(default_factory=dict)
    fault_seed: int = 42
    users: list[SandboxUser] = field(default_factory=lambda: default_users(42))
    quirk_object_errors: bool = True  # `{"errors": {...}}` where Gladly documents it
    quirk_bare_list_errors: bool = True  # `[{...}]` where Gladly documents it
    quirk_empty_404: bool = True  # 404 without a body where Gladly documents it
    limited_data_header_value: str = "true"
    # Reports API (POST /reports). Documented: 10 requests a minute and 2 at a time per
    # organisation; None or 0 switches a limit off. The minute is a rolling 60 seconds.
    report_rate_limit_per_minute: int | None = 10
    report_concurrency_limit: int | None = 2
    # ASSUMPTION (a public integration's note): Gladly cuts a report at 100k rows, silently.
    report_row_cap: int | None = 100_000
    report_latency_ms: float = 0.0  # held while the report is in flight (counts as concurrent)
    # ASSUMPTION (a public integration's note): a report without rows is an empty body, not even
    # the header line; False sends the header line alone.
    report_empty_body_when_no_rows: bool = True
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        values = normalise_settings({name: getattr(self, name) for name in setting_names()})
        check_others_below_limit(
            values["rate_limit_per_second"], values["other_integrations_per_second"]
        )
        for name, value in values.items():
            setattr(self, name, value)

    def update(self, **changes: Any) -> None:
        """Validate every change first, then apply them together under the lock."""
        unknown = sorted(set(changes) - set(setting_names()))
        if unknown:
            raise TypeError(
                f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(setting_names())}"
            )
        checked = normalise_settings(changes)
        with self._lock:
            check_others_below_limit(
                checked.get("rate_limit_per_second", self.rate_limit_per_second),
                checked.get("other_integrations_per_second", self.other_integrations_per_second),
            )
            for name, value in checked.items():
                setattr(self, name, value)

    def fault_for(self, route: str) -> FaultSpec | None:
        """The fault spec for a route template: its own entry, else "*", else none."""
        faults = self.faults
        if not faults:
            return None
        return faults.get(route) or faults.get(ANY_ROUTE)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-ready data (the control surface's GET /_sandbox/settings)."""
        with self._lock:
            data: dict[str, Any] = {name: getattr(self, name) for name in setting_names()}
        data["faults"] = {
            route: {f.name: getattr(spec, f.name) for f in fields(FaultSpec)}
            for route, spec in data["faults"].items()
        }
        data["users"] = [
            {"email": u.email, "token": u.token, "roles": sorted(u.roles)} for u in data["users"]
        ]
        return data


class SettingsConflict(ValueError):
    """Settings that are each valid but not together; `names` lists them."""

    def __init__(self, names: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.names = names


def check_others_below_limit(limit: float | None, others: float) -> None:
    """The other integrations must leave us some of the per-method limit (SettingsConflict)."""
    if limit is not None and others >= limit:
        raise SettingsConflict(
            ("other_integrations_per_second", "rate_limit_per_second"),
            f"other_integrations_per_second ({others:g}) must be below rate_limit_per_second "
            f"({limit:g}), or the others would use the whole budget: lower "
            "other_integrations_per_second or raise rate_limit_per_second",
        )


def setting_names() -> tuple[str, ...]:
    """The public field names of ServerSettings, in declaration order."""
    return _SETTING_NAMES


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false (got {value!r})")
    return value


def _require_non_negative(name: str, value: object) -> float:
    if not _is_number(value) or float(value) < 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a number >= 0 (got {value!r})")
    return float(value)  # type: ignore[arg-type]


def _parse_faults(value: object) -> dict[str, FaultSpec]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"faults must be a mapping of route template to fault spec (got {value!r})"
        )
    parsed: dict[str, FaultSpec] = {}
    valid = [f.name for f in fields(FaultSpec)]
    for raw_route, spec in value.items():
        if not isinstance(raw_route, str):
            raise ValueError(f"faults: keys must be route templates or '*' (got {raw_route!r})")
        route = raw_route.removeprefix(API_PREFIX) if raw_route != ANY_ROUTE else raw_route
        if route != ANY_ROUTE and route not in ROUTE_TEMPLATES:
            raise ValueError(
                f"faults: unknown route {raw_route!r}; valid: '*', {', '.join(ROUTE_TEMPLATES)}"
            )
        if isinstance(spec, FaultSpec):
            parsed[route] = spec
        elif isinstance(spec, Mapping):
            unknown = sorted(set(spec) - set(valid))
            if unknown:
                raise ValueError(
                    f"faults[{raw_route!r}]: unknown field(s) {', '.join(map(str, unknown))}; "
                    f"valid: {', '.join(valid)}"
                )
            parsed[route] = FaultSpec(**spec)
        else:
            raise ValueError(f"faults[{raw_route!r}] must be a FaultSpec or a mapping")
    return parsed


def _parse_users(value: object) -> list[SandboxUser]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping):
        raise ValueError("users must be a list of users")
    users: list[SandboxUser] = []
    for entry in value:
        if isinstance(entry, SandboxUser):
            user = entry
        elif isinstance(entry, Mapping):
            roles = entry.get("roles", [ROLE_API_USER])
            if not isinstance(roles, Iterable) or isinstance(roles, str):
                raise ValueError("users: roles must be a list of role names")
            user = SandboxUser(
                email=str(entry.get("email", "")),
                token=str(entry.get("token", "")),
                roles=frozenset(str(r) for r in roles),
            )
        else:
            raise ValueError(f"users: each user must be a SandboxUser or a mapping (got {entry!r})")
        if "@" not in user.email or not user.token:
            raise ValueError("users: each user needs an email address and a non-empty token")
        bad_roles = sorted(user.roles - ROLES)
        if bad_roles:
            raise ValueError(
                f"users: unknown role(s) {', '.join(bad_roles)}; valid: {', '.join(sorted(ROLES))}"
            )
        users.append(user)
    emails = [u.email.lower() for u in users]
    if len(set(emails)) != len(emails):
        raise ValueError("users: email addresses must be unique")
    return users


def normalise_settings(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check setting values (JSON or Python forms) and return them in their Python form.

    Raises ValueError naming the field for a bad value.
    """
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "rate_limit_per_second":
            if value is not None and (not _is_number(value) or value < 1):
                raise ValueError(
                    f"rate_limit_per_second must be a number >= 1, or null to switch the "
                    f"rate limit off (got {value!r})"
                )
            out[name] = None if value is None else float(value)
        elif name == "rate_limit_algorithm":
            if value not in RATE_LIMIT_ALGORITHMS:
                raise ValueError(
                    f"rate_limit_algorithm must be one of {', '.join(RATE_LIMIT_ALGORITHMS)} "
                    f"(got {value!r})"
                )
            out[name] = value
        elif name in ("report_rate_limit_per_minute", "report_concurrency_limit"):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(
                    f"{name} must be a whole number >= 1, or 0 / null to switch it off "
                    f"(got {value!r})"
                )
            out[name] = value or None
        elif name == "report_row_cap":
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(
                    "report_row_cap must be a whole number >= 0, or null for no cap "
                    f"(got {value!r})"
                )
            out[name] = value
        elif name == "other_integrations_per_second":
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise ValueError(
                    "other_integrations_per_second must be a number >= 0 (requests per second "
                    f"of each HTTP method; 0 = none) (got {value!r})"
                )
            out[name] = float(value)
        elif name in ("latency_ms", "latency_jitter_ms", "report_latency_ms"):
            out[name] = _require_non_negative(name, value)
        elif name == "fault_seed":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"fault_seed must be an integer (got {value!r})")
            out[name] = value
        elif name == "faults":
            out[name] = _parse_faults(value)
        elif name == "users":
            out[name] = _parse_users(value)
        elif name == "limited_data_header_value":
            if not isinstance(value, str) or not value or "\n" in value or "\r" in value:
                raise ValueError(
                    f"limited_data_header_value must be a non-empty one-line string (got {value!r})"
                )
            out[name] = value
        elif name in _BOOL_SETTINGS:
            out[name] = _require_bool(name, value)
        else:
            raise TypeError(f"unknown setting {name!r}; valid: {', '.join(setting_names())}")
    return out


_SETTING_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(ServerSettings) if not f.name.startswith("_")
)
_BOOL_SETTINGS = frozenset(
    {
        "retry_after_header",
        "quirk_object_errors",
        "quirk_bare_list_errors",
        "quirk_empty_404",
        "report_empty_body_when_no_rows",
    }
)
