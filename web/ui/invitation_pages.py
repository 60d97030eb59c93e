"""The set-password page of an invitation: /invitations/{token} (public, no session).

The invitee chooses a password under the account page's rules; the link is used up and
they are signed in, exactly as the sign-in form would (web/ui/auth_pages.py). A link
that is unknown, expired, used, replaced or of a deactivated account gets a page saying
so and what to do. The token is its own proof, so the form needs no CSRF token; it must
still come from our origin (as the sign-in form).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from inbox.invitations import INVITATION_LIFETIME, LinkState, look_up, redeem
from inbox.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, UserError, hash_password
from inbox.users import check_password as password_rules
from timeline.models import utcnow
from web.csrf import check_origin
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.sessions import new_session, set_session_cookie
from web.ui.render import render, translator_of
from web.ui.session import HOME

MAX_FIELD = MAX_PASSWORD_LENGTH


def _gone_page(request: web.Request, state: LinkState) -> web.Response:
    t = translator_of(request).gettext
    title, advice = {
        LinkState.UNKNOWN: (
            t("This invitation link does not work"),
            t("Check that you opened the whole link, or ask an admin for a new one."),
        ),
        LinkState.EXPIRED: (
            t("This invitation has expired"),
            t(
                "Invitation links work for {days} days. Ask an admin for a new one.",
                days=INVITATION_LIFETIME.days,
            ),
        ),
        LinkState.USED: (
            t("This invitation has been used"),
            t("The password is set: sign in with your email and password."),
        ),
        LinkState.REPLACED: (
            t("A newer invitation replaced this one"),
            t("Open the newest link you were sent, or ask an admin for a new one."),
        ),
        LinkState.INACTIVE: (
            t("This account is deactivated"),
            t("Ask an admin to reactivate it."),
        ),
    }[state]
    status = 404 if state is LinkState.UNKNOWN else 410
    return render(
        request, "invitation_gone.html", {"title": title, "advice": advice}, status=status
    )


def _form_page(
    request: web.Request, email: str, *, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    return render(
        request,
        "invitation.html",
        {"email": email, "action": request.path, "errors": errors or {}},
        status=status,
    )


async def invitation_form(request: web.Request) -> web.StreamResponse:
    """GET /invitations/{token}: choose a password, or why the link does not work."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        found = await look_up(session, request.match_info["token"], utcnow())
    if found.state is not LinkState.VALID or found.user is None:
        return _gone_page(request, found.state)
    return _form_page(request, found.user.email)


async def accept_invitation(request: web.Request) -> web.StreamResponse:
    """POST /invitations/{token}: set the password, use the link up, and sign in."""
    check_origin(request, required=True)
    token = request.match_info["token"]
    form = await request.post()
    t = translator_of(request).gettext
    async with request.app[READ_SESSIONS_KEY]() as session:
        found = await look_up(session, token, utcnow())
    if found.state is not LinkState.VALID or found.user is None:
        return _gone_page(request, found.state)
    email = found.user.email
    new = str(form.get("new_password", ""))[:MAX_FIELD]
    if new != str(form.get("confirm_password", ""))[:MAX_FIELD]:
        errors = {"confirm_password": t("The two new passwords differ.")}
        return _form_page(request, email, errors=errors, status=422)
    try:
        password_rules(new)
    except UserError:
        errors = {"new_password": t("Use at least {n} characters.", n=MIN_PASSWORD_LENGTH)}
        return _form_page(request, email, errors=errors, status=422)
    new_hash = await asyncio.to_thread(hash_password, new)
    now = utcnow()
    async with request.app[SESSIONS_KEY]() as session:
        done = await redeem(session, token, new_hash, now)
    if done.state is not LinkState.VALID or done.user is None:
        return _gone_page(request, done.state)
    cookie = await new_session(request, done.user.id, now)
    response = web.HTTPSeeOther(HOME)
    set_session_cookie(request, response, cookie)
    raise response


def add_invitation_routes(router: web.UrlDispatcher) -> None:
    """The public set-password page (no session: the token is the proof)."""
    router.add_get("/invitations/{token}", invitation_form)
    router.add_post("/invitations/{token}", accept_invitation)
