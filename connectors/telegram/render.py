"""Readable text for Telegram messages: the body agents read, never empty.

A message without text (a photo, a location, a poll, a service message) is rendered as
a short bracketed line, e.g. "[location] 52.52, 13.4 https://www.openstreetmap.org/...";
a caption, when there is one, is the text of a media message.
"""

from __future__ import annotations

from aiogram.types import Chat, Message, User

from connectors.telegram.text import readable

# Service messages (Bot API "Message" fields that describe an event in the chat rather
# than something a person wrote). They are recorded (marked auto-submitted, so nothing
# auto-acknowledges them), never dropped.
SERVICE_KINDS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "channel_chat_created",
        "message_auto_delete_timer_changed",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "users_shared",
        "chat_shared",
        "connected_website",
        "write_access_allowed",
        "proximity_alert_triggered",
        "boost_added",
        "chat_background_set",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "general_forum_topic_hidden",
        "general_forum_topic_unhidden",
        "giveaway_created",
        "giveaway_completed",
        "video_chat_scheduled",
        "video_chat_started",
        "video_chat_ended",
        "video_chat_participants_invited",
    }
)


def user_name(user: User) -> str:
    """ "First Last (@username)", as much of it as Telegram gave."""
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    if user.username:
        return f"{name} (@{user.username})" if name else f"@{user.username}"
    return name or str(user.id)


def chat_name(chat: Chat) -> str:
    """A chat's title, else its people's name, else its @username, else its id."""
    if chat.title:
        return chat.title
    name = " ".join(part for part in (chat.first_name, chat.last_name) if part)
    if chat.username:
        return f"{name} (@{chat.username})" if name else f"@{chat.username}"
    return name or str(chat.id)


def map_link(latitude: float, longitude: float) -> str:
    """An OpenStreetMap link centred on the point."""
    return (
        f"https://www.openstreetmap.org/?mlat={latitude}&mlon={longitude}"
        f"#map=17/{latitude}/{longitude}"
    )


def content_kind(message: Message) -> str:
    """aiogram's content type of the message as a plain string ("text", "photo", ...)."""
    return str(getattr(message.content_type, "value", message.content_type))


def is_service(message: Message) -> bool:
    """Whether the message records an event in the chat rather than what someone wrote."""
    return content_kind(message) in SERVICE_KINDS


def body_text(message: Message) -> str:
    """The readable text of a message: its text or caption (hidden links spelled out),
    else a rendering of what it carries; prefixed by who it was forwarded from."""
    body = _body(message)
    origin = _forwarded_from(message)
    return f"[forwarded from {origin}]\n{body}" if origin else body


def _body(message: Message) -> str:
    if message.text:
        return readable(message.text, message.entities)
    structured = _structured(message)
    if structured is not None:
        return structured
    if message.caption:
        return readable(message.caption, message.caption_entities)
    return _media_label(message) or _service_text(message) or f"[{_words(content_kind(message))}]"


def _structured(message: Message) -> str | None:
    """Renderings that carry data the reader needs whatever the caption says."""
    if message.venue is not None:
        venue = message.venue
        point = venue.location
        return (
            f"[venue] {venue.title}, {venue.address}\n"
            f"{point.latitude}, {point.longitude} {map_link(point.latitude, point.longitude)}"
        )
    if message.location is not None:
        point = message.location
        label = "[live location]" if point.live_period else "[location]"
        link = map_link(point.latitude, point.longitude)
        return f"{label} {point.latitude}, {point.longitude} {link}"
    if message.contact is not None:
        contact = message.contact
        name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
        own = (
            " (their own number)"
            if contact.user_id is not None
            and message.from_user is not None
            and contact.user_id == message.from_user.id
            else ""
        )
        return f"[contact] {name}, phone {contact.phone_number}{own}"
    if message.poll is not None:
        poll = message.poll
        label = "[quiz]" if poll.type == "quiz" else "[poll]"
        options = "\n".join(f"- {option.text}" for option in poll.options)
        return f"{label} {poll.question}\n{options}"
    if message.dice is not None:
        return f"[dice] {message.dice.emoji} {message.dice.value}"
    if message.sticker is not None and not message.caption:
        return message.sticker.emoji or "[sticker]"
    return None


def _media_label(message: Message) -> str | None:
    if message.photo:
        return "[photo]"
    if message.animation is not None:
        return "[animation]"
    if message.document is not None:
        return f"[document] {message.document.file_name or ''}".rstrip()
    if message.audio is not None:
        audio = message.audio
        title = " - ".join(part for part in (audio.performer, audio.title) if part)
        return f"[audio] {title or audio.file_name or ''}".rstrip()
    if message.voice is not None:
        return f"[voice message, {message.voice.duration} s]"
    if message.video is not None:
        return f"[video, {message.video.duration} s]"
    if message.video_note is not None:
        return f"[video message, {message.video_note.duration} s]"
    return None


def _service_text(message: Message) -> str | None:
    if message.new_chat_members:
        names = ", ".join(user_name(user) for user in message.new_chat_members)
        return f"[joined the group] {names}"
    if message.left_chat_member is not None:
        return f"[left the group] {user_name(message.left_chat_member)}"
    if message.new_chat_title is not None:
        return f"[renamed the group] {message.new_chat_title}"
    if message.migrate_to_chat_id is not None:
        return f"[group upgraded to a supergroup] new chat id {message.migrate_to_chat_id}"
    if message.migrate_from_chat_id is not None:
        return f"[supergroup created from a group] old chat id {message.migrate_from_chat_id}"
    pinned = message.pinned_message
    if pinned is not None:
        inner = pinned if isinstance(pinned, Message) else None
        return f"[pinned] {_body(inner)}" if inner is not None else "[pinned a message]"
    if message.write_access_allowed is not None:
        app = message.write_access_allowed.web_app_name
        return f"[allowed the bot to write] {app or ''}".rstrip()
    return None


def _forwarded_from(message: Message) -> str | None:
    origin = message.forward_origin
    if origin is not None:
        for attribute in ("sender_user", "sender_chat", "chat"):
            value = getattr(origin, attribute, None)
            if isinstance(value, User):
                return user_name(value)
            if isinstance(value, Chat):
                return chat_name(value)
        hidden = getattr(origin, "sender_user_name", None)
        return str(hidden) if hidden else "someone"
    # Before Bot API 7.0 forwards were described by these fields (still in old payloads).
    if message.forward_from is not None:
        return user_name(message.forward_from)
    if message.forward_from_chat is not None:
        return chat_name(message.forward_from_chat)
    if message.forward_sender_name:
        return message.forward_sender_name
    return None


def _words(kind: str) -> str:
    return kind.replace("_", " ")
