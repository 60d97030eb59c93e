"""In-memory stand-ins for the durable stores a connector is handed."""

from __future__ import annotations

from connectors.types import ChannelId


class MemoryCursors:
    """A CursorStore in a dict; share one between connector instances to model a restart."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def load(self, channel_id: ChannelId, key: str) -> str | None:
        return self.values.get((channel_id, key))

    async def save(self, channel_id: ChannelId, key: str, value: str) -> None:
        self.values[(channel_id, key)] = value
