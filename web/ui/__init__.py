"""The agent web app served at / (issue 10): server-rendered pages, small JavaScript
modules, the websocket for live updates.

| route | what |
|---|---|
| GET / | to /inbox |
| GET, POST /login | sign in (`?next=` a local path) |
| POST /logout | sign out (the form's CSRF token) |
| GET /account, POST /account/password, POST /account/language | the user's account |
| GET /inbox?view=<key> | the three-pane app on a view of the conversation list |
| GET /conversations/{id} | the same, with one conversation open |
| GET /messages/{id}/frame | an email's sanitized HTML for the thread's sandboxed frame |
| GET /static/<version>/<path> | static files (web/ui/assets.py) |
| /contacts…, /pipeline, /reports, /settings/… | the admin and manager screens (web/ui/admin/) |
| GET, POST /invitations/{token} | set a password from an invitation (public) |

How the pieces fit, and how to add a page: web/ui/README.md.
"""

from __future__ import annotations

from aiohttp import web

from web.errors import ERROR_WORDING_KEY
from web.ui import app_pages, auth_pages, message_frames
from web.ui.admin import add_admin
from web.ui.assets import PREFIX, scan, static_handler
from web.ui.error_wording import word_error
from web.ui.i18n import load_translators
from web.ui.keys import ASSETS_KEY, TRANSLATORS_KEY
from web.ui.render import setup_templates
from web.ui.security import page_middleware


def add_ui(app: web.Application) -> None:
    """Registers the pages and static files of the web app (web role)."""
    assets = scan()
    app[ASSETS_KEY] = assets
    app[TRANSLATORS_KEY] = load_translators()
    app[ERROR_WORDING_KEY] = word_error
    setup_templates(app)
    app.middlewares.append(page_middleware)
    router = app.router
    router.add_get(PREFIX + "/{version}/{path:.+}", static_handler(assets))
    router.add_get("/", app_pages.root)
    router.add_get("/login", auth_pages.login_form)
    router.add_post("/login", auth_pages.login)
    router.add_post("/logout", auth_pages.logout)
    router.add_get("/account", auth_pages.account)
    router.add_post("/account/password", auth_pages.change_password)
    router.add_post("/account/language", auth_pages.set_language)
    router.add_get("/inbox", app_pages.inbox)
    router.add_get("/conversations/{id}", app_pages.conversation)
    router.add_get("/messages/{id}/frame", message_frames.message_frame)
    add_admin(router)
