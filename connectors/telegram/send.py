"""Sending replies: text split into Bot API sized messages, then each attachment.

A reply sent as several messages remembers (in the cursor store, under its own message
id) how many parts went out, so a retry after a failure in the middle (a 429 on the
third part) sends only the rest instead of repeating what the customer already has.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramMigrateToChat
from aiogram.types import BufferedInputFile, ReplyParameters
from aiogram.types import Message as TgMessage

from connectors.base import CursorStore, ReachabilitySink
from connectors.errors import PermanentError
from connectors.telegram.chats import ChatAliases
from connectors.telegram.client import translate
from connectors.telegram.split import split_text
from connectors.types import (
    ChannelId,
    IdentityKind,
    Outbound,
    OutboundAttachment,
    ProviderMessageId,
    Reachability,
    ReachabilityChange,
    SenderHandle,
    SendResult,
)

log = logging.getLogger(__name__)

PHOTO_LIMIT_BYTES = 10 * 1024 * 1024  # sendPhoto: at most 10 MB; bigger images go as documents
_PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# The Bot API's descriptions of a 403 that means the customer cannot be written to.
_UNREACHABLE = ("bot was blocked by the user", "bot was kicked")
_PROGRESS = "telegram:sent:{}"


class Sender:
    """Sends one channel's replies through its bot."""

    def __init__(
        self,
        channel_id: ChannelId,
        bot: Bot,
        aliases: ChatAliases,
        cursors: CursorStore,
        reachability: ReachabilitySink,
    ) -> None:
        self._channel_id = channel_id
        self._bot = bot
        self._aliases = aliases
        self._cursors = cursors
        self._reachability = reachability

    async def send(self, message: Outbound) -> SendResult:
        """Send the text parts, then the attachments; answers the last message's id.
        Raises AuthError, TransientError (with retry_after on 429) or PermanentError."""
        chat = _chat_id(message.recipient)
        if isinstance(chat, int):
            chat = await self._aliases.current_id(chat)
        parts: list[str | OutboundAttachment] = [*split_text(message.text), *message.attachments]
        if not parts:
            raise PermanentError("nothing to send: the reply has neither text nor attachments")
        done, last_id = await self._progress(message, len(parts))
        answering = _message_number(message.reply_to)
        for index in range(done, len(parts)):
            # Only the first part answers the customer's message; the rest follow it.
            reply_to = answering if index == 0 else None
            sent = await self._send_part(message, chat, parts[index], reply_to)
            last_id = f"{sent.chat.id}:{sent.message_id}"
            if len(parts) > 1:
                await self._cursors.save(
                    self._channel_id, _PROGRESS.format(message.message_id), f"{index + 1} {last_id}"
                )
        return SendResult(provider_message_id=ProviderMessageId(last_id))

    async def _progress(self, message: Outbound, total: int) -> tuple[int, str]:
        if total == 1:
            return 0, ""
        saved = await self._cursors.load(self._channel_id, _PROGRESS.format(message.message_id))
        if not saved:
            return 0, ""
        count, _, last_id = saved.partition(" ")
        return min(int(count), total), last_id

    async def _send_part(
        self,
        message: Outbound,
        chat: int | str,
        part: str | OutboundAttachment,
        reply_to: int | None = None,
    ) -> TgMessage:
        try:
            try:
                return await self._call(chat, part, reply_to)
            except TelegramMigrateToChat as err:
                # Addressed to a group since upgraded: remember it and send to the supergroup.
                if isinstance(chat, int):
                    await self._aliases.record(chat, err.migrate_to_chat_id)
                return await self._call(err.migrate_to_chat_id, part, reply_to)
        except TelegramAPIError as err:
            if isinstance(err, TelegramForbiddenError):
                await self._note_unreachable(message, err.message)
            raise translate(err) from err

    async def _call(
        self, chat: int | str, part: str | OutboundAttachment, reply_to: int | None
    ) -> TgMessage:
        # The answered message may be gone (deleted by the customer): send anyway.
        answer = (
            None
            if reply_to is None
            else ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        )
        if isinstance(part, str):
            return await self._bot.send_message(chat, part, reply_parameters=answer)
        file = BufferedInputFile(part.data, filename=part.filename)
        if part.content_type in _PHOTO_TYPES and len(part.data) <= PHOTO_LIMIT_BYTES:
            return await self._bot.send_photo(chat, file, reply_parameters=answer)
        return await self._bot.send_document(chat, file, reply_parameters=answer)

    async def _note_unreachable(self, message: Outbound, reason: str) -> None:
        """A 403 saying the user blocked the bot is also recorded as the contact's state,
        so further replies are refused up front until they unblock it (my_chat_member)."""
        if not any(phrase in reason for phrase in _UNREACHABLE):
            return
        change = ReachabilityChange(
            channel_id=self._channel_id,
            who=SenderHandle(IdentityKind.TELEGRAM, message.recipient),
            change=Reachability.BLOCKED,
            at=datetime.now(UTC),
            detail=reason,
        )
        try:
            await self._reachability(change)
        except Exception:
            log.exception("telegram channel %s: recording a block failed", self._channel_id)


def _chat_id(recipient: str) -> int | str:
    """A numeric chat id, or an "@channelusername" the Bot API also accepts."""
    try:
        return int(recipient)
    except ValueError:
        if recipient.startswith("@"):
            return recipient
        raise PermanentError(f"not a Telegram chat id: {recipient!r}") from None


def _message_number(external_id: str | None) -> int | None:
    """The Telegram message id in one of our external ids ("chat:message[:edit:...]")."""
    if not external_id:
        return None
    parts = external_id.split(":")
    try:
        return int(parts[1]) if len(parts) >= 2 else None
    except ValueError:
        return None
