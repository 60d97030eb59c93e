"""The guard and the layout of the admin and manager screens.

    @admin_page("channels")
    async def channels_page(request: web.Request) -> web.StreamResponse:
        return render_admin(request, "admin/channels/index.html", "channels", {...})

`admin_page(section)` signs the visitor in (else to /login?next=) and allows only the
roles of that section's nav entry (nav.py); others get the 403 page. `render_admin`
renders a template that extends admin.html, with the sidebar of what this user may open.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from inbox.models import User
from web.keys import USER_KEY
from web.ui.admin.nav import item, visible_nav
from web.ui.render import render, translator_of
from web.ui.session import PageHandler, login_redirect, signed_in_user


def admin_page(section: str) -> Callable[[PageHandler], PageHandler]:
    """A page of `section`: signed in, and of a role its nav entry allows."""
    roles = item(section).roles

    def decorate(handler: PageHandler) -> PageHandler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = await signed_in_user(request)
            if user is None:
                raise login_redirect(request)
            if user.role not in roles:
                raise web.HTTPForbidden()
            return await handler(request)

        return guarded

    return decorate


def current_user(request: web.Request) -> User:
    """The signed-in user of an admin page."""
    return request[USER_KEY]


def render_admin(
    request: web.Request,
    template: str,
    section: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """An admin page: `template` (extending admin.html) with the sidebar and `context`."""
    user = current_user(request)
    t = translator_of(request).gettext
    return render(
        request,
        template,
        {"nav": visible_nav(user.role, t), "section": section, **(context or {})},
        status=status,
    )
