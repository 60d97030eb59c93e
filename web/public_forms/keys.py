"""Application state of the public form endpoints, each behind one typed key."""

from __future__ import annotations

from aiohttp import web

from web.public_forms.lookup import FormLookup
from web.public_forms.throttle import Throttle

FORM_LOOKUP_KEY = web.AppKey("public_form_lookup", FormLookup)
THROTTLE_KEY: web.AppKey[Throttle] = web.AppKey("public_form_throttle")
# The render-token key, derived from the installation's secret (token.py).
TOKEN_SECRET_KEY = web.AppKey("public_form_token_secret", bytes)
