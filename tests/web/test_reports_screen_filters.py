"""The report screen's channel and team pickers on the server (web/ui/admin/reports.py):
the query every API call and export link is made of, the pickers' choices (the channels
the user sees), an unknown, malformed or unseen id falling back to all with a note, and
the page itself for a manager (narrowed like the API) and an agent (refused). The figures
in the browser: tests/ui/test_admin_reports.py."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from inbox.models import Role
from tests.web.conftest import ApiUser, Client, make_api_user
from tests.web.test_api_report_series import Seeded, seed_reports
from timeline.db import SessionFactory
from timeline.models import utcnow
from web.keys import SECRET_BOX_KEY
from web.sessions import COOKIE_NAME, SESSION_STORE_KEY
from web.ui.admin.reports import Choice, Filters, choices, narrow, read_filters

NOW = datetime(2024, 6, 20, 12, tzinfo=UTC)
PERIOD = {"range": "custom", "from": "2024-06-10", "to": "2024-06-18", "timezone": "UTC"}
CHANNEL_NOTE = "The channel in the link is not in the list: all channels are shown."
TEAM_NOTE = "The team in the link is not in the list: all teams are shown."


def t(text: str, **values: object) -> str:
    return text.format(**values)


def test_the_query_carries_the_channel_and_team_only_when_chosen() -> None:
    chosen, span = read_filters(PERIOD, t, NOW)
    assert span is not None
    assert (chosen.channel_id, chosen.team_id) == ("", "")
    assert chosen.query(group_by="agent") == (
        "from=2024-06-10&to=2024-06-18&timezone=UTC&group_by=agent"
    )
    channel, team = uuid.uuid4(), uuid.uuid4()
    asked = {**PERIOD, "channel_id": f" {channel} ", "team_id": str(team)}
    chosen, span = read_filters(asked, t, NOW)
    assert span is not None
    assert parse_qs(chosen.query(table="times")) == {
        "from": ["2024-06-10"],
        "to": ["2024-06-18"],
        "timezone": ["UTC"],
        "channel_id": [str(channel)],
        "team_id": [str(team)],
        "table": ["times"],
    }
    # Whatever is typed into the URL is cut short before it is looked at.
    chosen, _ = read_filters({**PERIOD, "channel_id": "x" * 5000}, t, NOW)
    assert len(chosen.channel_id) == 64


def test_narrow_keeps_a_listed_choice_and_drops_anything_else_with_a_note() -> None:
    support, sales, tier = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    channels = [Choice(str(support), "Support", "channel-email")]  # sales is not seen
    teams = [Choice(str(tier), "Tier one", "users")]
    visible = frozenset({support})

    chosen = Filters(channel_id=str(support).upper(), team_id=str(tier))
    scope = narrow(chosen, channels, teams, visible, t)
    assert (scope.channel_id, scope.team_id, scope.visible) == (support, tier, visible)
    assert chosen.channel_id == str(support)  # as the picker's option, so it is selected
    assert chosen.notes == {}

    for channel_id, team_id in [
        (str(sales), str(uuid.uuid4())),  # a channel this user does not see, a gone team
        ("not-a-uuid", "'; drop table teams; --"),
    ]:
        chosen = Filters(channel_id=channel_id, team_id=team_id)
        scope = narrow(chosen, channels, teams, visible, t)
        assert (scope.channel_id, scope.team_id, scope.visible) == (None, None, visible)
        assert (chosen.channel_id, chosen.team_id) == ("", "")
        assert chosen.notes == {"channel_id": CHANNEL_NOTE, "team_id": TEAM_NOTE}
        assert chosen.errors == {}  # the report is still made, of everything

    chosen = Filters()
    assert narrow(chosen, channels, teams, None, t).channel_id is None
    assert chosen.notes == {}


async def seeded(client: Client, sessions: SessionFactory) -> Seeded:
    return await seed_reports(sessions, client.app[SECRET_BOX_KEY])


async def test_the_choices_are_the_channels_the_user_sees_and_every_team(
    client: Client, sessions: SessionFactory
) -> None:
    seed = await seeded(client, sessions)
    async with sessions() as session:
        channels, teams = await choices(session, None)
        assert [c.name for c in channels] == ["Sales <form> & co", "Support desk"]
        assert [c.icon for c in channels] == ["channel-webform", "channel-webform"]
        assert [c.key for c in teams] == [str(seed.team)]
        seen, _ = await choices(session, frozenset({seed.support}))
        assert [c.key for c in seen] == [str(seed.support)]
        none, _ = await choices(session, frozenset())
        assert none == []


async def signed_in(client: Client, user: ApiUser) -> dict[str, str]:
    cookie = await client.app[SESSION_STORE_KEY].create(user.user.id, utcnow())
    return {"Cookie": f"{COOKIE_NAME}={cookie}"}


def export_queries(page: str) -> list[dict[str, list[str]]]:
    hrefs = re.findall(r'href="(/api/v1/reports/[^"]+)"', page)
    assert len(hrefs) == 6, hrefs
    return [parse_qs(urlsplit(html.unescape(href)).query) for href in hrefs]


def overview_open(page: str) -> int:
    found = re.search(
        r'data-overview-field="open".*?class="stat__value" data-value="(\d+)"', page, re.S
    )
    assert found is not None
    return int(found.group(1))


async def test_the_page_is_narrowed_like_the_api_and_refuses_agents(
    client: Client, sessions: SessionFactory
) -> None:
    seed = await seeded(client, sessions)
    manager = await make_api_user(sessions, Role.MANAGER)
    cookie = await signed_in(client, manager)
    sales = str(seed.sales)

    answer = await client.get("/reports", params={**PERIOD, "channel_id": sales}, headers=cookie)
    assert answer.status == 200
    page = await answer.text()
    assert f'<option value="{sales}" dir="auto" selected>' in page
    assert f'data-channel-id="{sales}"' in page
    assert CHANNEL_NOTE not in page
    for query in export_queries(page):
        assert query["channel_id"] == [sales] and "team_id" not in query
    api = await client.get(
        "/api/v1/reports/overview", params={"channel_id": sales}, headers=manager.headers
    )
    assert overview_open(page) == (await api.json())["open"] == 1
    whole = await client.get("/api/v1/reports/overview", headers=manager.headers)
    assert (await whole.json())["open"] == 3

    # An id that is no channel and a team that is gone: everything, said so, not an error.
    odd = {**PERIOD, "channel_id": str(uuid.uuid4()), "team_id": "nonsense"}
    answer = await client.get("/reports", params=odd, headers=cookie)
    assert answer.status == 200
    page = await answer.text()
    assert html.escape(CHANNEL_NOTE) in page and html.escape(TEAM_NOTE) in page
    assert 'data-channel-id=""' in page and 'data-team-id=""' in page
    for query in export_queries(page):
        assert "channel_id" not in query and "team_id" not in query
    assert overview_open(page) == 3

    agent = await make_api_user(sessions, Role.AGENT)
    refused = await client.get(
        "/reports", params={**PERIOD, "channel_id": sales}, headers=await signed_in(client, agent)
    )
    assert refused.status == 403
