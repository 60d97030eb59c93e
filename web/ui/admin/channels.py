"""Channels: connect a mailbox, a Twilio number, a Telegram bot, a web form; health,
pause and resume.

A placeholder until the section is built: each page says it is coming."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin.shell import admin_page, render_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/channels", channels_page)


@admin_page("channels")
async def channels_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "channels")
