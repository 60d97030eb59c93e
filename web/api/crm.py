"""The CRM side of contacts over the REST API: changing a contact (stage, owner, tags,
custom attributes, lifetime value, the customer's preferences), attribute definitions,
notes and follow-up tasks.

A contact PATCH locks the contact's row first (`SELECT ... FOR UPDATE`; SQLite serializes
writers anyway), so concurrent changes of one contact apply one after the other, each on
what the previous one committed: two `add_tags` at once both land. Every kind of change
is one timeline event in the same transaction; the bus hears "contact.updated" after the
commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import attributes as attribute_defs
from inbox import notes as contact_notes
from inbox import preferences
from inbox.attributes import AttributeInputError, DefinitionConflict
from inbox.lifecycle import StageError, apply_stage_change, check_stage_change
from inbox.models import AttributeDefinition, ContactNote, Role, Task, User
from inbox.money import Money, MoneyError, check_currency, to_minor
from inbox.notes import NoteError
from inbox.tasks import UNSET, TaskError, Unset, create_task, update_task
from timeline.events import Event
from timeline.models import Contact, ContactTag, Conversation, TimelineEvent, utcnow
from web import auth
from web.api import after, cut, path_id, publish
from web.api.contacts import _contact_outs, visible_contact
from web.api.crm_schemas import (
    MAX_TAGS,
    AttributeDefinitionIn,
    AttributeDefinitionOut,
    AttributeDefinitionPatch,
    ContactPatch,
    MoneyIn,
    NoteIn,
    NoteOut,
    TaskIn,
    TaskOut,
    TaskPatch,
    TaskQuery,
)
from web.api.schemas import ContactOut, Keyset, Page, PageQuery
from web.errors import ApiError, forbidden, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

routes = ApiRoutes(tag="contacts")

OWNER_CHANGED = "contact.owner_changed"
TAGS_CHANGED = "contact.tags_changed"
UPDATED = "contact.updated"
_MANAGERS = (Role.ADMIN, Role.MANAGER)


def conflict(message: str) -> ApiError:
    """409: the request is valid but the resource's state forbids it."""
    return ApiError(409, "conflict", message)


# --- contacts --------------------------------------------------------------------------------


@routes.route(
    "PATCH",
    "/contacts/{id}",
    summary="Change a contact's CRM fields and preferences",
    body=ContactPatch,
    response=ContactOut,
    errors=[404, 409],
)
async def patch_contact(request: web.Request) -> web.Response:
    """Change any of the contact's fields; each kind of change is a timeline event."""
    user = auth.current_user(request)
    contact_id = path_id(request)
    body = await parse_body(request, ContactPatch)
    plain = _plain_values(body)  # checks that need no database, before the transaction
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await visible_contact(session, request, contact_id)
        # The row lock serializes changes of one contact (see the module docstring).
        contact = await session.get(
            Contact, contact_id, with_for_update=True, populate_existing=True
        )
        if contact is None:
            raise not_found("no such contact")
        _refuse_retired(contact)
        now = utcnow()
        events = await _changes(session, contact, body, plain, user, now)
        if events:
            contact.updated_at = now
            session.add_all(events)
        await session.flush()
        [answer] = await _contact_outs(session, [contact])
    if events:
        await publish(request, Event(UPDATED, {"contact_id": str(contact_id)}))
    return respond(request, answer)


def _refuse_retired(contact: Contact) -> None:
    if contact.merged_into_id is not None:
        raise conflict(
            f"this contact was merged into {contact.merged_into_id}; change that contact instead"
        )
    if contact.erased_at is not None:
        raise conflict("this contact's personal data was erased; it cannot be changed")


# Columns a PATCH sets directly, in the order they are reported.
_PLAIN = (
    "name",
    "preferred_channel_id",
    "language",
    "timezone",
    "reachable_hours",
    "currency",
    "lifetime_value",
)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "language": preferences.check_language,
    "timezone": preferences.check_timezone,
    "reachable_hours": preferences.check_reachable_hours,
    "currency": preferences.check_preferred_currency,
}


