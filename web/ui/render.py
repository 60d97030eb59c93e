"""Rendering pages: the Jinja2 environment (autoescape, StrictUndefined) and what every
template can use.

Every template gets:
- `t(message, **params)` / `tn(singular, plural, n, **params)`: the interface strings
  in the page's language (web/ui/i18n.py);
- `asset(path)`: the versioned URL of a file under static/ (web/ui/assets.py);
- `lang`, `dir`: the page's language and direction (for <html lang dir>);
- `user`: the signed-in user, or None; `csrf_token`: their session's token, or None;
- `browser_strings`: the catalog subset for static/js/i18n.js.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from inbox.models import User
from web.keys import USER_KEY
from web.sessions import CSRF_SECRET_KEY, SESSION_COOKIE_KEY, csrf_token
from web.ui.i18n import Translator, negotiate
from web.ui.keys import ASSETS_KEY, TRANSLATORS_KEY
from web.ui.languages import LANGUAGES, SOURCE_LANGUAGE

TEMPLATE_DIR = Path(__file__).parent / "templates"

# The page language of a request, chosen once (web/ui/render.py language_of).
LANGUAGE_KEY = web.RequestKey("ui_language", str)


def setup_templates(app: web.Application) -> None:
    """The template environment of the pages."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = lambda path: app[ASSETS_KEY].url(path)


def language_of(request: web.Request) -> str:
    """The page's language: the signed-in user's choice, else the browser's."""
    if (chosen := request.get(LANGUAGE_KEY)) is not None:
        return str(chosen)
    user: User | None = request.get(USER_KEY)
    language = user.language if user is not None else None
    if language not in LANGUAGES:
        language = negotiate(request.headers.get("Accept-Language", ""))
    chosen = language or SOURCE_LANGUAGE
    request[LANGUAGE_KEY] = chosen
    return chosen


def translator_of(request: web.Request) -> Translator:
    """The translator of the request's page language."""
    return request.app[TRANSLATORS_KEY][language_of(request)]


def page_csrf_token(request: web.Request) -> str | None:
    """The CSRF token of the session that signed this request in (None when anonymous)."""
    cookie = request.get(SESSION_COOKIE_KEY)
    return None if cookie is None else csrf_token(request.app[CSRF_SECRET_KEY], cookie)


def page_context(request: web.Request) -> dict[str, Any]:
    """What every template gets (see the module docstring)."""
    translator = translator_of(request)
    return {
        "t": translator.gettext,
        "tn": translator.ngettext,
        "lang": translator.language,
        "dir": translator.direction,
        "user": request.get(USER_KEY),
        "csrf_token": page_csrf_token(request),
        "browser_strings": dict(translator.browser),
    }


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """A page: `template` with the common context and `context`."""
    response = aiohttp_jinja2.render_template(
        template, request, {**page_context(request), **(context or {})}, status=status
    )
    return response


def error_page(request: web.Request, status: int) -> web.Response:
    """The app's own error page (404, 403…), in the page's language."""
    return render(request, "error.html", {"status": status}, status=status)
