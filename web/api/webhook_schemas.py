"""Request and response models of the outgoing webhooks API."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StrictBool

from inbox.webhook_address import MAX_URL_LENGTH
from inbox.webhook_delivery import DELIVERY_HEADER, EVENT_HEADER
from inbox.webhook_kinds import ALL, EVENT_KINDS
from inbox.webhook_models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from inbox.webhook_signing import SIGNATURE_HEADER
from web.api.schemas import Input, PageQuery, Text

MAX_EVENT_TYPES = len(EVENT_KINDS) + 1
MAX_DESCRIPTION = 500
# Up to a week of overlap for a rotation: long enough to roll out a new secret.
MAX_GRACE_SECONDS = 7 * 24 * 3600

_EVENT_TYPES_HELP = (
    f'timeline event kinds to receive, or ["{ALL}"] for all (also kinds added later); '
    "GET /api/v1/webhooks/event-types lists them"
)


def _event_types(value: list[str]) -> list[str]:
    unknown = [kind for kind in value if kind != ALL and kind not in EVENT_KINDS]
    if unknown:
        raise ValueError(
            f"unknown event type(s) {unknown[:5]}; see GET /api/v1/webhooks/event-types"
        )
    if not value:
        raise ValueError(f'name at least one event type, or "{ALL}"')
    return [ALL] if ALL in value else list(dict.fromkeys(value))


def _description(value: str) -> str | None:
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must be one line without control characters")
    return value.strip() or None


EventTypes = Annotated[list[str], AfterValidator(_event_types)]
Description = Annotated[Text, AfterValidator(_description)]


class WebhookCreate(Input):
    """A subscription: where to post and which events. Its signing secret is generated
    and returned once, in the answer."""

    url: Text = Field(
        max_length=MAX_URL_LENGTH,
        description="https URL to POST to (http only with SWITCHBOARD_ENV=development)",
    )
    event_types: EventTypes = Field(max_length=MAX_EVENT_TYPES, description=_EVENT_TYPES_HELP)
    description: Description | None = Field(default=None, max_length=MAX_DESCRIPTION)
    active: StrictBool = True


class WebhookUpdate(Input):
    """Changes to a subscription; what is left out stays. Switching one on again clears
    why it was switched off."""

    url: Text | None = Field(default=None, max_length=MAX_URL_LENGTH)
    event_types: EventTypes | None = Field(
        default=None, max_length=MAX_EVENT_TYPES, description=_EVENT_TYPES_HELP
    )
    description: Description | None = Field(default=None, max_length=MAX_DESCRIPTION)
    active: StrictBool | None = None


class SecretRotation(Input):
    """A new signing secret; the old one may keep signing for a while (both signatures
    are sent) so receivers can switch without losing deliveries. 0: it stops at once."""

    previous_secret_valid_seconds: int = Field(default=0, ge=0, le=MAX_GRACE_SECONDS)


class WebhookOut(BaseModel):
    """A subscription (its secret is never shown again after creation or rotation)."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    inactive_reason: str | None = Field(
        description="why the system switched it off (the receiver answered 410 Gone)"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="until when the secret before the last rotation also signs"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, row: WebhookSubscription) -> dict[str, Any]:
        return {
            "id": row.id,
            "url": row.url,
            "event_types": list(row.event_types),
            "description": row.description,
            "active": row.active,
            "inactive_reason": row.inactive_reason,
            "previous_secret_expires_at": row.previous_secret_expires_at,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    @classmethod
    def of(cls, row: WebhookSubscription) -> WebhookOut:
        return cls(**cls.fields_of(row))


class WebhookWithSecret(WebhookOut):
    """A subscription just created or given a new secret: the secret, shown this once."""

    secret: str = Field(
        description=f"signs every delivery ({SIGNATURE_HEADER}); store it now, it is not "
        "shown again"
    )

    @classmethod
    def with_secret(cls, row: WebhookSubscription, secret: str) -> WebhookWithSecret:
        return cls(**cls.fields_of(row), secret=secret)


class EventTypeOut(BaseModel):
    """A timeline event kind a subscription can name."""

    name: str
    description: str


class EventTypeList(BaseModel):
    """Every subscribable kind."""

    items: list[EventTypeOut]


class WebhookQuery(PageQuery):
    """Filters of the subscription list."""

    active: bool | None = None


class DeliveryQuery(PageQuery):
    """Filters of a subscription's delivery log."""

    status: DeliveryStatus | None = None


class WebhookDeliveryOut(BaseModel):
    """One delivery: what was (or will be) posted and what became of it."""

    id: uuid.UUID = Field(description=f"also sent as {DELIVERY_HEADER}: receivers dedupe on it")
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event: str = Field(description=f"the event kind, also sent as {EVENT_HEADER}")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="when it is tried next (queued only)")
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="the body posted; {} once its contact was erased")

    @classmethod
    def of(cls, row: WebhookDelivery) -> WebhookDeliveryOut:
        queued = row.status == DeliveryStatus.QUEUED.value
        return cls(
            id=row.id,
            subscription_id=row.subscription_id,
            event_id=row.event_id,
            event=row.event_kind,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if queued else None,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            last_attempt_at=row.last_attempt_at,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            payload=row.payload,
        )


class LastDeliveryOut(BaseModel):
    """A subscription's newest delivery, as the list shows it (no payload)."""

    id: uuid.UUID
    event: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_attempt_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookDelivery) -> LastDeliveryOut:
        return cls(
            id=row.id,
            event=row.event_kind,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_attempt_at=row.last_attempt_at,
            created_at=row.created_at,
        )


class WebhookListItem(WebhookOut):
    """A subscription in the list, with how its newest delivery went."""

    last_delivery: LastDeliveryOut | None = Field(description="null until its first delivery")
