"""Who may receive an event (ws_protocol): computed once per event, checked per socket.

Events of a conversation go to those who see its channel (a conversation's own channel,
not a reply's: a reply sent on another channel still belongs to the conversation);
events of a contact to those who see a channel of one of its conversations (who may open
the contact through the API);
presence to everyone; events aimed at one user (data.user_id, e.g. notification.created)
to that user alone; a channel's health (its provider's error text) and anything else to
admins and managers only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from timeline.channel_state import HEALTH_CHANGED
from timeline.events import Event

VIEWERS = "conversation.viewers"
TYPING = "conversation.typing"
# Collision signals: about a conversation, and their user_id is who acts, not a target.
COLLISION = frozenset({VIEWERS, TYPING})
# Events of a contact (and of a contact's notes), by their type's prefix.
CONTACT_EVENTS = ("contact.", "note.")
# About a channel, yet only for those who run channels.
STAFF_ONLY = frozenset({HEALTH_CHANGED})


@dataclass(frozen=True, slots=True)
class Audience:
    """Who gets an event: everyone, one user, the viewers of a channel, else staff."""

    everyone: bool = False
    user_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None
    channel_ids: frozenset[uuid.UUID] | None = None  # any one of them (a contact's)


EVERYONE = Audience(everyone=True)
STAFF = Audience()


@dataclass(slots=True)
class Viewer:
    """What one connected user may see: `channels` None means every channel (admins and
    managers); events for nobody in particular go only to them."""

    user_id: uuid.UUID
    channels: frozenset[uuid.UUID] | None

    def sees_channel(self, channel_id: uuid.UUID) -> bool:
        return self.channels is None or channel_id in self.channels

    def may_receive(self, audience: Audience) -> bool:
        if audience.everyone:
            return True
        if audience.user_id is not None:
            return audience.user_id == self.user_id
        if audience.channel_id is not None:
            return self.sees_channel(audience.channel_id)
        if audience.channel_ids is not None:
            return self.channels is None or not self.channels.isdisjoint(audience.channel_ids)
        return self.channels is None


def id_in(data: dict[str, Any], key: str) -> uuid.UUID | None:
    """A uuid field of event data, or None when absent or not an id."""
    value = data.get(key)
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def conversation_to_resolve(event: Event) -> uuid.UUID | None:
    """The conversation whose channel decides the audience, when one does."""
    if event.type.startswith("presence."):
        return None
    if event.type not in COLLISION and id_in(event.data, "user_id") is not None:
        return None
    return id_in(event.data, "conversation_id")


def contact_to_resolve(event: Event) -> uuid.UUID | None:
    """The contact whose conversations' channels decide the audience, when one does: its
    own events and its notes' (a merge names the survivor, who holds the conversations
    now)."""
    if not event.type.startswith(CONTACT_EVENTS) or id_in(event.data, "user_id") is not None:
        return None
    return id_in(event.data, "contact_id") or id_in(event.data, "survivor_id")


def audience_of(
    event: Event,
    conversation_channel: uuid.UUID | None,
    contact_channels: frozenset[uuid.UUID] | None = None,
) -> Audience:
    """The audience of `event`; `conversation_channel` is the channel of its conversation
    (conversation_to_resolve), None when it names none or it is unknown;
    `contact_channels` those of its contact's conversations (contact_to_resolve)."""
    if event.type.startswith("presence."):
        return EVERYONE
    if event.type in STAFF_ONLY:
        return STAFF
    if event.type not in COLLISION and (user_id := id_in(event.data, "user_id")) is not None:
        return Audience(user_id=user_id)
    if contact_channels is not None:
        return Audience(channel_ids=contact_channels)
    channel_id = conversation_channel or id_in(event.data, "channel_id")
    return STAFF if channel_id is None else Audience(channel_id=channel_id)
