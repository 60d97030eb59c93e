"""Channel administration beyond CRUD (issue 11, the channels screen): testing a
configuration before the channel exists, and the webhook URLs to paste into a provider.
Pausing and resuming is PATCH /channels/{id} with `paused` (channels.py)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, Field

from connectors.registry import spec_for
from connectors.types import ChannelKind
from inbox.models import Role
from timeline.models import Channel
from web import auth
from web.api import path_id
from web.api.channels import (
    ChannelTestOut,
    check_config,
    refuse_masks,
    run_check,
    stored_values,
    visible_channel,
)
from web.api.schemas import Input
from web.keys import READ_SESSIONS_KEY, SECRET_BOX_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_body, respond

routes = ApiRoutes(tag="channels")


class ChannelDraft(Input):
    """A configuration to test before connecting the channel, as POST /channels takes it."""

    kind: ChannelKind
    config: dict[str, Any] = Field(default_factory=dict)


class ChannelEndpointsOut(BaseModel):
    """The addresses a provider calls for this channel (null: it calls none)."""

    inbound_url: str | None = Field(description="where the provider posts incoming messages")
    status_url: str | None = Field(description="where the provider posts delivery reports")
    automatic: bool = Field(
        description="true when the hub registers the addresses with the provider itself "
        "(Telegram's setWebhook); false when an admin pastes them into the provider's console"
    )
    public: bool = Field(
        description="false when the addresses name this machine or a private network "
        "(SWITCHBOARD_PUBLIC_URL unset?), which a provider on the internet cannot reach"
    )


@routes.route(
    "POST",
    "/channels/test",
    summary="Test a configuration before connecting it (admins)",
    body=ChannelDraft,
    response=ChannelTestOut,
    errors=[403],
)
async def test_draft(request: web.Request) -> web.Response:
    """Log in to the provider with a configuration that is not saved: 422 when it is not
    even valid, else what the provider refused by configuration key (and the Telegram
    bot's name)."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, ChannelDraft)
    spec = spec_for(body.kind)
    refuse_masks(spec, body.config)
    return respond(request, await run_check(spec, check_config(spec, body.config)))


@routes.route(
    "GET",
    "/channels/{id}/endpoints",
    summary="The webhook URLs to paste into the provider (admins)",
    response=ChannelEndpointsOut,
    errors=[403, 404],
)
async def channel_endpoints(request: web.Request) -> web.Response:
    """Twilio's inbound and status callback URLs; a Telegram webhook's URL."""
    auth.require_role(request, Role.ADMIN)
    channel_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        channel = await visible_channel(session, request, channel_id)
    return respond(request, endpoints_of(request.app, channel))


def endpoints_of(app: web.Application, channel: Channel) -> ChannelEndpointsOut:
    """The webhook URLs of `channel` under the app's public address."""
    settings = app[SETTINGS_KEY]
    mode = stored_values(app[SECRET_BOX_KEY], channel).get("mode")
    return webhook_urls(
        settings.base_url, channel.id, spec_for(channel.kind).kind, telegram_mode=mode
    )


def webhook_urls(
    base_url: str, channel_id: uuid.UUID, kind: ChannelKind, *, telegram_mode: str | None = None
) -> ChannelEndpointsOut:
    """The paths the connectors serve (connectors/sms/webhook.py, connectors/telegram/
    connector.py) under `base_url`."""
    public = _reachable_from_internet(base_url)
    if kind is ChannelKind.SMS:
        inbound = f"{base_url}/webhooks/twilio/{channel_id}"
        return ChannelEndpointsOut(
            inbound_url=inbound, status_url=f"{inbound}/status", automatic=False, public=public
        )
    if kind is ChannelKind.TELEGRAM and telegram_mode == "webhook":
        return ChannelEndpointsOut(
            inbound_url=f"{base_url}/webhooks/telegram/{channel_id}",
            status_url=None,
            automatic=True,
            public=public,
        )
    return ChannelEndpointsOut(inbound_url=None, status_url=None, automatic=False, public=public)


def _reachable_from_internet(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a DNS name: assume it is public
    return address.is_global
