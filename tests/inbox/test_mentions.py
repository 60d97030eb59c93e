"""Mentions (inbox/mentions.py) and notifications (inbox/notifications.py): the token is
parsed strictly, never crashes, and a user is mentioned only if they can see the
conversation; notifications belong to their recipient alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from inbox import notifications
from inbox.canned_models import Notification, NotificationKind
from inbox.mentions import (
    MalformedMention,
    has_mention_markup,
    mention_refusals,
    mention_token,
    merge,
    parse_mentions,
)
from tests.inbox.canned_world import World, make_world
from timeline.db import SessionFactory
from timeline.models import Message

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
A = uuid.UUID("0190f3a2-7b1c-7def-8abc-0123456789ab")
B = uuid.UUID("0190f3a2-7b1c-7def-8abc-ba9876543210")


# --- parsing: pure -------------------------------------------------------------------------------


def test_tokens_are_read_by_id_in_order_once_each() -> None:
    text = (
        f"{mention_token('Bob [2nd] Stone', A)} please check with "
        f"@[Ann](user:{str(B).upper()}), and @[Bobby](user:{A}) again. "
        "Mail me at bob@[example](user) or write @Ann: not mentions."
    )
    assert mention_token("Bob [2nd]\nStone", A) == f"@[Bob 2nd Stone](user:{A})"
    assert parse_mentions(text) == [A, B]
    assert parse_mentions("no one here @[](user:") == []
    assert merge([A], [B, A], [B]) == [A, B]


@pytest.mark.parametrize(
    "token",
    [
        "@[Bob](user:42)",
        "@[Bob](user:)",
        f"@[Bob](user:{A.hex})",  # 32 hex digits: not the canonical form the UI writes
        f"@[Bob](user:{{{A}}})",
        f"@[Bob](user:urn:uuid:{A})",
        f"@[Bob](user:{str(A)[:-1]}g)",
    ],
)
def test_a_token_with_a_bad_id_is_an_error_not_plain_text(token: str) -> None:
    assert has_mention_markup(f"see {token}")
    with pytest.raises(MalformedMention) as err:
        parse_mentions(f"see {token} and @[Ann](user:{B})")
    assert err.value.tokens == [token]
    assert "must be a UUID" in str(err.value)


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        found = parse_mentions(text)
    except MalformedMention as err:
        assert err.tokens and all(token.startswith("@[") for token in err.tokens)
        assert has_mention_markup(text)
    else:
        assert len(found) == len(set(found))
        assert all(str(user_id) in text.lower() for user_id in found)


@given(
    st.lists(
        st.tuples(st.text(max_size=20), st.uuids()),
        max_size=8,
    ),
    st.text(alphabet=st.characters(blacklist_characters="@"), max_size=30),
)
def test_tokens_made_for_any_name_parse_back(pairs: list[tuple[str, uuid.UUID]], glue: str) -> None:
    text = glue.join(mention_token(name, user_id) for name, user_id in pairs)
    assert parse_mentions(text) == list(dict.fromkeys(user_id for _, user_id in pairs))


def test_hostile_long_inputs_finish() -> None:
    # Unclosed brackets and endless ids must not make matching quadratic.
    parse_mentions("@[" * 50_000)
    parse_mentions("@[x](user:" + "a" * 100_000)
    with pytest.raises(MalformedMention) as err:
        parse_mentions("@[x](user:" + "a" * 100_000 + ")")
    assert len(err.value.tokens[0]) <= 120


# --- who may be mentioned, and notifications: both databases -------------------------------------


@pytest.fixture
async def world(sessions: SessionFactory) -> World:
    return await make_world(sessions)


async def test_only_users_who_see_the_channel_can_be_mentioned(
    sessions: SessionFactory, world: World
) -> None:
    unknown = uuid.uuid4()
    wanted = [
        world.admin.id,
        world.manager.id,
        world.member.id,  # through the team
        world.direct.id,  # directly
        world.outsider.id,
        world.retired.id,
        unknown,
    ]
    async with sessions() as session:
        refusals = await mention_refusals(session, wanted, world.channel.id)
        assert await mention_refusals(session, [], world.channel.id) == {}
    assert refusals == {
        world.outsider.id: "cannot see this conversation: not a member of its channel",
        world.retired.id: "this user is deactivated",
        unknown: "no such user",
    }


async def test_notifications_belong_to_their_recipient(
    sessions: SessionFactory, world: World
) -> None:
    async with sessions() as session, session.begin():
        note = Message(
            conversation_id=world.conversation.id,
            channel_id=world.channel.id,
            contact_id=world.conversation.contact_id,
            direction="out",
            private=True,
            text="see this",
            sent_at=NOW,
            seq=1,
        )
        session.add(note)
        await session.flush()
        made = notifications.notify(
            session,
            NotificationKind.MENTION,
            [world.member.id, world.admin.id, world.member.id, world.manager.id],
            conversation_id=world.conversation.id,
            message_id=note.id,
            actor_id=world.admin.id,  # the author is not told about their own note
            now=NOW,
        )
        later = notifications.notify_assigned(
            session, world.conversation.id, world.member.id, world.admin.id, NOW + timedelta(1)
        )
        assert (
            notifications.notify_assigned(
                session, world.conversation.id, world.member.id, world.member.id, NOW
            )
            == []
        )  # took it themselves
        await session.flush()
    assert [n.user_id for n in made] == [world.member.id, world.manager.id]
    [event, _] = notifications.created_events(made)
    assert event.type == "notification.created"
    assert event.data == {
        "user_id": str(world.member.id),
        "notification_id": str(made[0].id),
        "conversation_id": str(world.conversation.id),
        "kind": "mention",
    }

    # A second notification of one note for one user is refused by the database.
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            notifications.notify(
                session,
                NotificationKind.MENTION,
                [world.member.id],
                conversation_id=world.conversation.id,
                message_id=note.id,
                actor_id=None,
                now=NOW,
            )

    async with sessions() as session, session.begin():
        assert await notifications.unread_count(session, world.member.id) == 2
        # Someone else's notification is not found, and stays unread.
        assert await notifications.mark_read(session, world.manager.id, made[0].id, NOW) is None
        read = await notifications.mark_read(session, world.member.id, made[0].id, NOW)
        assert read is not None and read.read_at == NOW
        again = await notifications.mark_read(
            session, world.member.id, made[0].id, NOW + timedelta(2)
        )
        assert again is not None and again.read_at == NOW  # the first read time stays
        # "Read all" up to a time leaves what came after it unread.
        assert await notifications.mark_all_read(session, world.member.id, NOW, until=NOW) == 0
        assert await notifications.unread_count(session, world.member.id) == 1
        assert await notifications.mark_all_read(session, world.member.id, NOW) == 1
        assert await notifications.unread_count(session, world.manager.id) == 1
    async with sessions() as session:
        rows = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    assert {(n.user_id, n.kind, n.read_at is None) for n in rows} == {
        (world.member.id, "mention", False),
        (world.manager.id, "mention", True),
        (world.member.id, "assigned", False),
    }
    assert later[0].message_id is None
