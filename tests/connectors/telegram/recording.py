"""An in-memory ConnectorContext that records what reaches each sink (reusable)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from connectors.base import ConnectorContext
from connectors.types import (
    ChannelHealth,
    ChannelId,
    DeliveryUpdate,
    Inbound,
    ReachabilityChange,
)
from tests.connectors.memory import MemoryCursors


class SinkDown(Exception):
    """What the recording inbound sink raises while `fail_inbound` is set."""


@dataclass
class Recorder:
    """Everything handed to the sinks, in order; `fail_inbound` makes the inbound sink
    raise (the database being down), `hold_after` makes it stall (a slow commit)."""

    cursors: MemoryCursors = field(default_factory=MemoryCursors)
    inbound: list[Inbound] = field(default_factory=list)
    status: list[DeliveryUpdate] = field(default_factory=list)
    health: list[tuple[ChannelId, ChannelHealth, str | None]] = field(default_factory=list)
    reachability: list[ReachabilityChange] = field(default_factory=list)
    fail_inbound: bool = False
    # Once this many messages are recorded, further hand-overs wait for `release()`.
    hold_after: int | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let held hand-overs through (and every later one)."""
        self.hold_after = None
        self._released.set()

    def context(self, public_url: str = "http://127.0.0.1:8080") -> ConnectorContext:
        """A ConnectorContext whose sinks record here."""
        return ConnectorContext(
            inbound=self._inbound,
            status=self._status,
            health=self._health,
            cursors=self.cursors,
            reachability=self._reachability,
            public_url=public_url,
        )

    async def _inbound(self, message: Inbound) -> object:
        if self.fail_inbound:
            raise SinkDown("database unavailable")
        if self.hold_after is not None and len(self.inbound) >= self.hold_after:
            await self._released.wait()
        self.inbound.append(message)
        return None

    async def _status(self, update: DeliveryUpdate) -> object:
        self.status.append(update)
        return None

    async def _health(
        self, channel_id: ChannelId, health: ChannelHealth, reason: str | None
    ) -> object:
        self.health.append((channel_id, health, reason))
        return None

    async def _reachability(self, change: ReachabilityChange) -> object:
        self.reachability.append(change)
        return None
