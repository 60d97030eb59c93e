"""The registry's entry points for Telegram, importing the connector (and aiogram, whose
types take seconds to import) only when a Telegram channel is used: the CLI's commands
and a hub without Telegram channels start without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import Connector, ConnectorContext
from connectors.config import ChannelConfig
from connectors.types import ChannelId, Inbound, RawPayload

if TYPE_CHECKING:
    from connectors.telegram.connector import BotIdentity


def build(channel_id: ChannelId, config: ChannelConfig, context: ConnectorContext) -> Connector:
    """The connector of a Telegram channel."""
    from connectors.telegram import connector

    return connector.build(channel_id, config, context)


def parse_raw(channel_id: ChannelId, payload: RawPayload) -> Inbound:
    """Re-parse a stored update (see connector.parse_raw)."""
    from connectors.telegram import connector

    return connector.parse_raw(channel_id, payload)


async def check_connection(config: ChannelConfig) -> dict[str, str]:
    """The "test connection" action (see connector.check_connection)."""
    from connectors.telegram import connector

    return await connector.check_connection(config)


async def describe_bot(config: ChannelConfig) -> tuple[dict[str, str], BotIdentity | None]:
    """The check with the bot's name and username (see connector.describe_bot)."""
    from connectors.telegram import connector

    return await connector.describe_bot(config)
