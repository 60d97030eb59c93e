"""App and request state of the web app's pages, each behind one typed key."""

from __future__ import annotations

from aiohttp import web

from web.ui.assets import Assets
from web.ui.i18n import Translator

ASSETS_KEY = web.AppKey("ui_assets", Assets)
TRANSLATORS_KEY: web.AppKey[dict[str, Translator]] = web.AppKey("ui_translators")
