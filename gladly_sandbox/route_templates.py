"""The /api/v1 route templates the sandbox serves, in the route table's order."""

from __future__ import annotations

# Fault keys and the stats name routes by these; route_table.ROUTES serves exactly these, in order.
ROUTE_TEMPLATES: tuple[str, ...] = (
    "/customer-profiles",
    "/customer-profiles/{customerId}",
    "/customers/{customerId}/conversations",
    "/customers/{customerId}/conversation-items/{itemId}",
    "/conversations/{conversationId}",
    "/conversations/{conversationId}/items",
    "/conversations/{conversationId}/topics",
    "/conversation-items/{itemId}",
    "/conversation-items/{itemId}/redact",
    "/conversation-items/{itemId}/voice-transcript",
    "/conversation-items/{itemId}/media/recording",
    "/agents",
    "/topics",
    "/inboxes",
    "/export/schedules",
    "/export/jobs",
    "/export/jobs/{jobId}",
    "/export/jobs/{jobId}/files/{filename}",
    "/reports",
    "/events",
)
