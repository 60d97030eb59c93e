"""Notifications: what one user should look at (a mention, a conversation given to them),
written in the transaction of what caused them, announced on the bus after its commit,
and read by that user alone.

The bus event `notification.created` {"user_id", "notification_id", "conversation_id",
"kind"} names its recipient: the websocket layer delivers it to that user only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.canned_models import Notification, NotificationKind
from timeline.events import Event

CREATED = "notification.created"


def notify(
    session: AsyncSession,
    kind: NotificationKind,
    user_ids: Sequence[uuid.UUID],
    *,
    conversation_id: uuid.UUID | None,
    message_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    now: datetime,
) -> list[Notification]:
    """One notification per user (the actor excepted: nobody is told what they did
    themselves), added to the caller's transaction."""
    notifications = [
        Notification(
            user_id=user_id,
            kind=kind.value,
            conversation_id=conversation_id,
            message_id=message_id,
            actor_id=actor_id,
            created_at=now,
        )
        for user_id in dict.fromkeys(user_ids)
        if user_id != actor_id
    ]
    session.add_all(notifications)
    return notifications


def notify_assigned(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    assignee_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    now: datetime,
) -> list[Notification]:
    """Tell an assignee someone else gave them a conversation (nothing when they took it
    themselves); the caller commits and publishes `created_events`."""
    return notify(
        session,
        NotificationKind.ASSIGNED,
        [assignee_id],
        conversation_id=conversation_id,
        message_id=None,
        actor_id=actor_id,
        now=now,
    )


def created_events(notifications: Sequence[Notification]) -> list[Event]:
    """The bus events of committed notifications, one each."""
    return [
        Event(
            CREATED,
            {
                "user_id": str(n.user_id),
                "notification_id": str(n.id),
                "conversation_id": None if n.conversation_id is None else str(n.conversation_id),
                "kind": n.kind,
            },
        )
        for n in notifications
    ]


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    """How many of the user's notifications are unread."""
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return count or 0


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID, now: datetime
) -> Notification | None:
    """Mark one of the user's notifications read (keeping an earlier read time); None
    when it is not theirs or does not exist."""
    notification = await session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )
    if notification is not None and notification.read_at is None:
        notification.read_at = now
    return notification


async def mark_all_read(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, until: datetime | None = None
) -> int:
    """Mark the user's unread notifications read, those created up to `until` when given
    (a client passes the time of what it showed, so one that arrived since stays unread);
    how many were marked."""
    statement = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if until is not None:
        statement = statement.where(Notification.created_at <= until)
    result = await session.execute(
        statement.values(read_at=now).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