def _plain_values(body: ContactPatch) -> dict[str, Any]:
    """The sent plain fields, checked and normalized; 422 naming every bad one."""
    sent = body.model_fields_set
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in _PLAIN:
        if name not in sent:
            continue
        value = getattr(body, name)
        try:
            if value is None:
                values[name] = None
            elif name == "lifetime_value":
                values[name] = _money(value)
            elif (check := _CHECKS.get(name)) is not None:
                values[name] = check(value)
            else:
                values[name] = value
        except preferences.PreferenceError as err:
            errors[name] = str(err)
        except _FieldError as err:
            errors[f"{name}.{err.field}"] = str(err)
    if errors:
        raise validation_failed(errors)
    return values


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _money(value: MoneyIn) -> Money:
    try:
        currency = check_currency(value.currency)
    except MoneyError as err:
        raise _FieldError("currency", str(err)) from err
    try:
        return Money(to_minor(value.amount, currency), currency)
    except MoneyError as err:
        raise _FieldError("amount", str(err)) from err


async def _changes(
    session: AsyncSession,
    contact: Contact,
    body: ContactPatch,
    plain: Mapping[str, Any],
    user: User,
    now: datetime,
) -> list[TimelineEvent]:
    """Apply the PATCH to the locked contact; returns the timeline events to record."""
    sent = body.model_fields_set
    by = str(user.id)
    events: list[TimelineEvent] = []

    def event(kind: str, data: dict[str, Any]) -> None:
        events.append(TimelineEvent(contact_id=contact.id, kind=kind, data=data, occurred_at=now))

    if sent & {"lifecycle_stage", "lost_reason"}:
        stage = body.lifecycle_stage or contact.lifecycle_stage
        try:
            change = check_stage_change(contact, stage, body.lost_reason)
        except StageError as err:
            raise validation_failed({err.field: str(err)}) from err
        if change is not None:
            events.append(apply_stage_change(contact, change, by=user.id, now=now))
    if "owner_id" in sent and body.owner_id != contact.owner_id:
        if body.owner_id is not None:
            owner = await session.get(User, body.owner_id)
            if owner is None or not owner.is_active:
                raise validation_failed({"owner_id": "no such active user"})
        event(
            OWNER_CHANGED, {"from": _text(contact.owner_id), "to": _text(body.owner_id), "by": by}
        )
        contact.owner_id = body.owner_id
    if sent & {"tags", "add_tags", "remove_tags"}:
        added, removed = await _change_tags(session, contact.id, body)
        if added or removed:
            event(TAGS_CHANGED, {"added": added, "removed": removed, "by": by})
    if body.attributes:
        try:
            diff = await attribute_defs.set_attributes(session, contact.id, body.attributes)
        except AttributeInputError as err:
            raise validation_failed(err.fields) from err
        if diff:
            event(attribute_defs.ATTRIBUTES_CHANGED, diff)
    if "preferred_channel_id" in plain and plain["preferred_channel_id"] is not None:
        try:
            await preferences.check_channel(session, plain["preferred_channel_id"])
        except preferences.PreferenceError as err:
            raise validation_failed({"preferred_channel_id": str(err)}) from err
    fields = {name: moved for name, value in plain.items() if (moved := _set(contact, name, value))}
    if fields:
        event(UPDATED, {"fields": fields, "by": by})
    return events


def _set(contact: Contact, name: str, value: Any) -> dict[str, Any] | None:
    """Set one plain field; {from, to} as JSON when it changed, else None."""
    if name == "lifetime_value":
        minor, currency = contact.lifetime_value_minor, contact.lifetime_value_currency
        before = None if minor is None or currency is None else Money(minor, currency)
        if before == value:
            return None
        contact.lifetime_value_minor = None if value is None else value.minor
        contact.lifetime_value_currency = None if value is None else value.currency
        return {
            "from": None if before is None else before.as_json(),
            "to": None if value is None else value.as_json(),
        }
    previous = getattr(contact, name)
    if previous == value:
        return None
    setattr(contact, name, value)
    if isinstance(value, uuid.UUID) or isinstance(previous, uuid.UUID):
        return {"from": _text(previous), "to": _text(value)}
    return {"from": previous, "to": value}


async def _change_tags(
    session: AsyncSession, contact_id: uuid.UUID, body: ContactPatch
) -> tuple[list[str], list[str]]:
    """Apply the tag changes; returns (added, removed), sorted."""
    current = set(
        await session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == contact_id))
    )
    if body.tags is not None:
        wanted = set(body.tags)
    else:
        wanted = (current | set(body.add_tags or ())) - set(body.remove_tags or ())
    if len(wanted) > MAX_TAGS:
        raise validation_failed({"tags": f"a contact has at most {MAX_TAGS} tags"})
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if removed:
        await session.execute(
            delete(ContactTag).where(
                ContactTag.contact_id == contact_id, ContactTag.tag.in_(removed)
            )
        )
    session.add_all(ContactTag(contact_id=contact_id, tag=tag) for tag in added)
    return added, removed


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


