"""Who is viewing which conversation, as this process learns it from the bus.

Clients re-send "viewing" at least every 30 s while a conversation is open; a viewer not
heard of for `expiry` seconds is taken to have gone (a closed laptop sends no "left").
The clock is injected so tests need not wait.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

VIEWER_EXPIRY_SECONDS = 60.0


class Viewers:
    """Conversation → {user → when their viewing expires}."""

    def __init__(self, clock: Callable[[], float], expiry: float = VIEWER_EXPIRY_SECONDS) -> None:
        self._clock = clock
        self._expiry = expiry
        self._by_conversation: dict[uuid.UUID, dict[uuid.UUID, float]] = {}

    def see(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Record (or refresh) a viewer; True when they are new there."""
        viewers = self._by_conversation.setdefault(conversation_id, {})
        new = user_id not in viewers
        viewers[user_id] = self._clock() + self._expiry
        return new

    def leave(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Forget a viewer; True when they were there."""
        viewers = self._by_conversation.get(conversation_id)
        if viewers is None or viewers.pop(user_id, None) is None:
            return False
        if not viewers:
            del self._by_conversation[conversation_id]
        return True

    def of(self, conversation_id: uuid.UUID) -> list[uuid.UUID]:
        return sorted(self._by_conversation.get(conversation_id, {}))

    def sweep(self) -> list[uuid.UUID]:
        """Drop expired viewers; the conversations whose viewers changed."""
        now = self._clock()
        changed = []
        for conversation_id, viewers in list(self._by_conversation.items()):
            gone = [user_id for user_id, until in viewers.items() if until <= now]
            for user_id in gone:
                del viewers[user_id]
            if gone:
                changed.append(conversation_id)
            if not viewers:
                del self._by_conversation[conversation_id]
        return changed
