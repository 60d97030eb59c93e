"""The outgoing webhooks page: subscriptions (URL, events, on or off, last delivery),
their editor, the signing secret shown once, and each one's delivery log with
"redeliver" and "view" (what was posted: the headers that carry no secret, the body as
the API's delivery log keeps it, the last answer or error).

The event kinds come from the API (GET /webhooks/event-types); the page adds what the
API cannot: each kind's description in the reader's language, and the groups the
checkboxes are shown in. static/js/admin/webhooks.js does the rest."""

from __future__ import annotations

from aiohttp import web

from inbox.webhook_address import MAX_URL_LENGTH
from inbox.webhook_delivery import DELIVERY_HEADER, EVENT_HEADER, USER_AGENT
from inbox.webhook_kinds import EVENT_KINDS
from inbox.webhook_signing import SIGNATURE_HEADER
from web.api.webhook_schemas import MAX_DESCRIPTION
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import translator_of


@admin_page("webhooks")
async def webhooks_page(request: web.Request) -> web.StreamResponse:
    """The subscriptions, their editor and delivery log."""
    t = translator_of(request).gettext
    # The editor's checkbox groups, by the part of a kind before its dot; a kind of
    # another prefix (added later) is shown under "Other events".
    groups = [
        {"title": t("Messages and notes"), "prefixes": ["message", "note", "reply", "attachment"]},
        {"title": t("Conversations"), "prefixes": ["conversation", "sla", "routing", "task"]},
        {"title": t("Contacts and leads"), "prefixes": ["contact", "form"]},
        {"title": t("Other events"), "prefixes": []},
    ]
    return render_admin(
        request,
        "admin/automation/webhooks.html",
        "webhooks",
        {
            "webhook_page": {
                # The catalog holds each kind's English description (EVENT_KINDS) as a
                # message id, so the same text is its translation key.
                "event_text": {name: t(text) for name, text in EVENT_KINDS.items()},
                "groups": groups,
            },
            "signature_header": SIGNATURE_HEADER,
            # The headers every delivery is posted with (inbox/webhook_delivery.py), for
            # the view of one delivery.
            "event_header": EVENT_HEADER,
            "delivery_header": DELIVERY_HEADER,
            "user_agent": USER_AGENT,
            "max_url": MAX_URL_LENGTH,
            "max_description": MAX_DESCRIPTION,
        },
    )
