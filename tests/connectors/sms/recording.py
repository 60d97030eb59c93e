"""An in-memory ConnectorContext that records what reaches each sink, in order."""

from __future__ import annotations

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


@dataclass
class Recording:
    """The sinks of a ConnectorContext, keeping everything handed to them.

    `events` keeps the order across sinks as ("inbound" | "status" | "reachability" |
    "health", value). With `fail` set, the inbound/status/reachability sinks raise it, as
    the core does when the database is unavailable."""

    public_url: str = "https://switchboard.example.com"
    inbound: list[Inbound] = field(default_factory=list)
    statuses: list[DeliveryUpdate] = field(default_factory=list)
    reachability: list[ReachabilityChange] = field(default_factory=list)
    health: list[tuple[ChannelId, ChannelHealth, str | None]] = field(default_factory=list)
    events: list[tuple[str, object]] = field(default_factory=list)
    cursors: MemoryCursors = field(default_factory=MemoryCursors)
    fail: Exception | None = None

    def context(self) -> ConnectorContext:
        """A ConnectorContext whose sinks record into this object."""
        return ConnectorContext(
            inbound=self._inbound,
            status=self._status,
            health=self._health,
            cursors=self.cursors,
            reachability=self._reachability,
            public_url=self.public_url,
        )

    def kinds(self) -> list[str]:
        """The sink names in the order they were called."""
        return [kind for kind, _ in self.events]

    async def _inbound(self, message: Inbound) -> None:
        if self.fail is not None:
            raise self.fail
        self.inbound.append(message)
        self.events.append(("inbound", message))

    async def _status(self, update: DeliveryUpdate) -> None:
        if self.fail is not None:
            raise self.fail
        self.statuses.append(update)
        self.events.append(("status", update))

    async def _reachability(self, change: ReachabilityChange) -> None:
        if self.fail is not None:
            raise self.fail
        self.reachability.append(change)
        self.events.append(("reachability", change))

    async def _health(
        self, channel_id: ChannelId, health: ChannelHealth, reason: str | None
    ) -> None:
        self.health.append((channel_id, health, reason))
        self.events.append(("health", (health, reason)))
