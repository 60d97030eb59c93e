"""Outgoing webhook subscriptions and their delivery log (issue 9), for admins.

A subscription names a URL and the timeline event kinds it wants; every delivery is
signed with the subscription's secret, which is generated here and shown only in the
answer that created (or rotated) it. Deliveries are queued and posted by the worker
(inbox/webhook_fanout.py, inbox/webhook_delivery.py); their log is read here, and one
can be queued again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import Role
from inbox.webhook_address import url_problem
from inbox.webhook_delivery import encode_secret, redeliver
from inbox.webhook_kinds import EVENT_KINDS
from inbox.webhook_models import WebhookDelivery, WebhookSubscription
from inbox.webhook_signing import new_secret
from timeline.models import utcnow
from web import auth
from web.api import after, cut, path_id
from web.api.schemas import Keyset, Page
from web.api.webhook_schemas import (
    DeliveryQuery,
    EventTypeList,
    EventTypeOut,
    LastDeliveryOut,
    SecretRotation,
    WebhookCreate,
    WebhookDeliveryOut,
    WebhookListItem,
    WebhookOut,
    WebhookQuery,
    WebhookUpdate,
    WebhookWithSecret,
)
from web.errors import ApiError, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SECRET_BOX_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

routes = ApiRoutes(tag="webhooks")


def _check_url(request: web.Request, url: str) -> None:
    production = request.app[SETTINGS_KEY].env == "production"
    if (problem := url_problem(url, production=production)) is not None:
        raise validation_failed({"url": problem})


async def _subscription(
    session: AsyncSession, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, subscription_id, with_for_update=for_update)
    if row is None:
        raise not_found("no such webhook")
    return row


@routes.route(
    "GET",
    "/webhooks/event-types",
    summary="The event kinds a webhook can subscribe to (admins)",
    response=EventTypeList,
    errors=[403],
)
async def list_webhook_event_types(request: web.Request) -> web.Response:
    """Every timeline event kind with what it records."""
    auth.require_role(request, Role.ADMIN)
    items = [EventTypeOut(name=name, description=text) for name, text in EVENT_KINDS.items()]
    return respond(request, EventTypeList(items=items))


@routes.route(
    "GET",
    "/webhooks",
    summary="List webhook subscriptions, oldest first (admins)",
    query=WebhookQuery,
    response=Page[WebhookListItem],
    errors=[403],
)
async def list_webhooks(request: web.Request) -> web.Response:
    """The subscriptions, optionally only (in)active ones, each with its newest delivery."""
    auth.require_role(request, Role.ADMIN)
    query = parse_query(request, WebhookQuery)
    table = WebhookSubscription
    log = WebhookDelivery
    # The newest delivery of each subscription in one statement: a correlated look-up on
    # the log's (subscription_id, created_at, id) index, not a query per subscription.
    newest = (
        select(log.id)
        .where(log.subscription_id == table.id)
        .order_by(log.created_at.desc(), log.id.desc())
        .limit(1)
        .correlate(table)
        .scalar_subquery()
    )
    statement = select(table, newest).order_by(table.created_at, table.id).limit(query.limit + 1)
    if (position := after(table.created_at, table.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    if query.active is not None:
        statement = statement.where(table.active.is_(query.active))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.execute(statement)).all()
        page, next_cursor = cut(
            rows, query.limit, lambda row: Keyset(at=row[0].created_at, id=row[0].id)
        )
        wanted = [delivery_id for _, delivery_id in page if delivery_id is not None]
        deliveries = {
            row.id: LastDeliveryOut.of(row)
            for row in await session.scalars(select(log).where(log.id.in_(wanted)))
        }
    items = [
        WebhookListItem(**WebhookOut.fields_of(row), last_delivery=deliveries.get(delivery_id))
        for row, delivery_id in page
    ]
    return respond(request, Page[WebhookListItem](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/webhooks",
    summary="Subscribe a URL to events (admins); the signing secret is shown this once",
    status=201,
    body=WebhookCreate,
    response=WebhookWithSecret,
    errors=[403],
)
async def create_webhook(request: web.Request) -> web.Response:
    """A new subscription; it receives the events recorded from now on (no history)."""
    user = auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, WebhookCreate)
    _check_url(request, body.url)
    secret = new_secret()
    now = utcnow()
    row = WebhookSubscription(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        active=body.active,
        secret_encrypted=encode_secret(request.app[SECRET_BOX_KEY], secret),
        created_by=user.id,
        created_at=now,
        updated_at=now,
    )
    async with request.app[SESSIONS_KEY]() as session:
        session.add(row)
        await session.commit()
    return respond(request, WebhookWithSecret.with_secret(row, secret))


@routes.route(
    "GET",
    "/webhooks/{id}",
    summary="Get a webhook subscription (admins)",
    response=WebhookOut,
    errors=[403, 404],
)
async def get_webhook(request: web.Request) -> web.Response:
    """One subscription, without its secret."""
    auth.require_role(request, Role.ADMIN)
    subscription_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        row = await _subscription(session, subscription_id)
    return respond(request, WebhookOut.of(row))


@routes.route(
    "PATCH",
    "/webhooks/{id}",
    summary="Change a webhook subscription, or switch it off or on (admins)",
    body=WebhookUpdate,
    response=WebhookOut,
    errors=[403, 404],
)
async def update_webhook(request: web.Request) -> web.Response:
    """Apply the changes given; the secret stays."""
    auth.require_role(request, Role.ADMIN)
    subscription_id = path_id(request)
    body = await parse_body(request, WebhookUpdate)
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "active"):
        if name in changes and changes[name] is None:
            raise validation_failed({name: "must not be null"})
    if body.url is not None:
        _check_url(request, body.url)
    async with request.app[SESSIONS_KEY]() as session:
        row = await _subscription(session, subscription_id, for_update=True)
        if body.url is not None:
            row.url = body.url
        if body.event_types is not None:
            row.event_types = body.event_types
        if "description" in changes:
            row.description = body.description
        if body.active is not None:
            row.active = body.active
            if body.active:
                row.inactive_reason = None
        row.updated_at = utcnow()
        await session.commit()
    return respond(request, WebhookOut.of(row))


@routes.route(
    "POST",
    "/webhooks/{id}/rotate-secret",
    summary="Give a webhook a new signing secret, shown this once (admins)",
    body=SecretRotation,
    response=WebhookWithSecret,
    errors=[403, 404],
)
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """For a leaked secret (0 s: the old one stops at once) or a routine change (a grace
    period in which deliveries carry both signatures)."""
    auth.require_role(request, Role.ADMIN)
    subscription_id = path_id(request)
    body = await parse_body(request, SecretRotation)
    box = request.app[SECRET_BOX_KEY]
    secret = new_secret()
    now = utcnow()
    async with request.app[SESSIONS_KEY]() as session:
        row = await _subscription(session, subscription_id, for_update=True)
        if body.previous_secret_valid_seconds > 0:
            row.previous_secret_encrypted = row.secret_encrypted
            row.previous_secret_expires_at = now + timedelta(
                seconds=body.previous_secret_valid_seconds
            )
        else:
            row.previous_secret_encrypted = None
            row.previous_secret_expires_at = None
        row.secret_encrypted = encode_secret(box, secret)
        row.updated_at = now
        await session.commit()
    return respond(request, WebhookWithSecret.with_secret(row, secret))


@routes.route(
    "DELETE",
    "/webhooks/{id}",
    summary="Delete a webhook subscription and its delivery log (admins)",
    status=204,
    errors=[403, 404],
)
async def delete_webhook(request: web.Request) -> web.Response:
    """Nothing more is posted to it; queued deliveries go with it."""
    auth.require_role(request, Role.ADMIN)
    subscription_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session:
        row = await _subscription(session, subscription_id, for_update=True)
        await session.delete(row)
        await session.commit()
    return respond(request)


@routes.route(
    "GET",
    "/webhooks/{id}/deliveries",
    summary="A webhook's deliveries, newest first (admins)",
    query=DeliveryQuery,
    response=Page[WebhookDeliveryOut],
    errors=[403, 404],
)
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    """The delivery log: status, attempts, the last answer or error, and the payload."""
    auth.require_role(request, Role.ADMIN)
    subscription_id = path_id(request)
    query = parse_query(request, DeliveryQuery)
    table = WebhookDelivery
    statement = (
        select(table)
        .where(table.subscription_id == subscription_id)
        .order_by(table.created_at.desc(), table.id.desc())
        .limit(query.limit + 1)
    )
    if (position := after(table.created_at, table.id, query.keyset, descending=True)) is not None:
        statement = statement.where(position)
    if query.status is not None:
        statement = statement.where(table.status == query.status.value)
    async with request.app[READ_SESSIONS_KEY]() as session:
        await _subscription(session, subscription_id)
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    items = [WebhookDeliveryOut.of(row) for row in page]
    return respond(request, Page[WebhookDeliveryOut](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/webhooks/deliveries/{id}/redeliver",
    summary="Queue a delivery again now, under the same delivery id (admins)",
    response=WebhookDeliveryOut,
    errors=[403, 404, 409],
)
async def redeliver_webhook(request: web.Request) -> web.Response:
    """Post it again (with fresh attempts), e.g. after fixing a receiver."""
    auth.require_role(request, Role.ADMIN)
    delivery_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session:
        row = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None:
            raise not_found("no such delivery")
        if not row.payload:
            raise ApiError(409, "conflict", "its contact was erased: there is nothing to send")
        await redeliver(session, delivery_id, utcnow())
        await session.commit()
        await session.refresh(row)
    return respond(request, WebhookDeliveryOut.of(row))