# --- attribute definitions -------------------------------------------------------------------


@routes.route(
    "GET",
    "/attributes",
    summary="List the custom attribute definitions (all of them, in one page)",
    response=Page[AttributeDefinitionOut],
)
async def list_attributes(request: web.Request) -> web.Response:
    """Every definition, oldest first; there are at most a few hundred, so one page."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = await attribute_defs.definitions(session)
    items = [AttributeDefinitionOut.of(row) for row in rows]
    return respond(request, Page[AttributeDefinitionOut](items=items, next_cursor=None))


@routes.route(
    "POST",
    "/attributes",
    summary="Define a custom attribute (admin or manager)",
    status=201,
    body=AttributeDefinitionIn,
    response=AttributeDefinitionOut,
    errors=[403, 409],
)
async def create_attribute(request: web.Request) -> web.Response:
    """A new definition; 409 when the key is taken."""
    auth.require_role(request, *_MANAGERS)
    body = await parse_body(request, AttributeDefinitionIn)
    try:
        async with request.app[SESSIONS_KEY]() as session, session.begin():
            row = await attribute_defs.create_definition(
                session,
                key=body.key,
                label=body.label.strip(),
                kind=body.type,
                options=body.options,
                now=utcnow(),
            )
            answer = AttributeDefinitionOut.of(row)
    except AttributeInputError as err:
        raise validation_failed(err.fields) from err
    except DefinitionConflict as err:
        raise conflict(str(err)) from err
    except IntegrityError as err:  # the same key created at the same moment elsewhere
        raise conflict(f"an attribute {body.key!r} is already defined") from err
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/attributes/{key}",
    summary="Change a custom attribute definition (admin or manager)",
    body=AttributeDefinitionPatch,
    response=AttributeDefinitionOut,
    errors=[403, 404, 409],
)
async def patch_attribute(request: web.Request) -> web.Response:
    """Change a definition's label, type or options; 409 when stored values forbid it."""
    auth.require_role(request, *_MANAGERS)
    key = _path_key(request)
    body = await parse_body(request, AttributeDefinitionPatch)
    try:
        async with request.app[SESSIONS_KEY]() as session, session.begin():
            row = await session.get(AttributeDefinition, key, with_for_update=True)
            if row is None:
                raise not_found("no such attribute")
            await attribute_defs.update_definition(
                session,
                row,
                label=None if body.label is None else body.label.strip(),
                kind=body.type,
                options=body.options,
            )
            answer = AttributeDefinitionOut.of(row)
    except AttributeInputError as err:
        raise validation_failed(err.fields) from err
    except DefinitionConflict as err:
        raise conflict(str(err)) from err
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/attributes/{key}",
    summary="Delete a custom attribute and every contact's value of it (admin or manager)",
    status=204,
    errors=[403, 404],
)
async def delete_attribute(request: web.Request) -> web.Response:
    """Delete the definition and its values."""
    auth.require_role(request, *_MANAGERS)
    key = _path_key(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        if not await attribute_defs.delete_definition(session, key):
            raise not_found("no such attribute")
    return respond(request)


def _path_key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not attribute_defs.KEY_PATTERN.fullmatch(key):
        raise not_found("no such attribute")
    return key


# --- notes -----------------------------------------------------------------------------------


@routes.route(
    "GET",
    "/contacts/{id}/notes",
    summary="A contact's notes, newest first",
    query=PageQuery,
    response=Page[NoteOut],
    errors=[404],
)
async def list_notes(request: web.Request) -> web.Response:
    """Notes about a contact."""
    contact_id = path_id(request)
    query = parse_query(request, PageQuery)
    statement = (
        select(ContactNote)
        .where(ContactNote.contact_id == contact_id)
        .order_by(ContactNote.created_at.desc(), ContactNote.id.desc())
        .limit(query.limit + 1)
    )
    position = after(ContactNote.created_at, ContactNote.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        await visible_contact(session, request, contact_id)
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    items = [NoteOut.of(row) for row in page]
    return respond(request, Page[NoteOut](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/contacts/{id}/notes",
    summary="Add a note about a contact",
    status=201,
    body=NoteIn,
    response=NoteOut,
    errors=[404, 409],
)
async def create_note(request: web.Request) -> web.Response:
    """A new note, recorded on the contact's timeline ("note.added")."""
    user = auth.current_user(request)
    contact_id = path_id(request)
    body = await parse_body(request, NoteIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        contact = await visible_contact(session, request, contact_id)
        _refuse_retired(contact)
        try:
            note = contact_notes.add_note(session, contact_id, user, body.text, utcnow())
        except NoteError as err:
            raise validation_failed({"text": str(err)}) from err
        await session.flush()
        answer = NoteOut.of(note)
    await publish(
        request, Event("note.added", {"note_id": str(note.id), "contact_id": str(contact_id)})
    )
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/notes/{id}",
    summary="Edit a note (its author, an admin or a manager)",
    body=NoteIn,
    response=NoteOut,
    errors=[403, 404],
)
async def patch_note(request: web.Request) -> web.Response:
    """Replace a note's text."""
    user = auth.current_user(request)
    note_id = path_id(request)
    body = await parse_body(request, NoteIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        note = await _changeable_note(session, request, note_id, user)
        try:
            changed = contact_notes.edit_note(note, body.text, utcnow())
        except NoteError as err:
            raise validation_failed({"text": str(err)}) from err
        answer = NoteOut.of(note)
    if changed:
        await publish(
            request,
            Event("note.updated", {"note_id": str(note_id), "contact_id": str(note.contact_id)}),
        )
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/notes/{id}",
    summary="Delete a note (its author, an admin or a manager)",
    status=204,
    errors=[403, 404],
)
async def delete_note(request: web.Request) -> web.Response:
    """Delete a note; "note.deleted" stays on the contact's timeline."""
    user = auth.current_user(request)
    note_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        note = await _changeable_note(session, request, note_id, user)
        contact_id = note.contact_id
        await contact_notes.delete_note(session, note, user, utcnow())
    await publish(
        request, Event("note.deleted", {"note_id": str(note_id), "contact_id": str(contact_id)})
    )
    return respond(request)


async def _changeable_note(
    session: AsyncSession, request: web.Request, note_id: uuid.UUID, user: User
) -> ContactNote:
    note = await session.get(ContactNote, note_id, with_for_update=True)
    if note is None:
        raise not_found("no such note")
    await visible_contact(session, request, note.contact_id)  # 404 for a contact not seen
    if not contact_notes.may_change(note, user):
        raise forbidden("only the note's author, an admin or a manager may change it")
    return note


# --- tasks -----------------------------------------------------------------------------------


@routes.route(
    "GET",
    "/tasks",
    summary="List follow-up tasks, soonest due first",
    query=TaskQuery,
    response=Page[TaskOut],
)
async def list_tasks(request: web.Request) -> web.Response:
    """Tasks matching every given filter."""
    query = parse_query(request, TaskQuery)
    statement = select(Task).order_by(Task.due_at, Task.id).limit(query.limit + 1)
    if (position := after(Task.due_at, Task.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    assignee = auth.current_user(request).id if query.assignee_id == "me" else query.assignee_id
    if assignee is not None:
        statement = statement.where(Task.assignee_id == assignee)
    if query.contact_id is not None:
        statement = statement.where(Task.contact_id == query.contact_id)
    if query.conversation_id is not None:
        statement = statement.where(Task.conversation_id == query.conversation_id)
    if query.status == "open":
        statement = statement.where(Task.completed_at.is_(None))
    elif query.status == "done":
        statement = statement.where(Task.completed_at.is_not(None))
    if query.due_before is not None:
        statement = statement.where(Task.due_at < query.due_before)
    if (visible := _visible_tasks(request)) is not None:
        statement = statement.where(visible)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.due_at, id=row.id))
    return respond(
        request, Page[TaskOut](items=[TaskOut.of(row) for row in page], next_cursor=next_cursor)
    )


@routes.route(
    "POST",
    "/tasks",
    summary="Create a follow-up task",
    status=201,
    body=TaskIn,
    response=TaskOut,
    errors=[404],
)
async def create_task_route(request: web.Request) -> web.Response:
    """A new task; without `assignee_id` it is assigned to its creator."""
    user = auth.current_user(request)
    body = await parse_body(request, TaskIn)
    assignee = body.assignee_id if "assignee_id" in body.model_fields_set else user.id
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await _check_visible_links(session, request, body.contact_id, body.conversation_id)
        try:
            task = await create_task(
                session,
                title=body.title,
                due_at=body.due_at,
                assignee_id=assignee,
                contact_id=body.contact_id,
                conversation_id=body.conversation_id,
                created_by=user.id,
                now=utcnow(),
            )
        except TaskError as err:
            raise validation_failed(err.fields) from err
        await session.flush()
        answer = TaskOut.of(task)
    await publish(request, Event("task.created", {"task_id": str(task.id)}))
    return respond(request, answer)


@routes.route("GET", "/tasks/{id}", summary="Get a task", response=TaskOut, errors=[404])
async def get_task(request: web.Request) -> web.Response:
    """One task."""
    task_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        task = await _visible_task(session, request, task_id)
    return respond(request, TaskOut.of(task))


@routes.route(
    "PATCH",
    "/tasks/{id}",
    summary="Change, complete or reopen a task",
    body=TaskPatch,
    response=TaskOut,
    errors=[404],
)
async def patch_task(request: web.Request) -> web.Response:
    """Change a task; `status` done completes it, open reopens it."""
    task_id = path_id(request)
    body = await parse_body(request, TaskPatch)
    sent = body.model_fields_set

    def given(name: str) -> uuid.UUID | Unset | None:
        value: uuid.UUID | None = getattr(body, name)
        return value if name in sent else UNSET

    async with request.app[SESSIONS_KEY]() as session, session.begin():
        task = await _visible_task(session, request, task_id, lock=True)
        await _check_visible_links(session, request, body.contact_id, body.conversation_id)
        try:
            await update_task(
                session,
                task,
                title=body.title,
                due_at=body.due_at,
                assignee_id=given("assignee_id"),
                contact_id=given("contact_id"),
                conversation_id=given("conversation_id"),
                done=None if body.status is None else body.status == "done",
                now=utcnow(),
            )
        except TaskError as err:
            raise validation_failed(err.fields) from err
        await session.flush()
        answer = TaskOut.of(task)
    await publish(request, Event("task.updated", {"task_id": str(task_id)}))
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/tasks/{id}",
    summary="Delete a task (its creator, its assignee, an admin or a manager)",
    status=204,
    errors=[403, 404],
)
async def delete_task(request: web.Request) -> web.Response:
    """Delete a task."""
    user = auth.current_user(request)
    task_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        task = await _visible_task(session, request, task_id, lock=True)
        if user.id not in (task.created_by, task.assignee_id) and user.role not in _MANAGERS:
            raise forbidden("only the task's creator, its assignee, an admin or a manager")
        await session.delete(task)
    await publish(request, Event("task.deleted", {"task_id": str(task_id)}))
    return respond(request)


def _visible_tasks(request: web.Request) -> ColumnElement[bool] | None:
    """Tasks the user may see: about a conversation on a visible channel, or about a
    contact they see; None when they see everything."""
    visible = auth.visible_channel_ids(request)
    if visible is None:
        return None
    shown = select(Conversation.id).where(Conversation.channel_id.in_(visible))
    seen = exists().where(
        Conversation.contact_id == Task.contact_id, Conversation.channel_id.in_(visible)
    )
    return or_(Task.conversation_id.in_(shown), Task.conversation_id.is_(None) & seen)


async def _visible_task(
    session: AsyncSession, request: web.Request, task_id: uuid.UUID, *, lock: bool = False
) -> Task:
    statement = select(Task).where(Task.id == task_id)
    if (visible := _visible_tasks(request)) is not None:
        statement = statement.where(visible)
    if lock:
        statement = statement.with_for_update()
    task = (await session.scalars(statement)).first()
    if task is None:
        raise not_found("no such task")
    return task


async def _check_visible_links(
    session: AsyncSession,
    request: web.Request,
    contact_id: uuid.UUID | None,
    conversation_id: uuid.UUID | None,
) -> None:
    """422 for a contact or conversation in a body that the user cannot see, worded as
    for one that does not exist (inbox.tasks checks existence)."""
    visible = auth.visible_channel_ids(request)
    if visible is None:
        return
    if contact_id is not None:
        seen = select(Conversation.id).where(
            Conversation.contact_id == contact_id, Conversation.channel_id.in_(visible)
        )
        if (await session.scalars(seen.limit(1))).first() is None:
            raise validation_failed({"contact_id": "no such contact"})
    if conversation_id is not None:
        channel = await session.scalar(
            select(Conversation.channel_id).where(Conversation.id == conversation_id)
        )
        if channel is not None and channel not in visible:
            raise validation_failed({"conversation_id": "no such conversation"})
