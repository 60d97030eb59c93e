"""Canned responses (inbox/canned.py): scopes, who may use and write them, unique short
codes per scope, templates checked when saved, and rendering for a real conversation.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from inbox import canned
from inbox.canned import CannedError, CannedForbidden, Reader, ShortCodeTaken
from inbox.canned_models import CannedResponse, CannedScope
from inbox.models import User
from tests.inbox.canned_world import World, make_world
from timeline.db import SessionFactory

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def world(sessions: SessionFactory) -> World:
    return await make_world(sessions)


async def _reader(sessions: SessionFactory, user: User) -> Reader:
    async with sessions() as session:
        return await canned.reader_of(session, user)


async def _create(
    sessions: SessionFactory, user: User, scope: CannedScope, code: str, **kw: object
) -> CannedResponse:
    reader = await _reader(sessions, user)
    async with sessions() as session, session.begin():
        return await canned.create(
            session,
            reader,
            scope=scope,
            team_id=kw.get("team_id"),  # type: ignore[arg-type]
            short_code=code,
            title=str(kw.get("title", f"About {code}")),
            text=str(kw.get("text", "Hi {{contact.first_name | there}}")),
            now=NOW,
        )


async def _usable_codes(sessions: SessionFactory, user: User) -> list[tuple[str, str]]:
    reader = await _reader(sessions, user)
    async with sessions() as session:
        rows = await session.scalars(
            select(CannedResponse)
            .where(canned.usable_by(reader))
            .order_by(CannedResponse.short_code, CannedResponse.scope)
        )
        return [(row.short_code, row.scope) for row in rows]


async def test_scopes_decide_who_uses_and_who_writes(
    sessions: SessionFactory, world: World
) -> None:
    team = CannedScope.TEAM
    await _create(sessions, world.manager, CannedScope.GLOBAL, "refund")
    await _create(sessions, world.member, team, "escalate", team_id=world.team.id)
    await _create(sessions, world.member, CannedScope.PERSONAL, "refund")  # same code, own scope
    await _create(sessions, world.admin, CannedScope.PERSONAL, "mine")

    # Agents outside the team may not write its responses, nor anyone's global ones.
    with pytest.raises(CannedForbidden):
        await _create(sessions, world.direct, team, "x", team_id=world.team.id)
    with pytest.raises(CannedForbidden):
        await _create(sessions, world.member, CannedScope.GLOBAL, "y")

    assert await _usable_codes(sessions, world.member) == [
        ("escalate", "team"),
        ("refund", "global"),
        ("refund", "personal"),
    ]
    assert await _usable_codes(sessions, world.direct) == [("refund", "global")]
    # Staff use every team's, and only their own personal ones.
    assert await _usable_codes(sessions, world.manager) == [
        ("escalate", "team"),
        ("refund", "global"),
    ]
    assert await _usable_codes(sessions, world.admin) == [
        ("escalate", "team"),
        ("mine", "personal"),
        ("refund", "global"),
    ]


async def test_a_short_code_is_unique_within_its_scope(
    sessions: SessionFactory, world: World
) -> None:
    await _create(sessions, world.manager, CannedScope.GLOBAL, "refund")
    with pytest.raises(ShortCodeTaken):
        await _create(sessions, world.admin, CannedScope.GLOBAL, "refund")
    await _create(sessions, world.member, CannedScope.PERSONAL, "refund")
    await _create(sessions, world.direct, CannedScope.PERSONAL, "refund")  # another person's
    with pytest.raises(ShortCodeTaken):
        await _create(sessions, world.member, CannedScope.PERSONAL, "refund")
    async with sessions() as session:
        count = len((await session.scalars(select(CannedResponse.id))).all())
    assert count == 3


async def test_scope_and_team_must_agree(sessions: SessionFactory, world: World) -> None:
    with pytest.raises(CannedError) as missing:
        await _create(sessions, world.admin, CannedScope.TEAM, "a")
    assert missing.value.fields == {"team_id": 'required with scope "team"'}
    with pytest.raises(CannedError) as stray:
        await _create(sessions, world.admin, CannedScope.GLOBAL, "a", team_id=world.team.id)
    assert stray.value.fields == {"team_id": 'only with scope "team"'}
    with pytest.raises(CannedError) as unknown:
        await _create(sessions, world.admin, CannedScope.TEAM, "a", team_id=world.admin.id)
    assert unknown.value.fields == {"team_id": "no such team"}
    with pytest.raises(CannedError) as typo:
        await _create(sessions, world.admin, CannedScope.GLOBAL, "a", text="Hi {{contact.frist}}")
    assert "{{contact.frist}}" in typo.value.fields["text"]


async def test_moving_between_scopes_needs_the_right_to_write_both(
    sessions: SessionFactory, world: World
) -> None:
    mine = await _create(sessions, world.member, CannedScope.PERSONAL, "draft")
    member = await _reader(sessions, world.member)
    async with sessions() as session, session.begin():
        row = await canned.usable(session, member, mine.id)
        assert row is not None
        with pytest.raises(CannedForbidden):  # an agent cannot publish to everyone
            await canned.update(session, member, row, {"scope": CannedScope.GLOBAL}, NOW)
    async with sessions() as session, session.begin():
        row = await canned.usable(session, member, mine.id)
        assert row is not None
        changes = {"scope": CannedScope.TEAM, "team_id": world.team.id, "title": "Shared"}
        await canned.update(session, member, row, changes, NOW)
    # Now the team's: its other members and staff may use it; it has no owner any more.
    async with sessions() as session:
        stored = await session.get(CannedResponse, mine.id)
    assert stored is not None
    assert (stored.scope, stored.team_id, stored.owner_id) == ("team", world.team.id, None)
    assert stored.scope_key == f"team:{world.team.id}"
    assert stored.search_key == "draft\nshared"
    manager = await _reader(sessions, world.manager)
    direct = await _reader(sessions, world.direct)
    async with sessions() as session:
        assert await canned.usable(session, manager, mine.id) is not None
        assert await canned.usable(session, direct, mine.id) is None


async def test_rendering_fills_contact_agent_and_fallbacks(
    sessions: SessionFactory, world: World
) -> None:
    text = (
        "Hi {{contact.first_name}} {{contact.last_name}} <{{contact.email}}>, "
        "phone {{contact.phone | unknown}}. {{agent.first_name}} ({{agent.name}}) "
        "on {{channel.name}}"
    )
    row = await _create(sessions, world.member, CannedScope.PERSONAL, "hello", text=text)
    async with sessions() as session:
        rendered = await canned.render_for(session, row, world.conversation.id, world.member)
        # An agent without a name gets the fallback; nothing literal reaches the customer.
        bare = CannedResponse(text="{{ agent.name | Support }}: {{agent.first_name}}.")
        anonymous = await canned.render_for(session, bare, world.conversation.id, world.direct)
    assert rendered == ("Hi Ann Lee <ann@example.com>, phone unknown. Bob (Bob Stone) on Shop form")
    assert anonymous == "Support: ."


async def test_rendering_for_a_contact_without_a_name(sessions: SessionFactory) -> None:
    world = await make_world(sessions, contact_name=None)
    row = CannedResponse(text="Hello {{contact.first_name | there}}, {{contact.name}}!")
    async with sessions() as session:
        rendered = await canned.render_for(session, row, world.conversation.id, world.member)
        with pytest.raises(LookupError):
            await canned.render_for(session, row, world.admin.id, world.member)
    assert rendered == "Hello there, !"


def test_short_codes_and_templates_are_checked() -> None:
    assert canned.normalize_short_code("  Refund-EU_2 ") == "refund-eu_2"
    for bad in ("", "-x", "two words", "ü", "x" * 51, "a/b", "a\x00"):
        with pytest.raises(ValueError, match="letters, digits"):
            canned.normalize_short_code(bad)
    assert canned.check_template("{{ contact.name | friend }} {{agent.email}}") is None
    reason = canned.check_template("{{contact.frist_name}} {{x}} {{contact.frist_name}}")
    assert reason is not None
    assert reason.startswith("unknown placeholder {{contact.frist_name}}, {{x}};")
