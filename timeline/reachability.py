"""Who may be written to on which channel: opt-outs (SMS STOP) and blocked bots (Telegram).

A connector reports a change (`connectors.types.ReachabilityChange`); it is stored per
contact and channel and recorded on the contact's timeline, once per actual change (a
redelivered STOP changes nothing and records nothing). While a contact is opted out or
has blocked the channel, a reply is refused before anything is stored or sent: by the
REST API up front, and by the outbox for replies queued before the change.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import Reachability, ReachabilityChange
from timeline.db import SessionFactory
from timeline.events import Event, EventBus, publish_committed
from timeline.identity import IdentityError, normalize_identity
from timeline.models import Contact, ContactReachability, Identity, TimelineEvent
from timeline.storable import clean

logger = logging.getLogger(__name__)

_DETAIL_LENGTH = 200


async def record_reachability(
    sessions: SessionFactory,
    bus: EventBus | None,
    change: ReachabilityChange,
    *,
    region: str | None = None,
) -> bool:
    """Store a reported change; True when it changed anything (and was recorded)."""
    try:
        value = normalize_identity(change.who.kind, change.who.value, region=region)
    except IdentityError as err:
        logger.warning(
            "channel %s: %s change for an unusable identity: %s",
            change.channel_id,
            change.change,
            err,
        )
        return False
    channel_id = uuid.UUID(change.channel_id)
    async with sessions() as session, session.begin():
        contact_id = await session.scalar(
            select(Identity.contact_id).where(
                Identity.kind == str(change.who.kind), Identity.value == value
            )
        )
        if contact_id is None:
            # Nobody we ever heard from: there is no conversation to refuse a reply in.
            logger.info("channel %s: %s for unknown %s", change.channel_id, change.change, value)
            return False
        row = await session.get(ContactReachability, (channel_id, contact_id), with_for_update=True)
        if row is None:
            row = ContactReachability(
                channel_id=channel_id, contact_id=contact_id, opted_out=False, blocked=False
            )
            session.add(row)
        before = (row.opted_out, row.blocked)
        if change.change in (Reachability.OPTED_OUT, Reachability.OPTED_IN):
            row.opted_out = change.change is Reachability.OPTED_OUT
        else:
            row.blocked = change.change is Reachability.BLOCKED
        if (row.opted_out, row.blocked) == before:
            return False
        detail = clean(change.detail)[:_DETAIL_LENGTH] if change.detail else None
        row.detail = detail
        row.updated_at = change.at
        data = {"channel_id": str(channel_id), "detail": detail}
        session.add(
            TimelineEvent(
                contact_id=contact_id,
                kind=f"contact.{change.change.value}",
                data=data,
                occurred_at=change.at,
            )
        )
    if bus is not None:
        await publish_committed(
            bus,
            [Event(f"contact.{change.change.value}", {**data, "contact_id": str(contact_id)})],
        )
    return True


async def unreachable_reason(
    session: AsyncSession, channel_id: uuid.UUID, contact_id: uuid.UUID
) -> str | None:
    """Why a reply to the contact on the channel must not be sent, or None when it may."""
    row = (
        await session.execute(
            select(
                Contact.erased_at,
                ContactReachability.opted_out,
                ContactReachability.blocked,
                ContactReachability.detail,
            )
            .outerjoin(
                ContactReachability,
                and_(
                    ContactReachability.contact_id == Contact.id,
                    ContactReachability.channel_id == channel_id,
                ),
            )
            .where(Contact.id == contact_id)
        )
    ).first()
    if row is None:
        return None
    if row.erased_at is not None:
        return "the contact's personal data was erased on request; they cannot be written to"
    if row.opted_out:
        said = f" ({row.detail})" if row.detail else ""
        return (
            f"the contact opted out of messages on this channel{said}; replies are refused "
            "until they opt back in (START)"
        )
    if row.blocked:
        return "the contact blocked this channel (bot was blocked by the user)"
    return None
