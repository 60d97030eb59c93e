"""Which chat id a conversation is known by, across a group's upgrade to a supergroup.

Telegram gives a supergroup a new id when a group is upgraded (the old group gets a
service message with `migrate_to_chat_id`, the new supergroup one with
`migrate_from_chat_id`). The rule here: a conversation keeps the id it was first known
by, the original group's. Each migration is remembered in the channel's cursor store in
both directions, so later supergroup messages map back to the original group (inbound)
and replies addressed to the original group go to the supergroup (outbound).
"""

from __future__ import annotations

from connectors.base import CursorStore
from connectors.types import ChannelId

_ORIGIN = "telegram:chat_origin:{}"  # supergroup id -> the original group's id
_MOVED = "telegram:chat_moved:{}"  # original group id -> the supergroup's id


class ChatAliases:
    """The remembered group → supergroup migrations of one channel."""

    def __init__(self, channel_id: ChannelId, cursors: CursorStore) -> None:
        self._channel_id = channel_id
        self._cursors = cursors
        # Migrations never change once made, so what is known is cached for good.
        self._origin: dict[int, int] = {}
        self._moved: dict[int, int] = {}

    async def record(self, group_id: int, supergroup_id: int) -> None:
        """Remember that `group_id` became `supergroup_id`."""
        if group_id == supergroup_id:
            return
        await self._cursors.save(self._channel_id, _ORIGIN.format(supergroup_id), str(group_id))
        await self._cursors.save(self._channel_id, _MOVED.format(group_id), str(supergroup_id))
        self._origin[supergroup_id] = group_id
        self._moved[group_id] = supergroup_id

    async def conversation_id(self, chat_id: int, chat_type: str) -> int:
        """The id the chat's conversation is known by (the original group's for a
        supergroup that was upgraded from one)."""
        if chat_type != "supergroup":
            return chat_id
        return await self._lookup(chat_id, _ORIGIN, self._origin)

    async def current_id(self, chat_id: int) -> int:
        """The id to send to: the supergroup's, when `chat_id` is a group since upgraded."""
        if chat_id >= 0:
            return chat_id
        return await self._lookup(chat_id, _MOVED, self._moved)

    async def _lookup(self, chat_id: int, key: str, cache: dict[int, int]) -> int:
        if chat_id in cache:
            return cache[chat_id]
        value = await self._cursors.load(self._channel_id, key.format(chat_id))
        if value is None:
            return chat_id
        cache[chat_id] = int(value)
        return cache[chat_id]
