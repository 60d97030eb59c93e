"""Pure mapping of Telegram updates onto the hub's shapes: a message (new, edited, in a
channel) → `Inbound` plus the files to download; `my_chat_member` → `ReachabilityChange`.

Rules, all stable across re-parsing:

- external id `"{chat id}:{message id}"` (message ids are per chat); an edit is
  `"{chat id}:{message id}:edit:{edit date}"` with `edit_of` naming the original.
- Private chat: the sender is the user. Group, supergroup: the sender is the group (the
  conversation's contact, whom replies go to) and `author` the member who wrote; an
  anonymous admin (`sender_chat` is the group itself) has no author, a channel posting
  into the group is the author. Channel post: the sender is the channel.
- A group upgraded to a supergroup keeps its conversation: the caller passes the id the
  conversation is known by (the original group's, see chats.py) as `conversation_chat`.
- Service messages (joins, pins, migrations) are recorded as text, marked
  `auto_submitted` so that nothing auto-acknowledges them.
- "/start PAYLOAD" (a deep link) is kept verbatim as the text; `start_payload` reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from aiogram.types import Chat, ChatMemberUpdated, Message, PhotoSize, User

from connectors.telegram.render import body_text, chat_name, is_service, user_name
from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    RawPayload,
    Reachability,
    ReachabilityChange,
    SenderHandle,
    ThreadHints,
)

GROUP_TYPES = frozenset({"group", "supergroup"})
# A bot's membership statuses in which it receives messages and may write.
_PRESENT = frozenset({"creator", "administrator", "member"})
_START = re.compile(r"^/start(?:@\w+)?\s+(\S+)")


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file a message carries, to be fetched with getFile."""

    file_id: str
    filename: str
    content_type: str
    size: int | None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """An inbound message without its files' contents, and the files to fetch."""

    inbound: Inbound
    files: tuple[FileRef, ...]


def external_id(chat_id: int, message_id: int) -> ExternalId:
    """The idempotency key of a Telegram message (message ids are unique per chat only)."""
    return ExternalId(f"{chat_id}:{message_id}")


def start_payload(text: str) -> str | None:
    """The deep-link payload of "/start PAYLOAD" (t.me/bot?start=PAYLOAD), else None."""
    match = _START.match(text)
    return match.group(1) if match else None


def user_handle(user: User) -> SenderHandle:
    """A Telegram user as an identity: the stable user id, names as display data."""
    return SenderHandle(IdentityKind.TELEGRAM, str(user.id), user_name(user))


def chat_handle(chat: Chat, chat_id: int | None = None) -> SenderHandle:
    """A chat (group, channel) as the identity a conversation is held with."""
    return SenderHandle(IdentityKind.TELEGRAM, str(chat_id or chat.id), chat_name(chat))


def parse_message(
    channel_id: ChannelId,
    message: Message,
    raw: RawPayload | None,
    *,
    edited: bool = False,
    conversation_chat: int | None = None,
) -> ParsedMessage:
    """One message (or channel post; `edited` for edited_message / edited_channel_post)
    as an Inbound whose attachments are still to be downloaded (`files`)."""
    chat = message.chat
    conversation = conversation_chat if conversation_chat is not None else chat.id
    sender, author = _who(message, conversation)
    original = external_id(chat.id, message.message_id)
    sent_at: datetime = message.date
    if edited:
        # aiogram types `edit_date` as plain Unix seconds, `date` as a datetime.
        edit_seconds = message.edit_date or int(message.date.timestamp())
        sent_at = datetime.fromtimestamp(edit_seconds, UTC)
        own_id = ExternalId(f"{original}:edit:{edit_seconds}")
    else:
        own_id = original
    inbound = Inbound(
        channel_id=channel_id,
        external_id=own_id,
        sender=sender,
        author=author,
        text=body_text(message),
        sent_at=sent_at,
        thread=ThreadHints(chat_id=str(conversation)),
        raw=raw,
        auto_submitted=is_service(message),
        edit_of=original if edited else None,
        reply_to=_reply_to(message),
        identities=_own_phone(message),
        attribution=_attribution(message, edited),
    )
    return ParsedMessage(inbound, files_of(message))


def _own_phone(message: Message) -> tuple[SenderHandle, ...]:
    """The phone of a contact the user shared of themselves (the "share my phone number"
    button): another identity of theirs. A contact card of someone else is only text."""
    contact, user = message.contact, message.from_user
    if contact is None or user is None or contact.user_id != user.id:
        return ()
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    return (SenderHandle(IdentityKind.PHONE, contact.phone_number, name or None),)


