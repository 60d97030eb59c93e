"""Forgetting form visitors' IP addresses after the retention period (GDPR data
minimisation): each web form channel's `ip_retention_days` (0, or `keep_ip_address`
false: kept not at all, so anything recorded earlier goes at the next round).

An address is recorded in three places, and each is cleared once older than the period:
the `form_submissions.ip` column, the "ip" key of the "form.submitted" timeline event,
and the normalized inbound kept with a flagged raw payload (its attribution pairs), so a
later `switchboard reprocess` cannot bring it back. (The submissions' attribution JSON and
the raw bodies never hold it: the address comes from the request, not the body.)

The worker runs `IpRetention.run` (web/app.py); every round is idempotent, so several
workers running it at once only repeat each other's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from connectors.types import ChannelKind
from connectors.webform.inbound import FORM_SUBMITTED
from timeline.clock import database_now
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.models import Channel, Form, FormSubmission, ParseStatus, RawInbound, TimelineEvent
from web.public_forms.accept import read_config

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0
BATCH = 500


class IpRetention:
    """The worker's loop that clears IP addresses older than each channel's retention."""

    def __init__(
        self,
        sessions: SessionFactory,
        box: SecretBox,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._clock = clock  # None: the database's clock

    async def run(self, stop: asyncio.Event, interval: float = PURGE_INTERVAL_SECONDS) -> None:
        """Purge until `stop` is set; a failing round is logged and tried again later."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                logger.exception("IP address purge failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def run_once(self) -> int:
        """One round over every web form channel; returns how many records it cleared."""
        async with self._sessions() as session:
            now = self._clock() if self._clock is not None else await database_now(session)
            channels = (
                await session.execute(
                    select(Channel.id, Channel.config_encrypted).where(
                        Channel.kind == ChannelKind.WEBFORM.value
                    )
                )
            ).all()
        cleared = 0
        for channel_id, stored in channels:
            config = read_config(self._box, stored, channel_id)
            days = config.ip_retention_days if config.keeps_ip else 0
            cleared += await purge_channel(self._sessions, channel_id, now - timedelta(days=days))
        if cleared:
            logger.info("cleared %d IP addresses past their retention", cleared)
        return cleared


async def purge_channel(sessions: SessionFactory, channel_id: uuid.UUID, before: datetime) -> int:
    """Clear the IP addresses a channel's submissions recorded before `before`."""
    async with sessions() as session, session.begin():
        forms = select(Form.id).where(Form.channel_id == channel_id).scalar_subquery()
        result = await session.execute(
            update(FormSubmission)
            .where(
                FormSubmission.form_id.in_(forms),
                FormSubmission.created_at < before,
                FormSubmission.ip.is_not(None),
            )
            .values(ip=None)
            .execution_options(synchronize_session=False)
        )
    cleared = int(getattr(result, "rowcount", 0) or 0)
    cleared += await _purge_events(sessions, channel_id, before)
    cleared += await _purge_raw(sessions, channel_id, before)
    return cleared


async def _purge_events(sessions: SessionFactory, channel_id: uuid.UUID, before: datetime) -> int:
    cleared = 0
    while True:
        async with sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(TimelineEvent)
                    .where(
                        TimelineEvent.kind == FORM_SUBMITTED,
                        TimelineEvent.occurred_at < before,
                        TimelineEvent.data["channel_id"].as_string() == str(channel_id),
                        TimelineEvent.data["ip"].as_string().is_not(None),
                    )
                    .limit(BATCH)
                    .with_for_update()
                )
            )
            for row in rows:
                row.data = {k: v for k, v in row.data.items() if k != "ip"}
        cleared += len(rows)
        if len(rows) < BATCH:
            return cleared


async def _purge_raw(sessions: SessionFactory, channel_id: uuid.UUID, before: datetime) -> int:
    # Only flagged payloads keep their normalized inbound (timeline/ingest.py): few rows.
    cleared = 0
    async with sessions() as session, session.begin():
        rows = await session.scalars(
            select(RawInbound)
            .where(
                RawInbound.channel_id == channel_id,
                RawInbound.parse_status != ParseStatus.OK.value,
                RawInbound.received_at < before,
                RawInbound.inbound.is_not(None),
            )
            .with_for_update()
        )
        for row in rows:
            kept = _without_ip(row.inbound)
            if kept is not None:
                row.inbound = kept
                cleared += 1
    return cleared


def _without_ip(inbound: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored inbound without the "ip" attribution pair; None when it has none."""
    if not inbound:
        return None
    pairs = inbound.get("attribution")
    if not isinstance(pairs, list):
        return None
    kept = [p for p in pairs if not (isinstance(p, list) and p and p[0] == "ip")]
    if len(kept) == len(pairs):
        return None
    return {**inbound, "attribution": kept}
