"""Policy actions: a discriminated union on `type`, one action type per resource."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from retention_policies.vocab import (
    ACTION_BY_RESOURCE,
    CONTENT_TYPES,
    DELETABLE_TYPES,
    REDACTABLE_TYPES,
    choice_error,
    problem,
)


class _ActionBase(BaseModel):
    """Shared config; checks that the action applies to the policy's resource."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("type", check_fields=False)
    @classmethod
    def _type_fits_resource(cls, value: str, info: ValidationInfo) -> str:
        ctx = info.context
        resource = ctx.get("resource") if isinstance(ctx, dict) else None
        if isinstance(resource, str) and resource in ACTION_BY_RESOURCE:
            expected = ACTION_BY_RESOURCE[resource]
            if value != expected:
                raise problem(
                    "action {value} does not apply to resource {resource}",
                    value=repr(value),
                    resource=repr(resource),
                    choices=[expected],
                )
        return value


class DeleteCustomer(_ActionBase):
    """Deletes the customer profile and everything of theirs (Gladly refuses while a conversation
    is OPEN or WAITING; `close_open_conversations: true` closes them first).

    ```yaml
    actions:
      - type: delete_customer
        close_open_conversations: false
    ```
    """

    type: Literal["delete_customer"]
    close_open_conversations: StrictBool = False


class EraseConversation(_ActionBase):
    """Erases a conversation as far as the API allows: redacts every redactable item, deletes
    CUSTOMER_ACTIVITY items, and lists the rest as not erasable via the API (no endpoint deletes a
    conversation, a note or an attachment).

    ```yaml
    actions:
      - type: erase_conversation
    ```
    """

    type: Literal["erase_conversation"]


class EraseContact(_ActionBase):
    """Erases a contact (a chat session, a call or voicemail, an email or SMS exchange) as far
    as the API allows: redacts each of its items the API can redact, deletes its
    CUSTOMER_ACTIVITY items, and lists the rest (notes, topic changes inside it) as not
    erasable via the API. Which items are a contact's: retention_policies.contacts.

    ```yaml
    actions:
      - type: erase_contact
    ```
    """

    type: Literal["erase_contact"]


class RedactItems(_ActionBase):
    """Redacts the matched items whose type is in `content_types` (default: every type the API
    can redact). CUSTOMER_ACTIVITY may be listed too: the API cannot redact those, so they are
    deleted instead. Any other type is an error.

    ```yaml
    actions:
      - type: redact_items
        content_types: [PHONE_CALL, VOICEMAIL]
    ```
    """

    type: Literal["redact_items"]
    content_types: list[str] = Field(default_factory=lambda: sorted(REDACTABLE_TYPES), min_length=1)

    @field_validator("content_types")
    @classmethod
    def _erasable(cls, value: list[str]) -> list[str]:
        for content_type in value:
            if content_type not in REDACTABLE_TYPES | DELETABLE_TYPES:
                raise choice_error(
                    "content type",
                    content_type,
                    REDACTABLE_TYPES | DELETABLE_TYPES,
                    why=" for redact_items: the API can neither redact nor delete it"
                    if content_type in CONTENT_TYPES
                    else "",
                )
        return sorted(set(value))


Action = Annotated[
    Union[DeleteCustomer, EraseConversation, EraseContact, RedactItems],  # noqa: UP007
    Field(discriminator="type"),
]

ACTION_TYPES: dict[str, type[BaseModel]] = {
    "delete_customer": DeleteCustomer,
    "erase_conversation": EraseConversation,
    "erase_contact": EraseContact,
    "redact_items": RedactItems,
}
