"""Parked outbound jobs and the channel health that explains them.

A channel whose connector is not running, or whose provider refused our credentials
(`AuthError`), cannot send anything; retrying would only burn attempts (and, for
credentials, hammer the provider). So the dispatcher parks the job instead
(timeline/delivery_record.py's `record_parked`): it goes to 'parked' and its attempt is
not counted; for bad credentials the channel's other pending jobs park with it. The
message shows 'failed_temporary' with the reason, and the channel's health says so
(`record_channel_health`: bad_credentials with the provider's reason; unknown with
"not running" unless the health already names a problem a person must fix).

Parked jobs resume (pending, due now) when the channel recovers (`resume_parked`, once
per dispatcher round): when its connector runs again, or for bad credentials when its
health is no longer bad_credentials (a connector reported connected, an admin changed
the configuration) or a send on the channel succeeded (which also takes back the health
parking set, `clear_channel_health`). Because credentials may be fixed outside
Switchboard, one parked job per channel is also re-tried every ``park_probe_seconds``.
Time spent parked does not count against the retry period: each job's ``retry_from``
moves forward by its parked time when it resumes (`resume`), so a reply waiting for a
person never expires.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Update, and_, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import ChannelHealth
from timeline.channel_state import health_event
from timeline.events import Event
from timeline.models import Channel, JobState, OutboundJob, ParkCause
from timeline.send_outcome import Parked

logger = logging.getLogger(__name__)

NOT_RUNNING = "the channel is not running; replies wait until it runs again"
REFUSED = "the provider refused the channel's credentials"


async def resume_parked(
    session: AsyncSession,
    now: datetime,
    running: Callable[[uuid.UUID], bool],
    park_probe: timedelta,
) -> int:
    """Resume parked jobs whose channel recovered; probe channels still refused.

    `running` says whether a channel's connector runs in this worker; returns how many
    jobs resumed.
    """
    resumed = 0
    groups = (
        await session.execute(
            select(
                OutboundJob.channel_id,
                OutboundJob.parked_for,
                Channel.health,
                func.min(OutboundJob.next_attempt_at).label("probe_at"),
            )
            .join(Channel, Channel.id == OutboundJob.channel_id)
            .where(OutboundJob.state == JobState.PARKED.value)
            .group_by(OutboundJob.channel_id, OutboundJob.parked_for, Channel.health)
        )
    ).all()
    for group in groups:
        if not running(group.channel_id):
            continue  # still not running here
        refused = group.parked_for == ParkCause.BAD_CREDENTIALS.value
        if not refused or group.health != ChannelHealth.BAD_CREDENTIALS.value:
            count = await resume(session, group.channel_id, group.parked_for, now)
            logger.info(
                "channel %s recovered: %s parked outbound jobs resume",
                group.channel_id,
                count,
            )
            resumed += count
        elif group.probe_at <= now:
            # The credentials may have been fixed at the provider, which tells us
            # nothing: try one job (the oldest) now and the next in a while.
            await session.execute(
                sql_update(OutboundJob)
                .where(
                    OutboundJob.channel_id == group.channel_id,
                    OutboundJob.state == JobState.PARKED.value,
                    OutboundJob.parked_for == group.parked_for,
                )
                .values(next_attempt_at=now + park_probe)
                .execution_options(synchronize_session=False)
            )
            resumed += await resume(session, group.channel_id, group.parked_for, now, limit=1)
    return resumed


async def resume(
    session: AsyncSession,
    channel_id: uuid.UUID,
    cause: str | None,
    now: datetime,
    *,
    limit: int | None = None,
) -> int:
    """Move a channel's jobs parked for `cause` back to pending, due now; returns how many.

    Each job's retry period is extended by the time it spent parked.
    """
    query = (
        select(OutboundJob.id, OutboundJob.retry_from, OutboundJob.parked_at)
        .where(
            OutboundJob.channel_id == channel_id,
            OutboundJob.state == JobState.PARKED.value,
            OutboundJob.parked_for == cause
            if cause is not None
            else OutboundJob.parked_for.is_(None),
        )
        .order_by(OutboundJob.created_at, OutboundJob.id)
        .with_for_update(skip_locked=True)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    for row in rows:
        parked_for = max(now - row.parked_at, timedelta(0)) if row.parked_at else timedelta(0)
        await session.execute(
            sql_update(OutboundJob)
            .where(OutboundJob.id == row.id, OutboundJob.state == JobState.PARKED.value)
            .values(
                state=JobState.PENDING.value,
                next_attempt_at=now,
                retry_from=row.retry_from + parked_for,
                parked_for=None,
                parked_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return len(rows)


async def record_channel_health(
    session: AsyncSession, channel_id: uuid.UUID, outcome: Parked
) -> list[Event]:
    """Show why the channel's replies wait, in the same transaction that parks them.

    The same values timeline.channel_state.record_health stores, written here so that
    parking and the health that resumes it commit together; returns the health event to
    publish once committed (none when the health already named a problem to fix).
    """
    if outcome.cause is ParkCause.BAD_CREDENTIALS:
        statement = (
            sql_update(Channel)
            .where(Channel.id == channel_id)
            .values(health=ChannelHealth.BAD_CREDENTIALS.value, health_reason=outcome.reason)
        )
    else:
        # A health that already names something a person must fix says more than ours.
        statement = (
            sql_update(Channel)
            .where(
                Channel.id == channel_id,
                Channel.health.not_in(
                    [ChannelHealth.BAD_CREDENTIALS.value, ChannelHealth.CONFIG_ERROR.value]
                ),
            )
            .values(health=ChannelHealth.UNKNOWN.value, health_reason=outcome.reason)
        )
    return await _health_changed(session, statement)


async def clear_channel_health(session: AsyncSession, channel_id: uuid.UUID) -> list[Event]:
    """After a send went through, take back what parking said about the channel's health.

    Only the outbox's own verdicts: a connector's (IMAP may refuse what SMTP accepts)
    stays until that connector reports otherwise.
    """
    statement = (
        sql_update(Channel)
        .where(
            Channel.id == channel_id,
            or_(
                and_(
                    Channel.health == ChannelHealth.UNKNOWN.value,
                    Channel.health_reason == NOT_RUNNING,
                ),
                and_(
                    Channel.health == ChannelHealth.BAD_CREDENTIALS.value,
                    Channel.health_reason.startswith(f"{REFUSED}: ", autoescape=True),
                ),
            ),
        )
        .values(health=ChannelHealth.CONNECTED.value, health_reason=None)
    )
    return await _health_changed(session, statement)


async def _health_changed(session: AsyncSession, statement: Update) -> list[Event]:
    """Run a health update; the event of each channel row it changed."""
    rows = await session.execute(
        statement.returning(
            Channel.id, Channel.health, Channel.health_reason, Channel.last_sync_at
        ).execution_options(synchronize_session=False)
    )
    return [health_event(row.id, row.health, row.health_reason, row.last_sync_at) for row in rows]
