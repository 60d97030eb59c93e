"""A constructed weekend for the report tests: rows written with the ORM at chosen instants,
with every expected figure worked out by hand here.

The report covers Saturday 2024-03-30 and Sunday 2024-03-31 in Europe/Berlin. Summer
time starts on the Sunday (02:00 CET -> 03:00 CEST), so the period is
2024-03-29 23:00Z .. 2024-03-31 22:00Z: 47 hours. Rows just outside each edge (and one
inside the hour a naive "48 hours from the start" would add) must not count.

People: Ann and Bob (agents with work), Cid (an agent with none: a zero group).
Channels: "Support" and "Sales". Team T owns conversation 2.

Conversations (created, assignee, channel, labels):
  c1  Sat 10:00 local  Ann  Support  billing, vip
  c2  Sat 11:00 local  Bob  Sales    billing        team T
  c4  Sun 12:00 local  -    Support  -
  c3  Fri 23:30 local  Ann  Support  -              (before the period: not opened)
  -> opened: Ann 1, Bob 1, unassigned 1; total 3.

Messages (public, not automatic, counted):
  c1 in  2024-03-29T22:59:59Z  Fri 23:59:59 CET     outside
  c1 in  2024-03-29T23:00:00Z  Sat 00:00 CET        inside   (volume: sat 00)
  c1 in  2024-03-31T21:59:59Z  Sun 23:59:59 CEST    inside   (volume: sun 23)
  c1 in  2024-03-31T22:00:00Z  Mon 00:00 CEST       outside  (inside if the period
                                                              were 48 h long)
  c2 in  2024-03-31T01:30:00Z  Sun 03:30 CEST       inside   (volume: sun 03; a fixed
                                                              +01:00 would say 02)
  c1 out by Ann  2024-03-30T09:30Z                  inside
  c2 out by Bob  2024-03-30T10:30Z                  inside
  c1 out by Ann, automatic; c1 private note by Ann  not counted
  -> in: Ann 2 (c1's, she is its assignee), Bob 1; out: Ann 1, Bob 1. Totals in 3, out 2.

First response spans (wall seconds; business seconds where a calendar applied):
  Ann: wall 60, 120, 180, 240, 600; business 50, 100, 300 (two without a calendar)
       plus one of wall 10000 that ended at 2024-03-31T22:00Z: outside.
    wall sorted 60 120 180 240 600, n=5: median = rank 3 = 180;
      p90: (n-1)*0.9 = 3.6 -> rank 4 + 0.6 of the way to rank 5:
      240 + 0.6*(600-240) = 456; mean 1200/5 = 240.
    business sorted 50 100 300, n=3: median 100; p90: 2*0.9 = 1.8 ->
      100 + 0.8*(300-100) = 260; mean 450/3 = 150.
  Bob: wall 30, 90, no business. median: 0.5 -> 30 + 0.5*60 = 60;
      p90: 0.9 -> 30 + 0.9*60 = 84; mean 60. Business: none (null).
  Totals wall 30 60 90 120 180 240 600, n=7: median rank 4 = 120;
      p90: 6*0.9 = 5.4 -> 240 + 0.4*(600-240) = 384; mean 1320/7.
      Business as Ann's.
Resolution: Bob resolved c2 after 3600 s (ended in the period): resolved Bob 1, total 1.
Reply: none (count 0, figures null).

SLA clocks ("now" is 2024-03-31T15:00Z):
  c1 first_response  due 03-30T10:00Z met 09:00Z           met       (Ann)
  c2 first_response  due 03-30T12:00Z never met            breached  (Bob)
  c2 resolution      due 03-31T12:00Z met 13:00Z (late)    breached  (Bob)
  c1 next_response   due 03-31T20:00Z, not met yet         undecided (after now)
  -> Ann first_response 1/1 = 1.0; Bob first_response 0/1 = 0.0, resolution 0/1 = 0.0;
     totals first_response 1/2 = 0.5, resolution 0/1 = 0.0, next_response none (null).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from connectors.registry import spec_for
from inbox.metric_models import ConversationMetric, SlaClock, SlaPolicy
from inbox.models import User
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.models import Base, Channel, Contact, Conversation, Message

FIRST = date(2024, 3, 30)
LAST = date(2024, 3, 31)
TIMEZONE = "Europe/Berlin"
NOW = datetime(2024, 3, 31, 15, 0, tzinfo=UTC)
START = datetime(2024, 3, 29, 23, 0, tzinfo=UTC)
END = datetime(2024, 3, 31, 22, 0, tzinfo=UTC)


def utc(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    """An instant in 2024 (March unless told)."""
    return datetime(2024, month, day, hour, minute, second, tzinfo=UTC)


@dataclass(frozen=True)
class Weekend:
    """The ids of the scenario's rows."""

    ann: uuid.UUID
    bob: uuid.UUID
    cid: uuid.UUID
    team: uuid.UUID
    support: uuid.UUID
    sales: uuid.UUID
    c1: uuid.UUID
    c2: uuid.UUID
    c4: uuid.UUID


