"""A contact's personal data: export it all as a zip (admins and managers), or erase it
(admins only, with the contact's id repeated as confirmation). See inbox/personal_data.py
for what each holds and keeps.

The export is built in a temporary file (bounded memory whatever the history) and
streamed to the client, then deleted. An erase deletes the blob files no other
attachment references only once its transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import personal_data
from inbox.models import Role
from timeline.merge import ContactNotFound, resolve_contact_id
from timeline.models import Contact, Conversation, utcnow
from web import auth
from web.api import path_id, publish
from web.api.merge_schemas import EraseIn, ErasureOut
from web.errors import ApiError, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_body, respond

routes = ApiRoutes(tag="contacts")

_CHUNK = 256 * 1024


@routes.route(
    "GET",
    "/contacts/{id}/export",
    summary="Export everything held about a contact (application/zip)",
    produces="application/zip",
    errors=[403, 404],
)
async def export_contact(request: web.Request) -> web.StreamResponse:
    """A zip: contact.json (every row about the contact), attachments/<message id>/<name>
    and raw/<id>.<ext>. A merged contact's id exports the contact it was merged into.
    Admins and managers."""
    auth.require_role(request, Role.ADMIN, Role.MANAGER)
    asked = path_id(request)
    data_dir = request.app[SETTINGS_KEY].data_dir
    fd, name = tempfile.mkstemp(prefix="switchboard-export-", suffix=".zip")
    os.close(fd)
    path = Path(name)
    try:
        async with request.app[READ_SESSIONS_KEY]() as session:
            contact_id = await resolve_contact_id(session, asked)
            if contact_id is None or not await _visible(request, session, contact_id):
                raise not_found("no such contact")
            try:
                await personal_data.export_contact(session, contact_id, data_dir, path)
            except ContactNotFound as err:
                raise not_found("no such contact") from err
        return await _send(request, path, f"contact-{contact_id}.zip")
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)


async def _visible(request: web.Request, session: AsyncSession, contact_id: uuid.UUID) -> bool:
    """Whether the user may see the contact (web/auth.py); an unknown one is not visible."""
    if await session.get(Contact, contact_id) is None:
        return False
    visible = auth.visible_channel_ids(request)
    if visible is None:
        return True
    seen = await session.scalar(
        select(Conversation.id)
        .where(Conversation.contact_id == contact_id, Conversation.channel_id.in_(visible))
        .limit(1)
    )
    return seen is not None


async def _send(request: web.Request, path: Path, filename: str) -> web.StreamResponse:
    size = (await asyncio.to_thread(path.stat)).st_size
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
    )
    response.content_length = size
    await response.prepare(request)
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            await response.write(chunk)
    await response.write_eof()
    return response


@routes.route(
    "POST",
    "/contacts/{id}/erase",
    summary="Erase a contact's personal data (keeps a tombstone for report counts)",
    body=EraseIn,
    response=ErasureOut,
    errors=[403, 404, 409],
)
async def erase_contact(request: web.Request) -> web.Response:
    """Redact messages, delete identities, raw payloads, files, notes, tags and attributes,
    strip personal data from the timeline. Cannot be undone; erasing again is harmless.
    `confirm` must be the contact's id. Admins only."""
    user = auth.require_role(request, Role.ADMIN)
    contact_id = path_id(request)
    body = await parse_body(request, EraseIn)
    if body.confirm.strip().lower() != str(contact_id):
        raise validation_failed({"confirm": "must be the id of the contact being erased"})
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        if not await _visible(request, session, contact_id):
            raise not_found("no such contact")
        try:
            erasure = await personal_data.erase_contact(session, contact_id, user.id, utcnow())
        except ContactNotFound as err:
            raise not_found("no such contact") from err
        except personal_data.ContactMerged as err:
            raise ApiError(409, "conflict", str(err)) from err
        erased_at = await session.scalar(select(Contact.erased_at).where(Contact.id == contact_id))
    assert erased_at is not None
    async with request.app[READ_SESSIONS_KEY]() as session:
        removed = await personal_data.remove_unreferenced_blobs(
            session, request.app[SETTINGS_KEY].data_dir, erasure.blobs
        )
    await publish(request, *erasure.events)
    return respond(
        request,
        ErasureOut(
            contact_id=contact_id,
            erased_at=erased_at,
            already_erased=not erasure.first,
            counts=erasure.counts,
            files_removed=removed,
        ),
    )
