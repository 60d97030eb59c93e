"""The public web form endpoints under /forms/ (placeholder: filled by issue 8)."""

from __future__ import annotations

from aiohttp import web


def add_public_routes(app: web.Application) -> None:
    """Add the public /forms/{key} routes to `app`."""
