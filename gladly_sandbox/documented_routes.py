"""Every /api/v1 route Gladly documents (method and path template), modelled or not."""

from __future__ import annotations

# Taken from Gladly's public REST specification (developer.gladly.com/rest, mid-2025, and its
# 2026 slices: the attachment download). Only the method and path of each operation, as data:
# a documented route the sandbox does not model answers 501 `not_modelled`, so a rehearsal can
# tell "the sandbox cannot show this" from Gladly's own 404 for a path Gladly does not have.
# Query strings the spec writes into two paths are dropped, and `:customAttributeId` is written
# as `{customAttributeId}` like every other parameter. The spec's `POST /gladly/webhook` is the
# customer's own endpoint that Gladly calls, not a Gladly route, so it is not listed.
DOCUMENTED_ROUTES: dict[str, frozenset[str]] = {
    template: frozenset(methods.split())
    for template, methods in (
        ("/agents", "GET"),
        ("/agents/{agentId}", "GET"),
        ("/agents/{agentId}/call-recorder", "GET PATCH"),
        ("/answers", "POST"),
        ("/answers/{answerId}", "DELETE GET PATCH"),
        ("/answers/{answerId}/languages/{language}/type/{type}", "DELETE GET PUT"),
        ("/audiences", "GET"),
        ("/campaigns/{campaignId}/recipient-collections", "POST"),
        ("/communications/custom-channels/{customChannelId}/messages", "POST"),
        ("/communications/custom-channels/{customChannelId}/messages/{messageId}/status", "PUT"),
        ("/communications/sms", "POST"),
        ("/conversation-items", "POST"),
        ("/conversation-items/{itemId}", "DELETE GET"),
        ("/conversation-items/{itemId}/attachments/{attachmentId}", "GET"),
        ("/conversation-items/{itemId}/media/recording", "GET"),
        ("/conversation-items/{itemId}/redact", "POST"),
        ("/conversation-items/{itemId}/reply", "POST"),
        ("/conversation-items/{itemId}/voice-transcript", "GET"),
        ("/conversations/{conversationId}", "GET PATCH"),
        ("/conversations/{conversationId}/items", "GET"),
        ("/conversations/{conversationId}/notes", "POST"),
        ("/conversations/{conversationId}/notes/{noteId}", "GET"),
        ("/conversations/{conversationId}/topics", "POST"),
        ("/conversations/{conversationId}/topics/{topicId}", "DELETE"),
        ("/custom-attributes/{customAttributeId}", "GET"),
        (
            "/customer-history/{customerId}/conversations/{conversationId}/custom-attributes",
            "POST",
        ),
        ("/customer-profiles", "GET POST"),
        ("/customer-profiles/{customerId}", "DELETE GET PATCH"),
        ("/customers/{customerId}/conversation-items", "POST"),
        ("/customers/{customerId}/conversation-items/{itemId}", "DELETE"),
        ("/customers/{customerId}/conversations", "GET"),
        ("/customers/{customerId}/tasks", "GET POST"),
        ("/events", "GET"),
        ("/export/jobs", "GET"),
        ("/export/jobs/{jobId}", "DELETE GET"),
        ("/export/jobs/{jobId}/files/{filename}", "GET"),
        ("/export/schedules", "GET"),
        ("/inboxes", "GET"),
        ("/inboxes/{inboxId}", "GET"),
        ("/message-automation/sessions/{sessionId}", "GET"),
        ("/message-automation/sessions/{sessionId}/close", "POST"),
        ("/message-automation/sessions/{sessionId}/handoff", "POST"),
        ("/message-automation/sessions/{sessionId}/messages", "GET POST"),
        ("/message-automation/sessions/{sessionId}/messages/{messageId}", "GET"),
        ("/message-automation/sessions/{sessionId}/typing-indicators", "POST"),
        ("/organization", "GET"),
        ("/orgs/{orgId}/answers", "GET"),
        ("/orgs/{orgId}/answers-search", "GET"),
        ("/orgs/{orgId}/answers/{answerId}", "GET"),
        ("/orgs/{orgId}/help-center/{helpCenterId}/answer-titles", "GET"),
        ("/reports", "POST"),
        ("/reports/work-session-events", "POST"),
        ("/tasks", "POST"),
        ("/tasks/{taskId}", "GET PATCH"),
        ("/tasks/{taskId}/comments", "GET POST"),
        ("/tasks/{taskId}/comments/{commentId}", "GET"),
        ("/teams", "GET"),
        ("/teams/{teamId}", "GET"),
        ("/topics", "GET POST"),
        ("/topics/{topicId}", "GET PATCH"),
        ("/user-identity-jwt", "POST"),
        ("/webhooks", "GET POST"),
        ("/webhooks/{webhookId}", "DELETE GET PATCH"),
    )
}
