"""The websocket's frames: what clients may send (parsed and checked here, at the edge)
and the one JSON shape of everything the server sends (docs: ws_protocol)."""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from typing import Any

# Inbound frames are a few ids; anything larger is refused with an error frame.
MAX_FRAME_BYTES = 4096
PRESENCE_STATUSES = frozenset({"online", "away"})


class FrameError(ValueError):
    """A client frame that cannot be acted on; the message goes back in an error frame."""


class Kind(enum.StrEnum):
    PING = "ping"
    PRESENCE = "presence"  # the user's availability: online or away
    VIEWING = "viewing"  # the user has a conversation open (re-sent every <= 30 s)
    LEFT = "left"  # ... and closed it
    TYPING = "typing"  # started or stopped typing a reply


CONVERSATION_KINDS = frozenset({Kind.VIEWING, Kind.LEFT, Kind.TYPING})


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A checked client frame."""

    kind: Kind
    status: str | None = None
    conversation_id: uuid.UUID | None = None
    typing: bool = False


def parse_frame(text: str) -> ClientFrame:
    """The frame a client sent, or FrameError saying what is wrong with it."""
    if len(text) > MAX_FRAME_BYTES or len(text.encode()) > MAX_FRAME_BYTES:
        raise FrameError(f"frame over {MAX_FRAME_BYTES} bytes")
    try:
        value = json.loads(text)
    except ValueError as err:
        raise FrameError("frame is not JSON") from err
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise FrameError('a frame is a JSON object with a "type"')
    try:
        kind = Kind(value["type"])
    except ValueError as err:
        raise FrameError("unknown frame type; known: " + ", ".join(k.value for k in Kind)) from err
    if kind is Kind.PING:
        return ClientFrame(kind)
    if kind is Kind.PRESENCE:
        status = value.get("status")
        if status not in PRESENCE_STATUSES:
            raise FrameError('"status" must be "online" or "away"')
        return ClientFrame(kind, status=status)
    conversation_id = _uuid(value.get("conversation_id"))
    typing = value.get("typing", False)
    if kind is Kind.TYPING and not isinstance(typing, bool):
        raise FrameError('"typing" must be true or false')
    return ClientFrame(kind, conversation_id=conversation_id, typing=typing is True)


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise FrameError('"conversation_id" must be a conversation id')
    try:
        return uuid.UUID(value)
    except ValueError as err:
        raise FrameError('"conversation_id" must be a conversation id') from err


def server_frame(kind: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """The text of a server frame: {"id", "type", "data"}."""
    return json.dumps({"id": event_id, "type": kind, "data": data}, separators=(",", ":"))


def error_frame(message: str) -> str:
    return server_frame("error", {"message": message})


PONG = server_frame("pong", {})
RESYNC = server_frame("resync", {})
