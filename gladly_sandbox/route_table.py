"""The /api/v1 route table: Gladly's documented paths, the sandbox's handlers, and matching."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from gladly_sandbox import routes as r
from gladly_sandbox.documented_routes import DOCUMENTED_ROUTES
from gladly_sandbox.route_templates import ROUTE_TEMPLATES
from gladly_sandbox.routes import Handler


@dataclass(frozen=True)
class Route:
    """One path template, its handlers by HTTP method, and the methods Gladly documents on it."""

    template: str
    handlers: Mapping[str, Handler]
    documented: frozenset[str] = frozenset()
    download: bool = False  # file downloads are the only answers a truncate fault can cut
    segments: tuple[str | None, ...] = ()  # literal segment, or None for a parameter
    names: tuple[str, ...] = ()  # parameter names in order

    @property
    def modelled(self) -> bool:
        """Whether the sandbox serves any method of this path (False: only documented)."""
        return bool(self.handlers)

    @property
    def allow(self) -> str:
        """The `Allow` header value for a 405: every method Gladly has on this path."""
        return ", ".join(sorted(self.documented | set(self.handlers)))

    def not_modelled(self, method: str) -> bool:
        """Whether Gladly documents `method` here but the sandbox has no handler for it."""
        return method in self.documented and method not in self.handlers


def _route(template: str, handlers: Mapping[str, Handler], *, download: bool = False) -> Route:
    parts = template.strip("/").split("/")
    segments = tuple(None if p.startswith("{") else p for p in parts)
    names = tuple(p[1:-1] for p in parts if p.startswith("{"))
    documented = DOCUMENTED_ROUTES.get(template, frozenset())
    return Route(template, dict(handlers), documented, download, segments, names)


ROUTES: tuple[Route, ...] = (
    _route("/customer-profiles", {"GET": r.find_customers, "POST": r.create_customer}),
    _route(
        "/customer-profiles/{customerId}",
        {"GET": r.get_customer, "PATCH": r.update_customer, "DELETE": r.delete_customer},
    ),
    _route("/customers/{customerId}/conversations", {"GET": r.list_conversations}),
    _route(
        "/customers/{customerId}/conversation-items/{itemId}", {"DELETE": r.delete_customer_item}
    ),
    _route(
        "/conversations/{conversationId}",
        {"GET": r.get_conversation, "PATCH": r.update_conversation},
    ),
    _route("/conversations/{conversationId}/items", {"GET": r.list_items}),
    _route("/conversations/{conversationId}/topics", {"POST": r.add_topics}),
    _route("/conversation-items/{itemId}", {"GET": r.get_item, "DELETE": r.delete_item}),
    _route("/conversation-items/{itemId}/redact", {"POST": r.redact_item}),
    _route("/conversation-items/{itemId}/voice-transcript", {"GET": r.voice_transcript}),
    _route("/conversation-items/{itemId}/media/recording", {"GET": r.recording}),
    _route("/agents", {"GET": r.list_agents}),
    _route("/topics", {"GET": r.list_topics}),
    _route("/inboxes", {"GET": r.list_inboxes}),
    _route("/export/schedules", {"GET": r.list_schedules}),
    _route("/export/jobs", {"GET": r.list_jobs}),
    _route("/export/jobs/{jobId}", {"GET": r.get_job, "DELETE": r.delete_job}),
    _route("/export/jobs/{jobId}/files/{filename}", {"GET": r.export_file}, download=True),
    _route("/reports", {"POST": r.create_report}),
    _route("/events", {"GET": r.list_events}),
)
if tuple(route.template for route in ROUTES) != ROUTE_TEMPLATES:
    raise ImportError(
        "route_table.ROUTES and route_templates.ROUTE_TEMPLATES list different routes"
    )
for _r in ROUTES:
    if set(_r.handlers) - _r.documented:
        # A handler for a call Gladly does not document would rehearse something Gladly lacks.
        raise ImportError(f"route_table.ROUTES serves undocumented methods on {_r.template}")

# Paths Gladly documents that the sandbox does not serve at all: every method answers 501.
UNMODELLED: tuple[Route, ...] = tuple(
    _route(template, {}) for template in DOCUMENTED_ROUTES if template not in ROUTE_TEMPLATES
)

# Routes grouped by segment count, so matching compares a handful of literals per request.
_BY_LENGTH: dict[int, tuple[Route, ...]] = {}
for _r in (*ROUTES, *UNMODELLED):
    _BY_LENGTH[len(_r.segments)] = (*_BY_LENGTH.get(len(_r.segments), ()), _r)


def match_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a path under /api/v1 (e.g. "/agents") and its decoded parameters.

    Modelled routes come first; a path only Gladly's documentation knows matches an unmodelled
    route (no handlers); a path Gladly does not document matches nothing.
    """
    parts = path[1:].split("/") if path.startswith("/") else path.split("/")
    for route in _BY_LENGTH.get(len(parts), ()):
        values: list[str] = []
        for segment, part in zip(route.segments, parts, strict=True):
            if segment is None:
                if not part:
                    break
                values.append(unquote(part))
            elif segment != part:
                break
        else:
            return route, dict(zip(route.names, values, strict=True))
    return None
