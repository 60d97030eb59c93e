"""The agent web app served at / (issue 10): server-rendered pages, small JavaScript
modules, the websocket for live updates."""

from __future__ import annotations

from aiohttp import web


def add_ui(app: web.Application) -> None:
    """Registers the pages and static files of the web app (web role)."""
