"""An email's sanitized HTML as a document of its own, for `<iframe sandbox>` in the
thread (issue 10 item 3).

The HTML was sanitized at ingestion (connectors/email/html.py: an allow-list, remote
image sources moved aside into `data-remote-src`). It is still a customer's markup, so
it never becomes part of a page of ours: the thread shows it in a frame sandboxed
without scripts and without our origin, and this answer carries its own policy that
loads nothing — images only from `data:` URLs — until the agent asks for the message's
remote images (`?images=1`): then `img-src https:` for that frame alone.
"""

from __future__ import annotations

import html
import re
import uuid

from aiohttp import web

from timeline.models import Conversation, Message
from web.auth import VISIBLE_CHANNELS_KEY
from web.keys import READ_SESSIONS_KEY
from web.ui.session import page

# Put back the sources the sanitizer moved aside; only in <img> tags of the sanitized
# (attribute-quoting) output. Whatever else the pattern might touch stays inert: the
# frame runs no script, and its policy allows nothing but images.
_REMOTE_SRC = re.compile(r"(<img\b[^>]*?\s)data-remote-src=", re.IGNORECASE)

_STYLE = """
:root { color-scheme: light; }
html { background: #fff; color: #1f2328; }
body { margin: 0; padding: 12px 16px; font: 15px/1.5 system-ui, sans-serif;
  overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
img[data-remote-src] { display: inline-block; min-width: 24px; min-height: 16px;
  background: #eef0f3; border: 1px dashed #b8bec7; }
table { max-width: 100%; }
pre { white-space: pre-wrap; }
blockquote { margin-inline: 0; padding-inline-start: 12px; border-inline-start: 3px solid #d0d5dd;
  color: #59636e; }
a { color: #0b57d0; }
"""


def frame_policy(images: bool) -> str:
    """The frame's own Content-Security-Policy: nothing but inline styles and data:
    images, remote https images once allowed; framed only by our own pages; sandboxed
    even when opened directly."""
    img = "data: https:" if images else "data:"
    return (
        f"default-src 'none'; img-src {img}; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def frame_document(body: str, *, images: bool, lang: str | None) -> str:
    """The frame's HTML document around the sanitized `body`."""
    if images:
        body = _REMOTE_SRC.sub(r"\1src=", body)
    language = f' lang="{html.escape(lang)}"' if lang else ""
    return (
        f'<!doctype html><html{language}><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        '<base target="_blank">'
        f'<style>{_STYLE}</style></head><body dir="auto">{body}</body></html>'
    )


@page
async def message_frame(request: web.Request) -> web.StreamResponse:
    """GET /messages/{id}/frame(?images=1): the email's sanitized HTML for the thread's
    sandboxed frame; 404 when the user may not see the message or it has no HTML."""
    try:
        message_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    visible = request.get(VISIBLE_CHANNELS_KEY)
    async with request.app[READ_SESSIONS_KEY]() as session:
        message = await session.get(Message, message_id)
        conversation = (
            None if message is None else await session.get(Conversation, message.conversation_id)
        )
    if (
        message is None
        or conversation is None
        or (visible is not None and conversation.channel_id not in visible)
        or not message.html
    ):
        raise web.HTTPNotFound()
    images = request.query.get("images") == "1"
    return web.Response(
        text=frame_document(message.html, images=images, lang=None),
        content_type="text/html",
        headers={
            "Content-Security-Policy": frame_policy(images),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
