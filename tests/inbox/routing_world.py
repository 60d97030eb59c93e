"""A small world for routing and assignment tests: channels, users, teams, presence,
inbound messages through the real ingestor, and rules stored as the API stores them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connectors.registry import spec_for
from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    RawPayload,
    SenderHandle,
    ThreadHints,
)
from inbox import presence
from inbox.account_models import ChannelMember, ChannelTeam, Team, TeamMember
from inbox.models import Role, User
from inbox.routing_models import RoutingRule
from inbox.routing_rules import RuleBody
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.events import EventBus, InProcessBus
from timeline.ingest import Ingestor
from timeline.ingest_batch import IngestResult
from timeline.models import Channel, Conversation, TimelineEvent

SECRET = "routing-tests-secret-key-0123456789abcdef0123"
SMS = {
    "account_sid": "AC" + "0" * 32,
    "auth_token": "t",
    "phone_number": "+14155550199",
    "default_region": "US",
}


@dataclass
class World:
    sessions: SessionFactory
    ingestor: Ingestor
    _n: int = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def channel(self, name: str = "sms") -> uuid.UUID:
        config = spec_for("sms").config.model_validate(SMS)
        channel = Channel(
            kind="sms",
            name=name,
            config_encrypted=SecretBox(SECRET).encrypt(config.model_dump(mode="json")),
        )
        async with self.sessions() as session, session.begin():
            session.add(channel)
        return channel.id

    async def user(
        self, role: Role = Role.AGENT, *, active: bool = True, channels: tuple[uuid.UUID, ...] = ()
    ) -> uuid.UUID:
        user = User(
            email=f"{role.value}-{self._next()}-{uuid.uuid4().hex[:6]}@example.com",
            name=f"{role.value.title()} {self._n}",
            role=role.value,
            password_hash="x",
            is_active=active,
        )
        async with self.sessions() as session, session.begin():
            session.add(user)
            await session.flush()
            session.add_all(ChannelMember(channel_id=c, user_id=user.id) for c in channels)
        return user.id

    async def team(
        self, members: tuple[uuid.UUID, ...] = (), channels: tuple[uuid.UUID, ...] = ()
    ) -> uuid.UUID:
        team = Team(name=f"team {self._next()}")
        async with self.sessions() as session, session.begin():
            session.add(team)
            await session.flush()
            session.add_all(TeamMember(team_id=team.id, user_id=u) for u in members)
            session.add_all(ChannelTeam(channel_id=c, team_id=team.id) for c in channels)
        return team.id

    async def online(self, user_id: uuid.UUID, status: str = "online") -> None:
        async with self.sessions() as session, session.begin():
            await presence.connect(
                session, connection_id=uuid.uuid4(), user_id=user_id, status=status, process="t"
            )

    async def inbound(
        self,
        channel_id: uuid.UUID,
        text: str = "hello",
        *,
        sender: str | None = None,
        sent_at: datetime | None = None,
        auto_submitted: bool = False,
        language: str | None = None,
        history: bool = False,
    ) -> IngestResult:
        n = self._next()
        message = Inbound(
            channel_id=ChannelId(str(channel_id)),
            external_id=ExternalId(f"in-{n}-{uuid.uuid4().hex[:8]}"),
            sender=SenderHandle(IdentityKind.PHONE, sender or f"+1415555{n:04d}", "Ann Lee"),
            text=text,
            sent_at=sent_at or datetime.now(UTC),
            thread=ThreadHints(),
            raw=RawPayload("text/plain", text.encode()),
            auto_submitted=auto_submitted,
            language=language,
        )
        if history:
            [result] = await self.ingestor.ingest_many([message], history=True)
        else:
            result = await self.ingestor.ingest(message)
        assert result.status == "created", result
        return result

    async def rule(
        self,
        name: str,
        actions: list[dict[str, Any]],
        *,
        all: list[dict[str, Any]] | None = None,
        any: list[dict[str, Any]] | None = None,
        position: int = 0,
        stop: bool = False,
    ) -> uuid.UUID:
        body = RuleBody.model_validate(
            {"conditions": {"all": all or [], "any": any or []}, "actions": actions}
        )
        dumped = body.model_dump(mode="json")
        row = RoutingRule(
            name=name,
            position=position,
            enabled=True,
            conditions=dumped["conditions"],
            actions=dumped["actions"],
            stop_processing=stop,
        )
        async with self.sessions() as session, session.begin():
            session.add(row)
        return row.id

    async def conversation(self, conversation_id: uuid.UUID) -> Conversation:
        async with self.sessions() as session:
            found = await session.get(Conversation, conversation_id)
        assert found is not None
        return found

    async def events(self, conversation_id: uuid.UUID, kind: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(TimelineEvent.data)
                .where(TimelineEvent.conversation_id == conversation_id, TimelineEvent.kind == kind)
                .order_by(TimelineEvent.occurred_at, TimelineEvent.id)
            )
            return list(rows)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sessions() as session:
            statement = select(func.count()).select_from(model)
            if where:
                statement = statement.where(*where)
            return int(await session.scalar(statement) or 0)


@contextlib.asynccontextmanager
async def running_world(
    sessions: SessionFactory, data_dir: Path, bus: EventBus | None = None
) -> AsyncIterator[World]:
    """A World whose ingestor runs for the block."""
    ingestor = Ingestor(
        sessions,
        bus if bus is not None else InProcessBus(),
        reopen_window=timedelta(days=7),
        data_dir=data_dir,
        secret_box=SecretBox(SECRET),
    )
    await ingestor.start()
    try:
        yield World(sessions, ingestor)
    finally:
        await ingestor.close()