def _attribution(message: Message, edited: bool) -> tuple[tuple[str, str], ...]:
    """Where a user came from: the payload of the deep link (t.me/bot?start=PAYLOAD)
    that opened the chat, from the /start command it sends."""
    payload = None if edited or not message.text else start_payload(message.text)
    if payload is None:
        return ()
    return (("source", "telegram_start"), ("start_payload", payload))


def parse_membership(
    channel_id: ChannelId, update: ChatMemberUpdated, *, conversation_chat: int | None = None
) -> ReachabilityChange | None:
    """The bot's own membership changing (my_chat_member): a user blocking the bot in a
    private chat (or the bot removed from a group) is BLOCKED, the way back UNBLOCKED;
    other changes (promotions, restrictions) are None."""
    old = _present(update.old_chat_member)
    new = _present(update.new_chat_member)
    if old == new:
        return None
    chat = update.chat
    if chat.type == "private":
        who = user_handle(update.from_user) if update.from_user.id == chat.id else chat_handle(chat)
    else:
        who = chat_handle(chat, conversation_chat)
    return ReachabilityChange(
        channel_id=channel_id,
        who=who,
        change=Reachability.UNBLOCKED if new else Reachability.BLOCKED,
        at=update.date,
        detail=f"bot status {_status(update.old_chat_member)} -> {_status(update.new_chat_member)}",
    )


def files_of(message: Message) -> tuple[FileRef, ...]:
    """Every file the message carries: the largest photo size, documents, media, stickers."""
    files: list[FileRef] = []
    if message.photo:
        photo = _largest(message.photo)
        files.append(FileRef(photo.file_id, "photo.jpg", "image/jpeg", photo.file_size))
    if message.animation is not None:
        a = message.animation
        files.append(
            FileRef(
                a.file_id, a.file_name or "animation.mp4", a.mime_type or "video/mp4", a.file_size
            )
        )
    elif message.document is not None:
        # An animation also sets `document` (Bot API compatibility): fetched once above.
        d = message.document
        files.append(
            FileRef(
                d.file_id,
                d.file_name or "document",
                d.mime_type or "application/octet-stream",
                d.file_size,
            )
        )
    if message.audio is not None:
        au = message.audio
        files.append(
            FileRef(
                au.file_id, au.file_name or "audio.mp3", au.mime_type or "audio/mpeg", au.file_size
            )
        )
    if message.voice is not None:
        v = message.voice
        files.append(FileRef(v.file_id, "voice.ogg", v.mime_type or "audio/ogg", v.file_size))
    if message.video is not None:
        vi = message.video
        files.append(
            FileRef(
                vi.file_id, vi.file_name or "video.mp4", vi.mime_type or "video/mp4", vi.file_size
            )
        )
    if message.video_note is not None:
        n = message.video_note
        files.append(FileRef(n.file_id, "video_note.mp4", "video/mp4", n.file_size))
    if message.sticker is not None:
        s = message.sticker
        if s.is_animated:
            name, kind = "sticker.tgs", "application/x-tgsticker"
        elif s.is_video:
            name, kind = "sticker.webm", "video/webm"
        else:
            name, kind = "sticker.webp", "image/webp"
        files.append(FileRef(s.file_id, name, kind, s.file_size))
    return tuple(files)


def _who(message: Message, conversation: int) -> tuple[SenderHandle | None, SenderHandle | None]:
    chat = message.chat
    if chat.type == "private":
        user = message.from_user
        return (user_handle(user) if user is not None else chat_handle(chat)), None
    if chat.type in GROUP_TYPES:
        group = chat_handle(chat, conversation)
        if message.sender_chat is not None:
            # Anonymous admin (the group itself) or a channel writing into the group.
            same = message.sender_chat.id in (chat.id, conversation)
            return group, None if same else chat_handle(message.sender_chat)
        user = message.from_user
        return group, user_handle(user) if user is not None else None
    return chat_handle(chat, conversation), None


def _reply_to(message: Message) -> ExternalId | None:
    replied = message.reply_to_message
    if replied is None:
        return None
    # In a forum topic every message "replies" to the topic's first message; that is
    # the topic, not an answer to anyone.
    if (
        message.is_topic_message
        and replied.message_id == message.message_thread_id
        and replied.forum_topic_created is not None
    ):
        return None
    return external_id(replied.chat.id, replied.message_id)


def _largest(sizes: list[PhotoSize]) -> PhotoSize:
    return max(sizes, key=lambda p: (p.width * p.height, p.file_size or 0))


def _status(member: object) -> str:
    status = getattr(member, "status", "")
    return str(getattr(status, "value", status))


def _present(member: object) -> bool:
    status = _status(member)
    if status == "restricted":
        return bool(getattr(member, "is_member", False))
    return status in _PRESENT
