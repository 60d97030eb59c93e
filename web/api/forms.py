"""Forms: define the web forms of webform channels (admins), read them and their
submissions (admins and managers).

A form is found publicly by its key (/forms/{key}), an unguessable token drawn here; the
key never changes except by an explicit rotation. A form with submissions is not deleted:
its submissions hold where each lead came from, so it is deactivated instead (the public
endpoint then refuses it), and it goes only with its channel.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import ChannelKind
from connectors.webform.definition import FormDefinition
from inbox.account_models import Team
from inbox.models import AttributeDefinition, Role
from timeline.events import Event
from timeline.models import Channel, Form, FormSubmission, Message, utcnow
from web import auth
from web.api import after, cut, path_id, publish
from web.api.form_schemas import (
    FormCreate,
    FormOut,
    FormQuery,
    FormSubmissionOut,
    FormUpdate,
    text_problems,
)
from web.api.schemas import Keyset, Page, PageQuery
from web.errors import ApiError, field_errors, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

logger = logging.getLogger(__name__)

routes = ApiRoutes(tag="forms")

_READERS = (Role.ADMIN, Role.MANAGER)
# 128 random bits: a collision is astronomically unlikely, but the unique index decides.
_KEY_BYTES = 16
_KEY_ATTEMPTS = 3


def new_key() -> str:
    """A fresh public key: URL-safe, unguessable, 22 characters."""
    return secrets.token_urlsafe(_KEY_BYTES)


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS_KEY].base_url


def _event(kind: str, form: Form) -> Event:
    return Event(kind, {"form_id": str(form.id), "channel_id": str(form.channel_id)})


async def _form(
    session: AsyncSession, request: web.Request, form_id: uuid.UUID, *, for_update: bool = False
) -> Form:
    # Locked before a change, so a concurrent delete makes this a 404, not a lost update.
    form = await session.get(Form, form_id, with_for_update=for_update)
    visible = auth.visible_channel_ids(request)
    if form is None or (visible is not None and form.channel_id not in visible):
        raise not_found("no such form")
    return form


async def _checked(
    session: AsyncSession, request: web.Request, definition: FormDefinition
) -> FormDefinition:
    """The definition with its ids in canonical form, once its texts are storable, its
    channel is a webform channel this user sees, and its team id is a UUID; else 422."""
    problems = text_problems(definition)
    update: dict[str, str | None] = {}
    try:
        channel_id = uuid.UUID(definition.channel_id)
    except ValueError:
        problems["channel_id"] = "must be a channel id (UUID)"
    else:
        channel = await session.get(Channel, channel_id)
        visible = auth.visible_channel_ids(request)
        if channel is None or (visible is not None and channel.id not in visible):
            problems["channel_id"] = "no such channel"
        elif channel.kind != ChannelKind.WEBFORM.value:
            problems["channel_id"] = f"must be a webform channel, not {channel.kind}"
        update["channel_id"] = str(channel_id)
    if definition.team_id is not None:
        try:
            team_id = uuid.UUID(definition.team_id)
        except ValueError:
            problems["team_id"] = "must be a team id (UUID)"
        else:
            if await session.get(Team, team_id) is None:
                problems["team_id"] = "no such team"
            update["team_id"] = str(team_id)
    problems.update(await _attribute_problems(session, definition))
    if problems:
        raise validation_failed(problems)
    return definition.model_copy(update=update)


async def _attribute_problems(session: AsyncSession, definition: FormDefinition) -> dict[str, str]:
    """Fields mapped to custom attributes that are not defined: their answers would reach
    no contact, so the form is refused until the attribute exists (GET /attributes)."""
    wanted = {
        index: key
        for index, field in enumerate(definition.fields)
        if (key := field.attribute) is not None
    }
    if not wanted:
        return {}
    known = set(
        await session.scalars(
            select(AttributeDefinition.key).where(AttributeDefinition.key.in_(wanted.values()))
        )
    )
    return {
        f"fields.{index}.maps_to": f"no custom attribute {key!r}: define it first "
        "(POST /api/v1/attributes)"
        for index, key in wanted.items()
        if key not in known
    }


def _store(form: Form, definition: FormDefinition) -> None:
    form.definition = definition.model_dump(mode="json")
    form.name = definition.name
    form.channel_id = uuid.UUID(definition.channel_id)


async def _with_new_key(
    request: web.Request, write: Callable[[AsyncSession, str], Awaitable[Form]]
) -> Form:
    """Run `write` with a fresh key and commit, drawing another key if it collides."""
    attempt = 1
    while True:
        try:
            async with request.app[SESSIONS_KEY]() as session:
                form = await write(session, new_key())
                await session.commit()
                return form
        except IntegrityError:
            # A concurrently deleted channel lands here too: `write` checks it again.
            if attempt == _KEY_ATTEMPTS:
                raise
            logger.warning("a form key was refused (attempt %s); drawing another", attempt)
            attempt += 1


@routes.route(
    "GET",
    "/forms",
    summary="List forms, oldest first (admins and managers)",
    query=FormQuery,
    response=Page[FormOut],
    errors=[403],
)
async def list_forms(request: web.Request) -> web.Response:
    """Forms, optionally of one channel or only (in)active ones."""
    auth.require_role(request, *_READERS)
    query = parse_query(request, FormQuery)
    statement = select(Form).order_by(Form.created_at, Form.id).limit(query.limit + 1)
    if (position := after(Form.created_at, Form.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    if query.channel_id is not None:
        statement = statement.where(Form.channel_id == query.channel_id)
    if query.active is not None:
        statement = statement.where(Form.active.is_(query.active))
    if (visible := auth.visible_channel_ids(request)) is not None:
        statement = statement.where(Form.channel_id.in_(visible))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    base_url = _base_url(request)
    items = [FormOut.of(row, base_url) for row in page]
    return respond(request, Page[FormOut](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/forms",
    summary="Create a form on a webform channel (admins)",
    status=201,
    body=FormCreate,
    response=FormOut,
    errors=[403],
)
async def create_form(request: web.Request) -> web.Response:
    """Store a new form under a fresh key; its public URLs and embed snippet come back."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, FormCreate)

    async def write(session: AsyncSession, key: str) -> Form:
        definition = await _checked(session, request, body.definition())
        now = utcnow()
        form = Form(key=key, active=body.active, created_at=now, updated_at=now)
        _store(form, definition)
        session.add(form)
        return form

    form = await _with_new_key(request, write)
    await publish(request, _event("form.created", form))
    return respond(request, FormOut.of(form, _base_url(request)))