def _channel(name: str) -> Channel:
    config = spec_for("webform").config.model_validate({})
    box = SecretBox("report-tests-secret-key-0123456789abcdef")
    return Channel(kind="webform", name=name, config_encrypted=box.encrypt(config.model_dump()))


def _user(name: str) -> User:
    return User(
        email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
        name=name,
        role="agent",
        password_hash="not-a-real-hash",
    )


async def build_weekend(sessions: SessionFactory, *, ann_name: str = "Ann") -> Weekend:
    """Writes the scenario of the module docstring."""
    ann, bob, cid = _user(ann_name), _user("Bob"), _user("Cid")
    support, sales = _channel("Support"), _channel("Sales")
    team = uuid.uuid4()
    contact = Contact(name="Customer")
    async with sessions() as session, session.begin():
        session.add_all([ann, bob, cid, support, sales, contact])
        await session.flush()

        def conversation(
            created: datetime, assignee: User | None, channel: Channel, team_id: uuid.UUID | None
        ) -> Conversation:
            row = Conversation(
                contact_id=contact.id,
                channel_id=channel.id,
                assignee_id=assignee.id if assignee else None,
                team_id=team_id,
                created_at=created,
                last_activity_at=created,
            )
            session.add(row)
            return row

        c1 = conversation(utc(30, 9), ann, support, None)  # Sat 10:00 CET
        c2 = conversation(utc(30, 10), bob, sales, team)  # Sat 11:00 CET
        c3 = conversation(utc(29, 22, 30), ann, support, None)  # Fri 23:30 CET
        c4 = conversation(utc(31, 10), None, support, None)  # Sun 12:00 CEST
        await session.flush()

        seq = 0

        def message(
            conv: Conversation,
            at: datetime,
            direction: str,
            author: User | None = None,
            *,
            private: bool = False,
            automatic: bool = False,
        ) -> None:
            nonlocal seq
            seq += 1
            session.add(
                Message(
                    conversation_id=conv.id,
                    channel_id=conv.channel_id,
                    contact_id=contact.id,
                    direction=direction,
                    kind="note" if private else "message",
                    private=private,
                    auto_submitted=automatic,
                    author_id=author.id if author else None,
                    text="hello",
                    sent_at=at,
                    created_at=at,
                    arrived_at=at,
                    seq=seq,
                )
            )

        message(c1, utc(29, 22, 59, 59), "in")
        message(c1, utc(29, 23), "in")
        message(c1, utc(31, 21, 59, 59), "in")
        message(c1, utc(31, 22), "in")
        message(c2, utc(31, 1, 30), "in")
        message(c1, utc(30, 9, 30), "out", ann)
        message(c2, utc(30, 10, 30), "out", bob)
        message(c1, utc(30, 9, 31), "out", ann, automatic=True)
        message(c1, utc(30, 9, 32), "out", ann, private=True)

        def metric(
            conv: Conversation,
            kind: str,
            agent: User,
            ended: datetime,
            wall: float,
            business: float | None,
        ) -> None:
            session.add(
                ConversationMetric(
                    conversation_id=conv.id,
                    channel_id=conv.channel_id,
                    team_id=conv.team_id,
                    agent_id=agent.id,
                    cycle=1,
                    kind=kind,
                    started_at=ended - timedelta(seconds=wall),
                    ended_at=ended,
                    wall_seconds=wall,
                    business_seconds=business,
                )
            )

        # Unique per (conversation, cycle, kind, started_at): each span starts elsewhere.
        for minute, (wall, business) in enumerate(
            [(60, 50), (120, None), (180, 100), (240, None), (600, 300)]
        ):
            metric(c1, "first_response", ann, utc(30, 12, 10 * minute), wall, business)
        metric(c1, "first_response", ann, END, 10000, 10000)
        metric(c3, "first_response", ann, START - timedelta(seconds=1), 1, 1)
        metric(c2, "first_response", bob, utc(30, 13), 30, None)
        metric(c2, "first_response", bob, utc(30, 14), 90, None)
        metric(c2, "resolution", bob, utc(31, 14), 3600, None)

        policy = SlaPolicy(name="Standard", channel_ids=[], team_ids=[], priorities=[])
        session.add(policy)
        await session.flush()

        def clock(conv: Conversation, target: str, due: datetime, met: datetime | None) -> None:
            session.add(
                SlaClock(
                    conversation_id=conv.id,
                    cycle=1,
                    target=target,
                    policy_id=policy.id,
                    started_at=due - timedelta(hours=2),
                    due_at=due,
                    met_at=met,
                    breached_at=None,
                )
            )

        clock(c1, "first_response", utc(30, 10), utc(30, 9))
        clock(c2, "first_response", utc(30, 12), None)
        clock(c2, "resolution", utc(31, 12), utc(31, 13))
        clock(c1, "next_response", utc(31, 20), None)

        labels = Base.metadata.tables.get("conversation_labels")
        if labels is not None:
            await session.execute(
                labels.insert(),
                [
                    {"conversation_id": c1.id, "label": "billing"},
                    {"conversation_id": c1.id, "label": "vip"},
                    {"conversation_id": c2.id, "label": "billing"},
                ],
            )
    return Weekend(ann.id, bob.id, cid.id, team, support.id, sales.id, c1.id, c2.id, c4.id)
