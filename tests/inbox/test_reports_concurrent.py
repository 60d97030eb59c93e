"""The summary report's statements run side by side on PostgreSQL (each on its own
connection): the same report as one after another, for every grouping and scope, and
without ever holding one connection while waiting for another."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from inbox.report_period import period
from inbox.reports import GROUPINGS, Scope, Summary, labels_table, summary
from tests.inbox.report_scenario import FIRST, LAST, NOW, TIMEZONE, build_weekend
from timeline.db import read_session_factory, session_factory


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_side_by_side_is_the_same_report(database_url: str) -> None:
    # One connection and no overflow: a report that kept a connection while its
    # statements waited for theirs would stall until the pool timed out.
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=20)
    try:
        weekend = await build_weekend(session_factory(engine))
        reads = read_session_factory(engine)
        span = period(FIRST, LAST, TIMEZONE)
        scopes = [
            Scope(),
            Scope(team_id=weekend.team),
            Scope(channel_id=weekend.sales),
            Scope(visible=frozenset({weekend.support})),
        ]
        groupings = [g for g in GROUPINGS if g != "label" or labels_table() is not None]
        compared = 0
        for grouping in groupings:
            for scope in scopes:
                reports: list[Summary] = []
                for sessions in (None, reads):
                    async with reads() as session:
                        reports.append(
                            await summary(
                                session, span, grouping, scope, now=NOW, sessions=sessions
                            )
                        )
                one_by_one, side_by_side = reports
                assert side_by_side == one_by_one, (grouping, scope)
                compared += 1
                if grouping == "agent" and scope == Scope():
                    totals = side_by_side.totals
                    assert (totals.conversations_opened, totals.messages_in) == (3, 3)
                    assert totals.times["first_response"]["wall"].median == 120.0
                    assert totals.sla["first_response"].rate == 0.5
        assert compared == len(groupings) * len(scopes)
    finally:
        await engine.dispose()
