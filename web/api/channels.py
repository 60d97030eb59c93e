"""Channels: connect a mailbox, a Twilio number, a bot or a web form (admins), list them (all).

Configuration is validated by the kind's model from the connector registry and stored
encrypted; secrets are never answered after creation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.config import SECRET_MASK, ChannelConfig
from connectors.registry import ConnectorSpec, spec_for
from connectors.telegram import lazy as telegram
from connectors.types import ChannelHealth, ChannelKind
from inbox.models import Role
from timeline.crypto import SecretBox, SecretBoxError
from timeline.events import Event
from timeline.models import Channel
from web import auth
from web.api import after, cut, path_id, publish
from web.api.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    ConnectionTest,
    ConnectionTestOut,
    Keyset,
    Page,
    PageQuery,
)
from web.errors import field_errors, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SECRET_BOX_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

logger = logging.getLogger(__name__)

routes = ApiRoutes(tag="channels")


class ProviderAccount(BaseModel):
    """Who the credentials belong to, as the provider names it (a Telegram bot's name)."""

    name: str
    username: str | None = Field(description="the handle, without @ (a Telegram bot's)")


class ChannelTestOut(ConnectionTestOut):
    """A connection test's answer, with the account the credentials open when the provider
    names it (a Telegram bot: shown so the admin can confirm it is the right bot)."""

    # Left out when the provider names no account, so the answer of the other kinds stays
    # {ok, checked, errors}.
    account: ProviderAccount | None = Field(default=None, exclude_if=lambda value: value is None)


# Checks that also name the account, for the kinds whose provider answers with one; the
# other kinds run the registry's plain check_connection.
AccountCheck = Callable[[ChannelConfig], Awaitable[tuple[dict[str, str], ProviderAccount | None]]]


async def _telegram_account(config: ChannelConfig) -> tuple[dict[str, str], ProviderAccount | None]:
    errors, bot = await telegram.describe_bot(config)
    account = None if bot is None else ProviderAccount(name=bot.name, username=bot.username)
    return errors, account


ACCOUNT_CHECKS: dict[ChannelKind, AccountCheck] = {ChannelKind.TELEGRAM: _telegram_account}


async def run_check(spec: ConnectorSpec, config: ChannelConfig) -> ChannelTestOut:
    """Test `config` against the provider: what failed by configuration key, and the
    account it opens where the provider names one."""
    if (account_check := ACCOUNT_CHECKS.get(spec.kind)) is not None:
        errors, account = await account_check(config)
        return ChannelTestOut(ok=not errors, checked=True, errors=errors, account=account)
    if spec.check_connection is None:
        return ChannelTestOut(ok=True, checked=False, errors={})
    errors = await spec.check_connection(config)
    return ChannelTestOut(ok=not errors, checked=True, errors=errors)


@routes.route(
    "GET", "/channels", summary="List channels", query=PageQuery, response=Page[ChannelOut]
)
async def list_channels(request: web.Request) -> web.Response:
    """Channels, oldest first."""
    query = parse_query(request, PageQuery)
    statement = select(Channel).order_by(Channel.created_at, Channel.id).limit(query.limit + 1)
    if (
        position := after(Channel.created_at, Channel.id, query.keyset, descending=False)
    ) is not None:
        statement = statement.where(position)
    if (visible := auth.visible_channel_ids(request)) is not None:
        statement = statement.where(Channel.id.in_(visible))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    box = request.app[SECRET_BOX_KEY]
    items = [_channel_out(row, masked_stored(box, row)) for row in page]
    return respond(request, Page[ChannelOut](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/channels",
    summary="Connect a channel (admins)",
    status=201,
    body=ChannelCreate,
    response=ChannelOut,
    errors=[403],
)
async def create_channel(request: web.Request) -> web.Response:
    """Store a new channel; generated secrets (a Telegram secret_token) are shown this once."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, ChannelCreate)
    spec = spec_for(body.kind)
    refuse_masks(spec, body.config)
    config = check_config(spec, body.config)
    await _check_on_save(spec, config)
    channel = Channel(
        kind=spec.kind.value,
        name=body.name,
        config_encrypted=request.app[SECRET_BOX_KEY].encrypt(config.model_dump(mode="json")),
        health=ChannelHealth.UNKNOWN.value,
    )
    async with request.app[SESSIONS_KEY]() as session:
        session.add(channel)
        await session.commit()
    await publish(request, _event("channel.created", channel))
    return respond(request, _channel_out(channel, config.masked(config.generated_secrets)))


@routes.route("GET", "/channels/{id}", summary="Get a channel", response=ChannelOut, errors=[404])
async def get_channel(request: web.Request) -> web.Response:
    """One channel, secrets masked."""
    channel_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        channel = await visible_channel(session, request, channel_id)
    return respond(
        request, _channel_out(channel, masked_stored(request.app[SECRET_BOX_KEY], channel))
    )


@routes.route(
    "PATCH",
    "/channels/{id}",
    summary="Rename or reconfigure a channel (admins)",
    body=ChannelUpdate,
    response=ChannelOut,
    errors=[403, 404],
)
async def update_channel(request: web.Request) -> web.Response:
    """Merge the given config onto the stored one and validate the result again."""
    auth.require_role(request, Role.ADMIN)
    channel_id = path_id(request)
    body = await parse_body(request, ChannelUpdate)
    box = request.app[SECRET_BOX_KEY]
    shown: dict[str, Any] | None = None
    async with request.app[SESSIONS_KEY]() as session:
        channel = await visible_channel(session, request, channel_id)
        if body.config is not None:
            shown = await _reconfigure(box, channel, body.config)
        if body.name is not None:
            channel.name = body.name
        if body.paused is not None:
            channel.paused = body.paused
        await session.commit()
    await publish(request, _event("channel.updated", channel))
    if shown is None:
        shown = masked_stored(box, channel)
    return respond(request, _channel_out(channel, shown))


@routes.route(
    "DELETE",
    "/channels/{id}",
    summary="Delete a channel and its conversations (admins)",
    status=204,
    errors=[403, 404],
)
async def delete_channel(request: web.Request) -> web.Response:
    """Remove a channel; its conversations and messages go with it."""
    auth.require_role(request, Role.ADMIN)
    channel_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session:
        channel = await visible_channel(session, request, channel_id)
        await session.delete(channel)
        await session.commit()
    await publish(request, _event("channel.deleted", channel))
    return respond(request)


@routes.route(
    "POST",
    "/channels/{id}/test",
    summary="Test a channel's connection (admins)",
    body=ConnectionTest,
    response=ChannelTestOut,
    errors=[403, 404],
)
async def test_channel(request: web.Request) -> web.Response:
    """Log in to the provider with the stored configuration (or with `config` merged onto
    it, unsaved) and answer what failed, by configuration key."""
    auth.require_role(request, Role.ADMIN)
    channel_id = path_id(request)
    body = await parse_body(request, ConnectionTest) if request.can_read_body else ConnectionTest()
    box = request.app[SECRET_BOX_KEY]
    async with request.app[READ_SESSIONS_KEY]() as session:
        channel = await visible_channel(session, request, channel_id)
    spec = spec_for(channel.kind)
    config = check_config(spec, _merge(spec, stored_values(box, channel), body.config or {}))
    return respond(request, await run_check(spec, config))


async def visible_channel(
    session: AsyncSession, request: web.Request, channel_id: uuid.UUID
) -> Channel:
    """The channel, or 404 when it does not exist or the caller may not see it."""
    channel = await session.get(Channel, channel_id)
    visible = auth.visible_channel_ids(request)
    if channel is None or (visible is not None and channel.id not in visible):
        raise not_found("no such channel")
    return channel


async def _reconfigure(box: SecretBox, channel: Channel, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge `changes` onto the stored config, validate and store it; returns it as shown."""
    spec = spec_for(channel.kind)
    stored = stored_values(box, channel)
    config = check_config(spec, _merge(spec, stored, changes))
    await _check_on_save(spec, config)
    channel.config_encrypted = box.encrypt(config.model_dump(mode="json"))
    # A secret generated anew (a cleared Telegram secret_token) is shown, as at creation.
    reveal = frozenset(
        name for name in config.generated_secrets if getattr(config, name) != stored.get(name)
    )
    return config.masked(reveal)


async def _check_on_save(spec: ConnectorSpec, config: ChannelConfig) -> None:
    """422 with the provider's refusal, for kinds whose configuration is checked on save."""
    if not spec.check_on_save or spec.check_connection is None:
        return
    errors = await spec.check_connection(config)
    if errors:
        raise validation_failed(
            {f"config.{name}": reason for name, reason in errors.items()},
            message="the provider refused this configuration",
        )


def check_config(spec: ConnectorSpec, values: dict[str, Any]) -> ChannelConfig:
    """`values` validated by the kind's model; 422 with `config.<key>` field errors."""
    try:
        return spec.config.model_validate(values)
    except ValidationError as err:
        raise validation_failed(field_errors(err, prefix="config")) from err


def refuse_masks(spec: ConnectorSpec, values: dict[str, Any]) -> None:
    """422 for a secret sent as the mask the API answers in its place."""
    # A secret of "***" is an API answer sent back by mistake, not a credential.
    masked = {
        f"config.{name}": "send the real value; *** stands for a stored secret"
        for name in spec.config.secret_fields
        if values.get(name) == SECRET_MASK
    }
    if masked:
        raise validation_failed(masked)


def _merge(spec: ConnectorSpec, stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stored)
    for name, value in changes.items():
        if name in spec.config.secret_fields and value == SECRET_MASK:
            continue  # the client echoed the mask: keep the stored secret
        merged[name] = value
    return merged


def stored_values(box: SecretBox, channel: Channel) -> dict[str, Any]:
    """The stored configuration; empty when it cannot be decrypted, so that an admin can
    still send a complete new one after the secret key changed."""
    try:
        return box.decrypt(channel.config_encrypted)
    except SecretBoxError as err:
        logger.warning("channel %s: %s", channel.id, err)
        return {}


def masked_stored(box: SecretBox, channel: Channel) -> dict[str, Any] | None:
    """The stored configuration as the API shows it; None when it cannot be read."""
    try:
        config = spec_for(channel.kind).config.model_validate(box.decrypt(channel.config_encrypted))
    except (SecretBoxError, ValidationError) as err:
        logger.warning("channel %s: stored configuration is unreadable: %s", channel.id, err)
        return None
    return config.masked()


def _channel_out(channel: Channel, config: dict[str, Any] | None) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        kind=spec_for(channel.kind).kind,
        name=channel.name,
        config=config,
        health=channel.health,
        health_reason=channel.health_reason,
        last_sync_at=channel.last_sync_at,
        created_at=channel.created_at,
        paused=channel.paused,
        running=spec_for(channel.kind).factory is not None and not channel.paused,
    )


def _event(kind: str, channel: Channel) -> Event:
    return Event(kind, {"channel_id": str(channel.id), "kind": channel.kind})
