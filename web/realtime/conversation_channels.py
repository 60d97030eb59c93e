"""Which channel a conversation is on, for events that name only the conversation; and
which channels a contact's conversations are on, for events that name only the contact.

A conversation never changes channel, so the answer is cached (bounded, least recently
used out first) and each unknown conversation costs one query per process, not one per
socket; concurrent asks for the same one share that query. A contact gains conversations
(and a merge gives it more), so its channels are read each time: one query per event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict

from sqlalchemy import select

from timeline.db import SessionFactory
from timeline.models import Conversation

CACHE_SIZE = 100_000


class ConversationChannels:
    """Conversation id → channel id, cached."""

    def __init__(self, sessions: SessionFactory, size: int = CACHE_SIZE) -> None:
        self._sessions = sessions
        self._size = size
        self._known: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._asked: dict[uuid.UUID, asyncio.Future[uuid.UUID | None]] = {}
        self.queries = 0  # how many lookups reached the database (tests count them)

    def remember(self, conversation_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        self._known[conversation_id] = channel_id
        self._known.move_to_end(conversation_id)
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    def known(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The cached channel of a conversation, without asking the database."""
        return self._known.get(conversation_id)

    async def channel_of(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The conversation's channel; None when there is no such conversation."""
        if (known := self._known.get(conversation_id)) is not None:
            self._known.move_to_end(conversation_id)
            return known
        if (asked := self._asked.get(conversation_id)) is not None:
            return await asyncio.shield(asked)
        future: asyncio.Future[uuid.UUID | None] = asyncio.get_running_loop().create_future()
        self._asked[conversation_id] = future
        try:
            self.queries += 1
            async with self._sessions() as session:
                found = await session.scalar(
                    select(Conversation.channel_id).where(Conversation.id == conversation_id)
                )
            if found is not None:
                self.remember(conversation_id, found)
            future.set_result(found)
            return found
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: the waiters, if any, get it raised
            raise
        finally:
            del self._asked[conversation_id]

    async def channels_of_contact(self, contact_id: uuid.UUID) -> frozenset[uuid.UUID]:
        """The channels of the contact's conversations (empty when it has none)."""
        self.queries += 1
        async with self._sessions() as session:
            found = await session.scalars(
                select(Conversation.channel_id)
                .where(Conversation.contact_id == contact_id)
                .distinct()
            )
            return frozenset(found)
