"""The app key of the websocket hub."""

from __future__ import annotations

from aiohttp import web

from web.realtime.hub import Hub

HUB_KEY = web.AppKey("realtime_hub", Hub)
