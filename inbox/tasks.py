"""Follow-up tasks, and the worker loop that says when one is due.

A task has a title, a due time, an assignee (an active user) and what it is about: a
contact, a conversation, or both (the conversation then belongs to the contact). It is
completed and reopened by people; rescheduling it to a later time re-arms its due notice.

`TaskDueNotifier` raises exactly one "task.due" timeline event and one bus event per due
task however many workers run it: each task is claimed by a guarded
`UPDATE tasks SET due_notified_at = now WHERE id = :id AND due_notified_at IS NULL`, in
the transaction that records the event. On PostgreSQL a second worker's UPDATE waits for
the first's row lock, then finds the guard false and changes nothing; on SQLite writers
are serialized. The bus events go out only after the commit.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import Task, User
from timeline.due_rounds import DueRounds
from timeline.events import Event, publish_committed
from timeline.ids import new_id
from timeline.models import Contact, Conversation, TimelineEvent

logger = logging.getLogger(__name__)

MAX_TITLE_LENGTH = 500  # tasks.title
TASK_DUE = "task.due"


class Unset(enum.Enum):
    """Marks an argument that was not given (None is a value: "no assignee")."""

    UNSET = 0


UNSET = Unset.UNSET


class TaskError(ValueError):
    """Invalid task input: `fields` maps the fields at fault to what is wrong."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("invalid task")
        self.fields = dict(fields)


def check_title(title: str) -> str:
    """The title without surrounding blanks; TaskError when blank, too long or not text."""
    cleaned = title.strip()
    if not cleaned:
        raise TaskError({"title": "must not be blank"})
    if len(cleaned) > MAX_TITLE_LENGTH:
        raise TaskError({"title": f"at most {MAX_TITLE_LENGTH} characters"})
    if any(ord(c) < 0x20 for c in cleaned):
        raise TaskError({"title": "must be one line without control characters"})
    return cleaned


def check_due_at(due_at: datetime) -> datetime:
    """A timezone-aware due time, in UTC (a naive one would be read in nobody's timezone)."""
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        raise TaskError({"due_at": "must carry a timezone offset, e.g. 2024-05-01T09:00:00Z"})
    try:
        return due_at.astimezone(UTC)
    except OverflowError as err:  # 9999-12-31T23:00-05:00 is past datetime.max in UTC
        raise TaskError({"due_at": "out of range"}) from err


async def check_assignee(session: AsyncSession, user_id: uuid.UUID | None) -> None:
    """TaskError unless `user_id` is None or an active user."""
    if user_id is None:
        return
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise TaskError({"assignee_id": "no such active user"})


async def check_links(
    session: AsyncSession, contact_id: uuid.UUID | None, conversation_id: uuid.UUID | None
) -> None:
    """TaskError unless the task is about an existing contact and/or conversation (of that
    contact, when both are given)."""
    if contact_id is None and conversation_id is None:
        raise TaskError({"contact_id": "a task needs a contact_id, a conversation_id or both"})
    if contact_id is not None and await session.get(Contact, contact_id) is None:
        raise TaskError({"contact_id": "no such contact"})
    if conversation_id is not None:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            raise TaskError({"conversation_id": "no such conversation"})
        if contact_id is not None and conversation.contact_id != contact_id:
            raise TaskError({"conversation_id": "not a conversation of that contact"})


async def create_task(
    session: AsyncSession,
    *,
    title: str,
    due_at: datetime,
    assignee_id: uuid.UUID | None,
    contact_id: uuid.UUID | None,
    conversation_id: uuid.UUID | None,
    created_by: uuid.UUID | None,
    now: datetime,
) -> Task:
    """A new task, checked and added to the session."""
    task = Task(
        id=new_id(),
        title=check_title(title),
        due_at=check_due_at(due_at),
        assignee_id=assignee_id,
        contact_id=contact_id,
        conversation_id=conversation_id,
        created_by=created_by,
        created_at=now,
    )
    await check_assignee(session, assignee_id)
    await check_links(session, contact_id, conversation_id)
    session.add(task)
    return task


