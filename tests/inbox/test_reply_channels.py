"""Which channels a contact can be answered on, and the default one (inbox/reply_channels.py).

Contacts, conversations and messages are made by the real ingestor, a web form lead as
the form connector hands it over (an email sender and a phone beside it). Every test
runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    RawPayload,
    SenderHandle,
    ThreadHints,
)
from inbox.reply_channels import (
    CANNOT_SEND,
    PAUSED,
    UNKNOWN_CHANNEL,
    ReplyChannel,
    ReplyChannels,
    check_reply_channel,
    reply_channels,
)
from tests.timeline.conftest import MakeChannel, box, ingestor, make_channel, sessions
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory
from timeline.ingest import Ingestor
from timeline.models import Channel, Contact, ContactReachability, Conversation

__all__ = ["box", "ingestor", "make_channel", "sessions"]  # fixtures, used by their names

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
EMAIL = "ann@example.com"
PHONE = "+14155550100"


def form_lead(channel: uuid.UUID, key: str = "form:1", *, at: datetime = T0) -> Inbound:
    """A submission with an email and a phone, as connectors/webform/inbound.py makes it."""
    return Inbound(
        channel_id=ChannelId(str(channel)),
        external_id=ExternalId(key),
        sender=SenderHandle(IdentityKind.EMAIL, EMAIL, "Ann Lee"),
        identities=(SenderHandle(IdentityKind.PHONE, PHONE, "Ann Lee"),),
        text="How much for 20 seats?",
        sent_at=at,
        thread=ThreadHints(subject="Form: Pricing enquiry"),
        raw=RawPayload("application/json", b'{"email": "ann@example.com"}'),
    )


async def conversation_of(
    sessions: SessionFactory, ingestor: Ingestor, item: Inbound
) -> Conversation:
    result = await ingestor.ingest(item)
    async with sessions() as session:
        conversation = await session.get(Conversation, result.conversation_id)
    assert conversation is not None
    return conversation


async def options(
    sessions: SessionFactory,
    conversation: Conversation,
    visible: frozenset[uuid.UUID] | None = None,
) -> ReplyChannels:
    async with sessions() as session:
        return await reply_channels(session, conversation, visible)


async def check(
    sessions: SessionFactory,
    conversation: Conversation,
    channel_id: uuid.UUID,
    visible: frozenset[uuid.UUID] | None = None,
) -> ReplyChannel | str:
    async with sessions() as session:
        return await check_reply_channel(session, conversation, channel_id, visible)


async def prefer(
    sessions: SessionFactory, contact_id: uuid.UUID, channel: uuid.UUID | None
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Contact).where(Contact.id == contact_id).values(preferred_channel_id=channel)
        )


async def opt_out(
    sessions: SessionFactory, contact_id: uuid.UUID, channel: uuid.UUID, *, blocked: bool = False
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            ContactReachability(
                channel_id=channel,
                contact_id=contact_id,
                opted_out=not blocked,
                blocked=blocked,
                detail="STOP",
            )
        )


async def pause(sessions: SessionFactory, channel: uuid.UUID, paused: bool = True) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(Channel).where(Channel.id == channel).values(paused=paused))


async def test_a_form_lead_is_answered_by_email_or_sms_and_email_is_the_default(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    webform = await make_channel("webform")
    sms = await make_channel("sms")
    email = await make_channel("email")
    await make_channel("telegram")  # she never wrote to the bot: no chat to answer in
    lead = await conversation_of(sessions, ingestor, form_lead(webform))

    found = await options(sessions, lead)

    # The form's own channel cannot send: it is no candidate. Listed by creation.
    assert [(c.channel_id, c.kind, c.recipient) for c in found.items] == [
        (sms, "sms", PHONE),
        (email, "email", EMAIL),
    ]
    assert all(c.reachable and c.reason is None and not c.preferred for c in found.items)
    # She wrote on no candidate (only the form): the first email channel.
    assert found.default_channel_id == email
    assert found.default is not None and found.default.recipient == EMAIL
    assert await check(sessions, lead, webform) == CANNOT_SEND


async def test_the_preferred_channel_wins_then_the_one_she_last_wrote_on(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    webform = await make_channel("webform")
    email = await make_channel("email")
    sms = await make_channel("sms")
    other_sms = await make_channel("sms")
    lead = await conversation_of(sessions, ingestor, form_lead(webform))

    await prefer(sessions, lead.contact_id, sms)
    found = await options(sessions, lead)
    assert found.default_channel_id == sms
    assert [c.channel_id for c in found.items if c.preferred] == [sms]

    await prefer(sessions, lead.contact_id, None)
    # A text to the second number, then an email: the latest inbound decides.
    await ingestor.ingest(
        inbound(other_sms, "SM1", IdentityKind.PHONE, PHONE, at=T0 + timedelta(hours=1))
    )
    assert (await options(sessions, lead)).default_channel_id == other_sms
    await ingestor.ingest(inbound(email, "<m1@example.com>", at=T0 + timedelta(hours=2)))
    assert (await options(sessions, lead)).default_channel_id == email

    # A preferred channel that cannot reach her is passed over.
    await prefer(sessions, lead.contact_id, other_sms)
    await opt_out(sessions, lead.contact_id, other_sms)
    assert (await options(sessions, lead)).default_channel_id == email


async def test_refusals_are_listed_with_their_reason(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    webform = await make_channel("webform")
    email = await make_channel("email")
    sms = await make_channel("sms")
    lead = await conversation_of(sessions, ingestor, form_lead(webform))
    await prefer(sessions, lead.contact_id, sms)
    await opt_out(sessions, lead.contact_id, sms)
    await pause(sessions, email)

    found = await options(sessions, lead)

    by_id = {c.channel_id: c for c in found.items}
    assert not by_id[sms].reachable and "opted out" in (by_id[sms].reason or "")
    assert "STOP" in (by_id[sms].reason or "")
    assert by_id[sms].preferred
    assert (by_id[email].reachable, by_id[email].reason) == (False, PAUSED)
    assert found.default_channel_id is None and found.default is None
    # Asked for directly, the same verdict.
    checked = await check(sessions, lead, sms)
    assert isinstance(checked, ReplyChannel) and checked.reason == by_id[sms].reason

    await pause(sessions, email, paused=False)
    assert (await options(sessions, lead)).default_channel_id == email


async def test_an_erased_contact_can_be_answered_nowhere(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    channel = await make_channel("email")
    conversation = await conversation_of(sessions, ingestor, inbound(channel, "<m1@x>"))
    async with sessions() as session, session.begin():
        await session.execute(
            update(Contact).where(Contact.id == conversation.contact_id).values(erased_at=T0)
        )
    found = await options(sessions, conversation)
    [own] = found.items
    assert not own.reachable and "erased" in (own.reason or "")
    assert found.default_channel_id is None


async def test_the_conversations_own_channel_comes_first_and_is_the_default(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    email = await make_channel("email")
    sms = await make_channel("sms")
    await ingestor.ingest(inbound(email, "<m1@example.com>", at=T0))
    texts = await conversation_of(
        sessions, ingestor, inbound(sms, "SM1", IdentityKind.PHONE, PHONE, at=T0)
    )
    # Texted from a number only: the email channel has no address for this contact.
    assert [c.channel_id for c in (await options(sessions, texts)).items] == [sms]
    assert await check(sessions, texts, email) == (
        "the contact has no email address to send to on this channel"
    )
    await prefer(sessions, texts.contact_id, email)

    # While her own channel is paused, replies wait in its outbox as they always did.
    await pause(sessions, sms)
    found = await options(sessions, texts)
    assert found.items[0].channel_id == sms and found.items[0].reachable
    assert found.default_channel_id == sms


async def test_a_telegram_bot_answers_only_people_who_wrote_to_it(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    email = await make_channel("email")
    bot = await make_channel("telegram")
    other_bot = await make_channel("telegram")
    chat = await conversation_of(
        sessions, ingestor, inbound(bot, "1:1", IdentityKind.TELEGRAM, "424242")
    )
    assert [(c.channel_id, c.recipient) for c in (await options(sessions, chat)).items] == [
        (bot, "424242")
    ]
    refused = await check(sessions, chat, other_bot)
    assert isinstance(refused, str) and "never wrote to this telegram channel" in refused
    assert isinstance(await check(sessions, chat, email), str)


async def test_channels_the_user_cannot_see_are_neither_listed_nor_accepted(
    sessions: SessionFactory, ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    webform = await make_channel("webform")
    email = await make_channel("email")
    sms = await make_channel("sms")
    lead = await conversation_of(sessions, ingestor, form_lead(webform))
    await prefer(sessions, lead.contact_id, sms)
    visible = frozenset({webform, email})

    found = await options(sessions, lead, visible)

    assert [c.channel_id for c in found.items] == [email]
    assert found.default_channel_id == email  # the hidden preferred one is not offered
    # Worded as for a channel that does not exist.
    assert await check(sessions, lead, sms, visible) == UNKNOWN_CHANNEL
    assert await check(sessions, lead, uuid.uuid4()) == UNKNOWN_CHANNEL
    assert isinstance(await check(sessions, lead, sms), ReplyChannel)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    preferred=st.sampled_from(["none", "email", "sms", "webform"]),
    opted_out=st.sets(st.sampled_from(["email", "sms"])),
    paused=st.sets(st.sampled_from(["email", "sms"])),
    wrote_last=st.sampled_from(["form", "sms"]),
)
async def test_the_default_is_always_a_reachable_candidate_or_none(
    sessions: SessionFactory,
    ingestor: Ingestor,
    make_channel: MakeChannel,
    preferred: str,
    opted_out: set[str],
    paused: set[str],
    wrote_last: str,
) -> None:
    # A fresh lead per example: the examples share the database.
    ids = {kind: await make_channel(kind) for kind in ("webform", "email", "sms")}
    key = uuid.uuid4().hex
    lead = await conversation_of(sessions, ingestor, form_lead(ids["webform"], f"form:{key}"))
    if wrote_last == "sms":
        await ingestor.ingest(
            inbound(ids["sms"], f"SM{key}", IdentityKind.PHONE, PHONE, at=T0 + timedelta(hours=1))
        )
    await prefer(sessions, lead.contact_id, None if preferred == "none" else ids[preferred])
    for kind in opted_out:
        await opt_out(sessions, lead.contact_id, ids[kind])
    for kind in paused:
        await pause(sessions, ids[kind])

    found = await options(sessions, lead, frozenset(ids.values()))

    reachable = {c.channel_id for c in found.items if c.reachable}
    assert reachable == {ids[k] for k in ("email", "sms") if k not in opted_out | paused}
    if not reachable:
        assert found.default_channel_id is None
    elif preferred in ("email", "sms") and ids[preferred] in reachable:
        assert found.default_channel_id == ids[preferred]
    elif wrote_last == "sms" and ids["sms"] in reachable:
        assert found.default_channel_id == ids["sms"]
    else:
        # Nothing reachable she prefers or wrote on: the email channel, if it can reach her.
        expected = ids["email"] if ids["email"] in reachable else None
        assert found.default_channel_id == expected
