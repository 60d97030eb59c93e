"""Channels (admins): the list with each channel's health, last successful sync and pause
or resume; connecting a mailbox, a Twilio number, a Telegram bot or a web form; a
channel's page to change its settings, see its webhook URLs, test it and delete it.

The pages are rendered here from the database; their scripts (static/js/admin/
channels*.js) act through the REST API: POST /channels/test and /channels/{id}/test,
POST /channels, PATCH and DELETE /channels/{id} (web/api/channels.py, channel_admin.py).
"""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import select

from connectors.registry import spec_for
from connectors.types import ChannelKind
from timeline.models import Channel
from web.api.channel_admin import endpoints_of
from web.api.channels import masked_stored
from web.keys import READ_SESSIONS_KEY, SECRET_BOX_KEY
from web.ui.admin.channels_view import (
    KINDS,
    channel_row,
    form_values,
    kind_choices,
    kind_title,
    stored_secrets,
)
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import translator_of

SECTION = "channels"
UUID_PATTERN = "[0-9a-fA-F-]{36}"


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/channels", channels_page)
    router.add_get("/settings/channels/new", choose_kind_page)
    router.add_get("/settings/channels/new/{kind}", connect_page)
    router.add_get(f"/settings/channels/{{id:{UUID_PATTERN}}}", channel_page)


@admin_page(SECTION)
async def channels_page(request: web.Request) -> web.StreamResponse:
    """Every channel: kind, name, health, last successful sync, paused or not."""
    t = translator_of(request).gettext
    box = request.app[SECRET_BOX_KEY]
    async with request.app[READ_SESSIONS_KEY]() as session:
        channels = (await session.scalars(select(Channel).order_by(Channel.created_at))).all()
    rows = [channel_row(channel, masked_stored(box, channel), t) for channel in channels]
    return render_admin(
        request,
        "admin/channels/index.html",
        SECTION,
        {
            "rows": rows,
            "kinds": kind_choices(t),
            "deleted": request.query.get("deleted") == "1",
        },
    )


@admin_page(SECTION)
async def choose_kind_page(request: web.Request) -> web.StreamResponse:
    """The four kinds of channel to connect."""
    t = translator_of(request).gettext
    return render_admin(request, "admin/channels/new.html", SECTION, {"kinds": kind_choices(t)})


@admin_page(SECTION)
async def connect_page(request: web.Request) -> web.StreamResponse:
    """The form connecting a channel of one kind."""
    kind = _kind_of(request.match_info["kind"])
    t = translator_of(request).gettext
    return render_admin(
        request,
        "admin/channels/connect.html",
        SECTION,
        {
            "kind": kind.value,
            "kind_title": kind_title(kind, t),
            "values": {},
            "stored": frozenset(),
            "checks": spec_for(kind).check_connection is not None,
        },
    )


@admin_page(SECTION)
async def channel_page(request: web.Request) -> web.StreamResponse:
    """One channel: its state, webhook URLs, settings, and deleting it."""
    t = translator_of(request).gettext
    async with request.app[READ_SESSIONS_KEY]() as session:
        channel = await session.get(Channel, uuid.UUID(request.match_info["id"]))
    if channel is None:
        raise web.HTTPNotFound()
    row = channel_row(channel, masked_stored(request.app[SECRET_BOX_KEY], channel), t)
    return render_admin(
        request,
        "admin/channels/channel.html",
        SECTION,
        {
            "row": row,
            "kind": row.kind.value,
            "kind_title": kind_title(row.kind, t),
            "values": form_values(row.config),
            "stored": stored_secrets(row.config),
            "checks": spec_for(row.kind).check_connection is not None,
            "endpoints": endpoints_of(request.app, channel),
            "connected": request.query.get("connected") == "1",
        },
    )


def _kind_of(value: str) -> ChannelKind:
    try:
        kind = ChannelKind(value)
    except ValueError:
        raise web.HTTPNotFound() from None
    if kind not in KINDS:
        raise web.HTTPNotFound()
    return kind