async def update_task(
    session: AsyncSession,
    task: Task,
    *,
    title: str | None = None,
    due_at: datetime | None = None,
    assignee_id: uuid.UUID | Unset | None = UNSET,
    contact_id: uuid.UUID | Unset | None = UNSET,
    conversation_id: uuid.UUID | Unset | None = UNSET,
    done: bool | None = None,
    now: datetime,
) -> None:
    """Change a task. A later due time re-arms its due notice; `done` completes or reopens."""
    if title is not None:
        task.title = check_title(title)
    if due_at is not None:
        due_at = check_due_at(due_at)
        if due_at > task.due_at:
            task.due_notified_at = None  # due again, later: say so again then
        task.due_at = due_at
    if not isinstance(assignee_id, Unset):
        await check_assignee(session, assignee_id)
        task.assignee_id = assignee_id
    if not isinstance(contact_id, Unset) or not isinstance(conversation_id, Unset):
        new_contact = task.contact_id if isinstance(contact_id, Unset) else contact_id
        new_conversation = (
            task.conversation_id if isinstance(conversation_id, Unset) else conversation_id
        )
        await check_links(session, new_contact, new_conversation)
        task.contact_id, task.conversation_id = new_contact, new_conversation
    if done is not None:
        if done and task.completed_at is None:
            task.completed_at = now
        elif not done:
            task.completed_at = None


def task_status(task: Task) -> str:
    """ "open" or "done"."""
    return "open" if task.completed_at is None else "done"


class TaskDueNotifier(DueRounds):
    """The worker's loop that raises "task.due" once per due task (see the module docstring)."""

    name = "task due notifier"

    async def run_once(self) -> int:
        """Claim up to a batch of due tasks, record their events, then publish; returns how
        many this worker notified."""
        events: list[Event] = []
        async with self._sessions() as session, session.begin():
            now = await self.now(session)
            due = (
                await session.scalars(
                    select(Task.id)
                    .where(*_due(now))
                    .order_by(Task.due_at, Task.id)
                    .limit(self.batch_size)
                )
            ).all()
            for task_id in due:
                event = await self._claim(session, task_id, now)
                if event is not None:
                    events.append(event)
        await publish_committed(self._bus, events)
        return len(events)

    async def _claim(
        self, session: AsyncSession, task_id: uuid.UUID, now: datetime
    ) -> Event | None:
        claimed = (
            await session.execute(
                update(Task)
                # The guard repeats the whole condition: another worker may have notified
                # it, or a person completed or rescheduled it, since it was selected.
                .where(Task.id == task_id, *_due(now))
                .values(due_notified_at=now)
                .returning(
                    Task.title,
                    Task.due_at,
                    Task.assignee_id,
                    Task.contact_id,
                    Task.conversation_id,
                )
                .execution_options(synchronize_session=False)
            )
        ).first()
        if claimed is None:
            return None
        contact_id = claimed.contact_id
        if contact_id is None:
            contact_id = await session.scalar(
                select(Conversation.contact_id).where(Conversation.id == claimed.conversation_id)
            )
        if contact_id is None:  # the foreign keys cascade, so this is never seen
            return None
        data: dict[str, Any] = {
            "task_id": str(task_id),
            "title": claimed.title,
            "due_at": claimed.due_at.isoformat(),
            "assignee_id": _text(claimed.assignee_id),
        }
        session.add(
            TimelineEvent(
                contact_id=contact_id,
                conversation_id=claimed.conversation_id,
                kind=TASK_DUE,
                data=data,
                occurred_at=now,
            )
        )
        return Event(
            TASK_DUE,
            {
                "task_id": str(task_id),
                "assignee_id": _text(claimed.assignee_id),
                "contact_id": str(contact_id),
                "conversation_id": _text(claimed.conversation_id),
            },
        )


def _due(now: datetime) -> tuple[Any, ...]:
    return (Task.due_notified_at.is_(None), Task.completed_at.is_(None), Task.due_at <= now)


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