@routes.route(
    "GET",
    "/forms/{id}",
    summary="Get a form (admins and managers)",
    response=FormOut,
    errors=[403, 404],
)
async def get_form(request: web.Request) -> web.Response:
    """One form with its public URLs."""
    auth.require_role(request, *_READERS)
    form_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        form = await _form(session, request, form_id)
    return respond(request, FormOut.of(form, _base_url(request)))


@routes.route(
    "PATCH",
    "/forms/{id}",
    summary="Change a form's definition, or (de)activate it (admins)",
    body=FormUpdate,
    response=FormOut,
    errors=[403, 404],
)
async def update_form(request: web.Request) -> web.Response:
    """Merge the changes onto the stored definition and validate the result as a whole;
    the key stays."""
    auth.require_role(request, Role.ADMIN)
    form_id = path_id(request)
    body = await parse_body(request, FormUpdate)
    async with request.app[SESSIONS_KEY]() as session:
        form = await _form(session, request, form_id, for_update=True)
        try:
            definition = FormDefinition.model_validate(body.merged(form.definition))
        except ValidationError as err:
            raise validation_failed(field_errors(err)) from err
        _store(form, await _checked(session, request, definition))
        if body.active is not None:
            form.active = body.active
        form.updated_at = utcnow()
        await session.commit()
    await publish(request, _event("form.updated", form))
    return respond(request, FormOut.of(form, _base_url(request)))


@routes.route(
    "POST",
    "/forms/{id}/rotate-key",
    summary="Give a form a new key; its old URLs stop working (admins)",
    response=FormOut,
    errors=[403, 404],
)
async def rotate_form_key(request: web.Request) -> web.Response:
    """For a leaked key: pages embedding the old one must be given the new snippet."""
    auth.require_role(request, Role.ADMIN)
    form_id = path_id(request)

    async def write(session: AsyncSession, key: str) -> Form:
        form = await _form(session, request, form_id, for_update=True)
        form.key = key
        form.updated_at = utcnow()
        return form

    form = await _with_new_key(request, write)
    await publish(request, _event("form.updated", form))
    return respond(request, FormOut.of(form, _base_url(request)))


@routes.route(
    "DELETE",
    "/forms/{id}",
    summary="Delete a form that has no submissions (admins); else deactivate it",
    status=204,
    errors=[403, 404, 409],
)
async def delete_form(request: web.Request) -> web.Response:
    """Remove a form nobody has submitted yet; one with submissions is 409."""
    auth.require_role(request, Role.ADMIN)
    form_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session:
        # The lock waits for a submission being written (its foreign key check shares the
        # row) and holds back new ones, so none is lost to the cascade after this count.
        form = await _form(session, request, form_id, for_update=True)
        submissions = await session.scalar(
            select(func.count())
            .select_from(FormSubmission)
            .where(FormSubmission.form_id == form.id)
        )
        if submissions:
            raise ApiError(
                409,
                "conflict",
                f"the form has {submissions} submission(s); deactivate it instead "
                '(PATCH {"active": false}) to keep where its leads came from',
            )
        await session.delete(form)
        await session.commit()
    await publish(request, _event("form.deleted", form))
    return respond(request)


@routes.route(
    "GET",
    "/forms/{id}/submissions",
    summary="A form's submissions, newest first (admins and managers)",
    query=PageQuery,
    response=Page[FormSubmissionOut],
    errors=[403, 404],
)
async def list_form_submissions(request: web.Request) -> web.Response:
    """Each accepted submission with its message, contact, conversation and attribution."""
    auth.require_role(request, *_READERS)
    form_id = path_id(request)
    query = parse_query(request, PageQuery)
    statement = (
        select(FormSubmission, Message.conversation_id)
        .outerjoin(Message, Message.id == FormSubmission.message_id)
        .where(FormSubmission.form_id == form_id)
        .order_by(FormSubmission.created_at.desc(), FormSubmission.id.desc())
        .limit(query.limit + 1)
    )
    position = after(FormSubmission.created_at, FormSubmission.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        await _form(session, request, form_id)
        rows = (await session.execute(statement)).all()
    page, next_cursor = cut(
        rows, query.limit, lambda row: Keyset(at=row[0].created_at, id=row[0].id)
    )
    items = [FormSubmissionOut.of(submission, conversation) for submission, conversation in page]
    return respond(request, Page[FormSubmissionOut](items=items, next_cursor=next_cursor))
