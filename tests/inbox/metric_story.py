"""Conversations told step by step for the metrics and SLA tests: the rows ingestion, the
outbox and status changes write (messages and their timeline events), at chosen times."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from connectors.registry import spec_for
from inbox.metric_models import BusinessHours, ChannelBusinessHours
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, Message, TimelineEvent

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE_WEEK = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
LABOUR_DAY = [{"date": "2024-05-01", "name": "Labour Day"}]


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Berlin wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


async def make_channel(sessions: SessionFactory, *, office_hours: bool) -> uuid.UUID:
    """A webform channel; with Mon-Fri 09-17 Berlin hours and Labour Day when asked."""
    config = spec_for("webform").config.model_validate({})
    box = SecretBox("metric-tests-secret-key-0123456789abcdef")
    channel = Channel(
        kind="webform", name="forms", config_encrypted=box.encrypt(config.model_dump())
    )
    async with sessions() as session, session.begin():
        session.add(channel)
        if office_hours:
            calendar = BusinessHours(
                name="Office", timezone="Europe/Berlin", week=OFFICE_WEEK, holidays=LABOUR_DAY
            )
            session.add(calendar)
            await session.flush()
            session.add(ChannelBusinessHours(channel_id=channel.id, business_hours_id=calendar.id))
    return channel.id


class Story:
    """One conversation, written as it happens."""

    def __init__(self, sessions: SessionFactory, channel_id: uuid.UUID) -> None:
        self.sessions = sessions
        self.channel_id = channel_id
        self.contact_id = uuid.uuid4()
        self.conversation_id = uuid.uuid4()

    async def start(self, at: datetime) -> Story:
        async with self.sessions() as session, session.begin():
            session.add(Contact(id=self.contact_id, name="Ann"))
            await session.flush()
            session.add(
                Conversation(
                    id=self.conversation_id,
                    contact_id=self.contact_id,
                    channel_id=self.channel_id,
                    created_at=at,
                    last_activity_at=at,
                )
            )
        return self

    async def _message(self, at: datetime, **values: object) -> None:
        async with self.sessions() as session, session.begin():
            conversation = await session.get(
                Conversation, self.conversation_id, with_for_update=True
            )
            assert conversation is not None
            conversation.last_seq += 1
            message = Message(
                conversation_id=self.conversation_id,
                channel_id=self.channel_id,
                contact_id=self.contact_id,
                sent_at=at,
                created_at=at,
                arrived_at=at,
                seq=conversation.last_seq,
                **values,
            )
            session.add(message)
            await session.flush()
            kind = {"in": "message.received"}.get(str(values["direction"]), "message.sent")
            if values.get("private"):
                kind = "note.added"
            self._event(session, kind, at, {}, message.id)

    def _event(
        self,
        session: object,
        kind: str,
        at: datetime,
        data: dict[str, object],
        message_id: uuid.UUID | None = None,
    ) -> None:
        session.add(  # type: ignore[attr-defined]
            TimelineEvent(
                contact_id=self.contact_id,
                conversation_id=self.conversation_id,
                message_id=message_id,
                kind=kind,
                data=data,
                occurred_at=at,
            )
        )

    async def customer(self, at: datetime, *, reopens: bool = False) -> None:
        """A customer message (reopening a resolved conversation, as ingestion records it)."""
        if reopens:
            await self.status(at, "open", event="conversation.reopened", data={"from": "resolved"})
        await self._message(at, direction="in", text="hello")

    async def reply(self, at: datetime, agent: uuid.UUID) -> None:
        await self._message(at, direction="out", text="answer", author_id=agent)

    async def auto_reply(self, at: datetime) -> None:
        await self._message(at, direction="out", text="we got it", auto_submitted=True)

    async def note(self, at: datetime, agent: uuid.UUID) -> None:
        await self._message(at, direction="out", kind="note", private=True, author_id=agent)

    async def status(
        self,
        at: datetime,
        to: str,
        *,
        agent: uuid.UUID | None = None,
        event: str = "conversation.status_changed",
        data: dict[str, object] | None = None,
    ) -> None:
        async with self.sessions() as session, session.begin():
            conversation = await session.get(Conversation, self.conversation_id)
            assert conversation is not None
            previous = conversation.status
            conversation.status = to
            conversation.resolved_at = at if to == "resolved" else None
            payload: dict[str, object] = (
                dict(data) if data is not None else {"from": previous, "to": to}
            )
            if agent is not None:
                payload = {**payload, "actor_id": str(agent)}
            self._event(session, event, at, payload)
