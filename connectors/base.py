"""The surface every connector offers, and the sinks and stores it is handed."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aiohttp import web

from connectors.types import (
    ChannelHealth,
    ChannelId,
    DeliveryUpdate,
    Inbound,
    InboundAttachment,
    Outbound,
    ReachabilityChange,
    SendResult,
)

InboundSink = Callable[[Inbound], Awaitable[object]]
"""Hands one inbound message to the timeline; returns after it is committed."""

StatusSink = Callable[[DeliveryUpdate], Awaitable[object]]
"""Applies a delivery report to the outbound message it names."""

HealthSink = Callable[[ChannelId, ChannelHealth, str | None], Awaitable[object]]
"""Records a channel's connection health (with a reason for admins)."""

ReachabilitySink = Callable[[ReachabilityChange], Awaitable[object]]
"""Records that a contact opted out of / into a channel, or blocked / unblocked it."""


class CursorStore(Protocol):
    """Durable per-channel progress (IMAP UIDVALIDITY/UID, Telegram update offset)."""

    async def load(self, channel_id: ChannelId, key: str) -> str | None: ...

    async def save(self, channel_id: ChannelId, key: str, value: str) -> None: ...


class Grouping(enum.StrEnum):
    """How a channel's inbound messages are grouped into conversations."""

    # Email: by Message-ID / In-Reply-To / References (ours included), scoped to the
    # channel and the contact; a message that cites nothing known starts a conversation.
    # A subject match alone never merges.
    THREAD = "thread"
    # Chat (SMS, Telegram private chats): one open conversation per contact and channel.
    CONTACT = "contact"
    # Every message starts its own conversation (web form submissions).
    MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can carry; shared code applies these before calling `send`."""

    can_send: bool = True  # False: replies on this channel are refused up front
    grouping: Grouping = Grouping.CONTACT
    max_text_length: int | None = None  # characters; longer replies are refused with a clear error
    supports_subject: bool = False
    supports_html: bool = False
    supports_attachments: bool = False
    max_attachment_bytes: int | None = None
    sends_per_second: float | None = None  # provider rate limit, per channel
    idempotent_send: bool = False  # the provider dedupes a re-send of the same Outbound.message_id
    # Provider rate limit per recipient (Telegram: about 1 message a second per chat).
    sends_per_second_per_recipient: float | None = None


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """Everything a running connector is handed: it never sees the database."""

    inbound: InboundSink
    status: StatusSink
    health: HealthSink
    cursors: CursorStore
    reachability: ReachabilitySink
    # Where providers reach this installation (SWITCHBOARD_PUBLIC_URL, else the listening
    # address): webhook signatures are checked against it, callbacks are registered on it.
    public_url: str = "http://127.0.0.1:8080"


@runtime_checkable
class Connector(Protocol):
    """One configured channel's connector, built by its kind's factory with the channel's
    configuration and a `ConnectorContext` (connectors/registry.py).

    Every process builds the connectors of the active channels: the web role serves their
    `routes()`, the worker role sends through them. `run()` (the receiving side: IMAP,
    long polling) runs in exactly one process at a time, the holder of the channel's lease.
    `send` must work whether or not `run()` is running in this process.
    """

    channel_id: ChannelId
    capabilities: Capabilities

    async def run(self) -> None:
        """Receive until cancelled. Return at once when the channel only receives through
        webhooks. Raise when receiving fails (AuthError for refused credentials): the
        runtime records the channel's health and runs it again after a capped backoff."""

    async def close(self) -> None:
        """Release connections; called once when the instance is discarded."""

    async def send(self, message: Outbound) -> SendResult:
        """Hand one message to the provider; raises AuthError, TransientError or PermanentError."""

    async def fetch_attachment(self, attachment: InboundAttachment) -> InboundAttachment:
        """Download again a file whose first download failed (its `source` says what to
        fetch): the attachment with `data`, or with `error` again. Connectors that never
        defer files answer it unchanged."""

    def routes(self) -> list[web.RouteDef]:
        """Provider webhook routes this connector serves (may be empty): concrete paths under
        /webhooks/ that name the channel, e.g. /webhooks/twilio/{channel id}/status, so one
        dispatching route serves every channel's webhooks without a restart."""
