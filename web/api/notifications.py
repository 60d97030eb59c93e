"""Agent notifications over the REST API (issue 9): the requesting user's own, newest
first, marked read one by one or all at once. Another user's notification is a 404."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from inbox import notifications
from inbox.canned_models import Notification
from timeline.models import utcnow
from web import auth
from web.api import after, cut, path_id
from web.api.notification_schemas import (
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    ReadAllOut,
    ReadAllQuery,
    UnreadCountOut,
)
from web.api.schemas import Keyset
from web.errors import not_found
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes("notifications")


@routes.route(
    "GET",
    "/notifications",
    summary="Your notifications, newest first, with the unread count",
    query=NotificationQuery,
    response=NotificationPage,
)
async def list_notifications(request: web.Request) -> web.Response:
    """`unread_count` counts all your unread notifications, whatever the filter and page."""
    query = parse_query(request, NotificationQuery)
    user = auth.current_user(request)
    statement = select(Notification).where(Notification.user_id == user.id)
    if query.unread is not None:
        statement = statement.where(
            Notification.read_at.is_(None) if query.unread else Notification.read_at.is_not(None)
        )
    position = after(Notification.created_at, Notification.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    statement = statement.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(
        query.limit + 1
    )
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        unread = await notifications.unread_count(session, user.id)
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    answer = NotificationPage(
        items=[NotificationOut.of(row) for row in page],
        next_cursor=next_cursor,
        unread_count=unread,
    )
    return respond(request, answer)


@routes.route(
    "GET",
    "/notifications/unread-count",
    summary="How many of your notifications are unread",
    response=UnreadCountOut,
)
async def unread_count(request: web.Request) -> web.Response:
    """For a badge: one indexed count."""
    user = auth.current_user(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        count = await notifications.unread_count(session, user.id)
    return respond(request, UnreadCountOut(unread_count=count))


@routes.route(
    "POST",
    "/notifications/{id}/read",
    summary="Mark one of your notifications read",
    response=NotificationOut,
    errors=[404],
)
async def mark_read(request: web.Request) -> web.Response:
    """Marking it again keeps the first read time."""
    notification_id = path_id(request)
    user = auth.current_user(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        row = await notifications.mark_read(session, user.id, notification_id, utcnow())
        if row is None:
            raise not_found("no such notification")
        answer = NotificationOut.of(row)
    return respond(request, answer)


@routes.route(
    "POST",
    "/notifications/read-all",
    summary="Mark all your notifications read",
    query=ReadAllQuery,
    response=ReadAllOut,
)
async def mark_all_read(request: web.Request) -> web.Response:
    """All of them, or those created up to `until`."""
    query = parse_query(request, ReadAllQuery)
    user = auth.current_user(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        marked = await notifications.mark_all_read(session, user.id, utcnow(), query.until)
        remaining = await notifications.unread_count(session, user.id)
    return respond(request, ReadAllOut(marked=marked, unread_count=remaining))
