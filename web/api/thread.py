"""Message files and retries for the agent app (issue 10).

| route | what |
|---|---|
| GET /attachments/{id} | a message's file, as a download (`?inline=1`: shown, safe images only) |
| POST /messages/{id}/retry | send a failed reply again |

Both are checked through the message's conversation: a user who may not see its channel
gets 404, as for the conversation itself. A file is served as untrusted content: a
download (never rendered as a page of ours), no sniffing, a sandboxing CSP, and a
filename reduced to what cannot spoof (RFC 6266 `filename*` for the real name).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import DeliveryState
from timeline.files import blob_path
from timeline.models import Attachment, Conversation, Message
from timeline.outbox import delivery_event, retry_message
from web import auth
from web.api import path_id, publish
from web.api.conversations import message_outs
from web.api.schemas import MessageOut
from web.api.thread_schemas import AttachmentQuery
from web.errors import ApiError, not_found
from web.keys import DISPATCHER_KEY, READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes(tag="thread")

# Shown in the page (`?inline=1`) only in these types: raster images a browser cannot
# run anything in (SVG can hold script, so it is always a download).
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})
FALLBACK_NAME = "attachment"
MAX_NAME = 150
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 ._()+-]")  # what the plain `filename` keeps
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Opened directly, the file is an opaque origin that can run nothing and load nothing.
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    ),
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, max-age=300",
}


@routes.route(
    "GET",
    "/attachments/{id}",
    summary="Download a message's file",
    query=AttachmentQuery,
    errors=[404],
    produces="application/octet-stream",
)
async def get_attachment(request: web.Request) -> web.StreamResponse:
    """The file as stored: a download named by its (cleaned) filename; with `inline=1`
    a PNG, JPEG, GIF, WebP or AVIF image is shown instead (previews in the thread)."""
    query = parse_query(request, AttachmentQuery)
    attachment_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        attachment = await session.get(Attachment, attachment_id)
        if attachment is None:
            raise not_found("no such attachment")
        message = await session.get(Message, attachment.message_id)
        if message is None or not await _visible(session, request, message):
            raise not_found("no such attachment")
    try:
        path = blob_path(request.app[SETTINGS_KEY].data_dir, attachment.sha256)
    except ValueError as err:
        raise not_found("the file is not stored") from err
    if not path.is_file():
        raise not_found("the file is not stored")
    content_type = attachment.content_type.split(";", 1)[0].strip().lower()
    inline = query.inline and content_type in INLINE_TYPES
    if not _MIME.match(content_type):
        content_type = "application/octet-stream"
    headers = {
        **FILE_HEADERS,
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(
            attachment.filename, inline=inline, fallback_extension=_extension(content_type)
        ),
    }
    return web.FileResponse(path, headers=headers)


@routes.route(
    "POST",
    "/messages/{id}/retry",
    summary="Send a failed reply again",
    response=MessageOut,
    errors=[404, 409],
)
async def retry(request: web.Request) -> web.Response:
    """Queue a reply that failed for good (`delivery.state` `failed_permanent`) again:
    its delivery goes back to `queued` and the outbox sends it once more. 409 for any
    other message (one on its way, delivered, inbound, a note)."""
    message_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        message = await session.get(Message, message_id)
        if message is None or not await _visible(session, request, message):
            raise not_found("no such message")
        conversation_id = message.conversation_id
    async with request.app[SESSIONS_KEY]() as session:
        async with session.begin():
            retried = await retry_message(session, message_id)
        if not retried:
            raise ApiError(409, "conflict", "only a reply that failed can be retried")
        message = await session.get(Message, message_id, populate_existing=True)
        if message is None:  # deleted since
            raise not_found("no such message")
        [answer] = await message_outs(session, [message])
    await publish(request, delivery_event(message_id, conversation_id, DeliveryState.QUEUED, None))
    if (dispatcher := request.app.get(DISPATCHER_KEY)) is not None:
        dispatcher.wake()  # send now rather than at the dispatcher's next idle poll
    return respond(request, answer)


async def _visible(session: AsyncSession, request: web.Request, message: Message) -> bool:
    """Whether the user sees the message's conversation's channel."""
    visible = auth.visible_channel_ids(request)
    if visible is None:
        return True
    conversation = await session.get(Conversation, message.conversation_id)
    return conversation is not None and conversation.channel_id in visible


def clean_filename(name: str | None) -> str:
    """A customer's filename made harmless to show and to save: no path, no control or
    bidirectional-override characters (which make `exe.txt` look like `txt.exe`), no
    leading dots, at most MAX_NAME characters. Empty: FALLBACK_NAME."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: controls; Cf: format characters, among them the bidi overrides and isolates.
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    text = text.strip().lstrip(".").strip()
    return text[:MAX_NAME] or FALLBACK_NAME


def content_disposition(
    name: str | None, *, inline: bool = False, fallback_extension: str = ""
) -> str:
    """The Content-Disposition header (RFC 6266): an ASCII `filename` for old clients
    and the real name in `filename*` (RFC 8187 UTF-8 percent-encoding)."""
    cleaned = clean_filename(name)
    ascii_name = _UNSAFE_ASCII.sub("_", cleaned)
    if ascii_name.strip("_. ") == "":
        ascii_name = FALLBACK_NAME + fallback_extension
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def _extension(content_type: str) -> str:
    subtype = content_type.partition("/")[2]
    return "." + subtype if subtype.isalnum() and len(subtype) <= 5 else ""
