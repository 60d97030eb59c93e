"""A year of shared-inbox history for `python -m bench.inbox`, written by COPY.

Deterministic (seeded). What the inbox queries and the reports read, consistent with
each other:

- channels: SMS numbers (configs encrypted with the benchmark's key, sending to a
  stand-in on 127.0.0.1) and web forms; one calendar (Europe/Berlin, weekdays 09-17,
  holidays) on the SMS channels; one SLA policy for everything;
- agents in teams, teams serving channels (the first channel is served by every team,
  so every agent sees it), a few direct channel memberships; an admin and a manager;
- contacts with a phone identity (and often an email);
- conversations created over the year: mostly resolved when old, a realistic open
  inbox when recent (assigned or unassigned, some pending or snoozed), labels on a
  share, priorities, the assignee as participant with a read mark; `HEAVY` of them
  open with exactly 200 messages;
- messages alternating customer turns and replies by the assignee (a few private
  notes), `seq` contiguous per conversation, `message_count` / `last_seq` / the
  conversation's response times matching them;
- the spans the metrics worker would record (first response, replies, resolution, in
  wall and business seconds) and the SLA clocks, breaches already recorded, so the
  worker has nothing to catch up on when the benchmark starts it.

Of the timeline, only each resolution's event is written (the metrics derive the
resolution span from it); the metrics worker's cursor is set to the generation time, so
it does not read the history again.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from connectors.types import DELIVERY_RANK, DeliveryState
from inbox import business_hours
from inbox.business_hours import Calendar

SMS_ACCOUNT = "AC" + "3" * 32
SMS_AUTH_TOKEN = "bench-inbox-twilio-token"
UNREACHABLE = "http://127.0.0.1:9"  # replaced by the stand-in's address before a run
TEAMS = ("First line", "Sales", "Billing", "Second line", "VIP desk")
# (kind, name, weight of conversations, teams serving it by index)
CHANNELS: tuple[tuple[str, str, int, tuple[int, ...]], ...] = (
    ("sms", "Support line", 35, (0, 1, 2, 3, 4)),
    ("sms", "Sales line", 15, (1,)),
    ("sms", "EU number", 10, (2, 3)),
    ("sms", "Billing SMS", 10, (2,)),
    ("sms", "VIP line", 5, (4,)),
    ("webform", "Contact form", 15, (0, 1)),
    ("webform", "Demo request", 7, (1,)),
    ("webform", "Careers", 3, (4,)),
)
LABELS = (
    "billing", "bug", "feature-request", "refund", "shipping", "urgent-customer",
    "onboarding", "cancellation", "invoice", "login", "api", "feedback",
)  # fmt: skip
LABEL_WEIGHTS = tuple(1.0 / (rank + 1) for rank in range(len(LABELS)))
PRIORITY_NAMES = ("none", "low", "medium", "high", "urgent")
PRIORITY_WEIGHTS = (85, 4, 6, 4, 1)
MAX_MESSAGES = 150  # per ordinary conversation; the heavy ones have exactly HEAVY_SIZE
HEAVY_SIZE = 200
CONTACTS_PER_CONVERSATION = 0.4
WEEKDAYS_OPEN = ("mon", "tue", "wed", "thu", "fri")
SLA_SECONDS = {"first_response": 3600, "next_response": 4 * 3600, "resolution": 16 * 3600}
DELIVERED_RANK = DELIVERY_RANK[DeliveryState.DELIVERED]
CHUNK = 5000  # conversations per COPY round
TEXTS_IN = (
    "Hi, my order #{n} has not arrived yet, can you check?",
    "I was charged twice this month. Can you refund one of them?",
    "How do I change the phone number on my account?",
    "Thanks! One more question: does the plan include {n} seats?",
    "The app logs me out every few minutes since yesterday.",
    "ok",
    "Still waiting on this, any news?",
)
TEXTS_OUT = (
    "Hi! Thanks for reaching out, I'm looking into it now.",
    "I've refunded the duplicate charge; you'll see it in 3-5 business days.",
    "You can change it under Settings > Account. Anything else?",
    "Sorry about that! Could you tell me which version of the app you use?",
    "Great, I'll close this one then. Have a nice day!",
)


@dataclass(frozen=True)
class Size:
    """How much to generate."""

    conversations: int = 100_000
    messages: int = 1_000_000
    agents: int = 50

    @property
    def heavy(self) -> int:
        """How many conversations have exactly HEAVY_SIZE messages."""
        return max(1, min(50, self.conversations // 2000))

    def check(self) -> None:
        """ValueError when the sizes cannot be generated."""
        if self.agents < len(TEAMS) or self.conversations < 10:
            raise ValueError(f"at least {len(TEAMS)} agents and 10 conversations")
        floor = self.heavy * HEAVY_SIZE + (self.conversations - self.heavy)
        ceiling = self.heavy * HEAVY_SIZE + (self.conversations - self.heavy) * MAX_MESSAGES
        if not floor <= self.messages <= ceiling:
            raise ValueError(f"messages must be between {floor} and {ceiling} for this size")


@dataclass(frozen=True)
class People:
    """Who the generated data is about, for the benchmark to act as."""

    admin_id: uuid.UUID
    manager_id: uuid.UUID
    agent_ids: list[uuid.UUID]
    channel_ids: list[uuid.UUID]
    sms_channel_ids: list[uuid.UUID]
    # The channel every agent sees (served by every team).
    shared_channel_id: uuid.UUID


@dataclass
class _Rows:
    """Rows for COPY, per table: its columns and records."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    records: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, columns: tuple[str, ...], record: tuple[Any, ...]) -> None:
        self.columns.setdefault(table, columns)
        self.records.setdefault(table, []).append(record)

    def take(self) -> Iterator[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
        for table, records in self.records.items():
            yield table, self.columns[table], records
        self.records = {}


def id_at(at: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 of the instant `at` (timeline/ids.py's layout), random bits from `rng`."""
    ms = max(int(at.timestamp() * 1000), 0)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return uuid.UUID(int=value | rng.getrandbits(62))


def sms_config(api_base_url: str, number: int) -> dict[str, Any]:
    """The config of the `number`th SMS channel, sending to `api_base_url`."""
    return {
        "account_sid": SMS_ACCOUNT,
        "auth_token": SMS_AUTH_TOKEN,
        "phone_number": f"+1415555{100 + number:04d}",
        "default_region": "US",
        "api_base_url": api_base_url,
        # A reply must not wait long on a stand-in that went away.
        "api_timeout_seconds": 5.0,
    }


def business_calendar() -> tuple[dict[str, Any], list[dict[str, str]], Calendar]:
    """The SMS channels' calendar: its week, its holidays, and the computed calendar."""
    week = {day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in WEEKDAYS_OPEN}
    holidays = []
    for year in range(2020, 2031):
        holidays += [
            {"date": date(year, 1, 1).isoformat(), "name": "New Year"},
            {"date": date(year, 5, 1).isoformat(), "name": "Labour Day"},
            {"date": date(year, 12, 25).isoformat(), "name": "Christmas"},
            {"date": date(year, 12, 26).isoformat(), "name": "Boxing Day"},
        ]
    return week, holidays, business_hours.calendar("Europe/Berlin", week, holidays)


# --- one conversation ------------------------------------------------------------------


@dataclass
class _Entry:
    at: datetime
    direction: str  # "in" / "out"
    note: bool = False


def _message_times(
    rng: random.Random, count: int, created: datetime, now: datetime
) -> list[_Entry]:
    """`count` entries from `created`: customer turns of 1-2 messages, each answered by a
    reply after a human delay; an occasional private note before a reply."""
    entries: list[_Entry] = []
    at = created
    turn = 0
    while len(entries) < count:
        # The customer's turn.
        for index in range(1 if rng.random() < 0.7 else 2):
            if len(entries) >= count:
                break
            if index or turn:
                at += timedelta(seconds=rng.uniform(20, 300) if index else rng.uniform(60, 7200))
            entries.append(_Entry(at, "in"))
        if len(entries) >= count:
            break
        if rng.random() < 0.05 and len(entries) + 1 < count:
            at += timedelta(seconds=rng.uniform(30, 600))
            entries.append(_Entry(at, "out", note=True))
        # The reply: minutes to hours (lognormal, median ~25 min).
        at += timedelta(seconds=min(3 * 86400, rng.lognormvariate(math.log(1500), 1.2)))
        entries.append(_Entry(at, "out"))
        turn += 1
    latest = entries[-1].at
    if latest > now:  # a recent conversation: squeeze its history into what has passed
        span = (latest - created).total_seconds()
        room = max(1.0, (now - created).total_seconds() * 0.98)
        for entry in entries:
            entry.at = created + timedelta(
                seconds=(entry.at - created).total_seconds() * room / span
            )
    return entries


def _status(rng: random.Random, age_days: float) -> str:
    if age_days < 2:
        weights = (60, 20, 5, 15)
    elif age_days < 30:
        weights = (15, 10, 3, 72)
    else:
        weights = (1, 1, 0, 98)
    return rng.choices(("open", "pending", "snoozed", "resolved"), weights)[0]


@dataclass
class _World:
    """What the conversations are made of."""

    size: Size
    now: datetime
    rng: random.Random
    people: People
    channel_teams: dict[uuid.UUID, list[uuid.UUID]]
    team_agents: dict[uuid.UUID, list[uuid.UUID]]
    calendars: dict[uuid.UUID, Calendar | None]
    calendar_id: uuid.UUID
    policy_id: uuid.UUID
    contacts: list[tuple[uuid.UUID, uuid.UUID]]  # (contact id, phone identity id)
    open_threads: set[tuple[uuid.UUID, int]] = field(default_factory=set)


CONVERSATION_COLUMNS = (
    "id", "contact_id", "channel_id", "status", "thread_key", "assignee_id", "team_id",
    "created_at", "last_activity_at", "first_inbound_at", "waiting_since",
    "first_response_at", "last_inbound_at", "last_outbound_at", "resolved_at",
    "snoozed_until", "reopen_count", "message_count", "last_seq", "priority",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "conversation_id", "channel_id", "contact_id", "direction", "kind", "private",
    "external_id", "sender_identity_id", "author_id", "text", "auto_submitted", "sent_at",
    "created_at", "arrived_at", "seq", "delivery_state", "delivery_rank",
    "delivery_updated_at", "provider_message_id",
)  # fmt: skip
METRIC_COLUMNS = (
    "id", "conversation_id", "channel_id", "team_id", "agent_id", "cycle", "kind",
    "started_at", "ended_at", "wall_seconds", "business_seconds", "business_hours_id",
    "created_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "contact_id", "conversation_id", "message_id", "kind", "data", "occurred_at",
)  # fmt: skip
CLOCK_COLUMNS = (
    "conversation_id", "cycle", "target", "policy_id", "started_at", "due_at", "met_at",
    "breached_at",
)  # fmt: skip


def _conversation(
    world: _World, rows: _Rows, number: int, count: int, heavy: bool, channel_index: int
) -> None:
    rng, now, people = world.rng, world.now, world.people
    channel_id = people.channel_ids[channel_index]
    kind = CHANNELS[channel_index][0]
    age = timedelta(days=rng.uniform(0, 3) if heavy else 365 * rng.random() ** 1.15)
    created = now - age - timedelta(seconds=rng.uniform(60, 3600))
    status = "open" if heavy else _status(rng, age.total_seconds() / 86400)
    # One unresolved chat per contact on an SMS number (uq_conversations_open_thread).
    while True:
        contact_index = rng.randrange(len(world.contacts))
        if kind != "sms" or status == "resolved":
            break
        if (channel_id, contact_index) not in world.open_threads:
            world.open_threads.add((channel_id, contact_index))
            break
    contact_id, identity_id = world.contacts[contact_index]
    team_id = rng.choice(world.channel_teams[channel_id])
    assigned = status == "resolved" or rng.random() < 0.7
    assignee = rng.choice(world.team_agents[team_id]) if assigned else None
    entries = _message_times(rng, count, created, now)
    conversation_id = id_at(created, rng)
    replier = assignee or rng.choice(world.team_agents[team_id])
    first_in = entries[0].at
    inbound = [e.at for e in entries if e.direction == "in"]
    replies = [e.at for e in entries if e.direction == "out" and not e.note]
    last = entries[-1].at
    resolved_at = (
        min(now, last + timedelta(seconds=rng.uniform(60, 7200))) if status == "resolved" else None
    )
    waiting = None
    if status != "resolved":
        for e in reversed(entries):  # the first message of the trailing customer turn
            if e.direction != "in":
                break
            waiting = e.at
    rows.add(
        "conversations",
        CONVERSATION_COLUMNS,
        (
            conversation_id, contact_id, channel_id, status, "" if kind == "sms" else None,
            assignee, team_id, created, max(last, resolved_at or last), first_in, waiting,
            replies[0] if replies else None, inbound[-1], replies[-1] if replies else None,
            resolved_at,
            now + timedelta(hours=rng.uniform(1, 72)) if status == "snoozed" else None,
            0, count, count, rng.choices(PRIORITY_NAMES, PRIORITY_WEIGHTS)[0],
        ),
    )  # fmt: skip
    for seq, entry in enumerate(entries, start=1):
        out = entry.direction == "out"
        rows.add(
            "messages",
            MESSAGE_COLUMNS,
            (
                id_at(entry.at, rng), conversation_id, channel_id, contact_id, entry.direction,
                "note" if entry.note else "message", entry.note,
                None if out else f"SM{number:012d}{seq:04d}" if kind == "sms" else None,
                None if out else identity_id, replier if out else None,
                rng.choice(TEXTS_OUT if out else TEXTS_IN).format(n=number % 9000 + 100),
                False, entry.at, entry.at, entry.at, seq,
                "delivered" if out and not entry.note else None,
                DELIVERED_RANK if out and not entry.note else 0,
                entry.at + timedelta(seconds=3) if out and not entry.note else None,
                f"SM{number:012d}{seq:04d}x" if out and not entry.note and kind == "sms" else None,
            ),
        )  # fmt: skip
    if rng.random() < 0.3:
        for label in set(rng.choices(LABELS, LABEL_WEIGHTS, k=rng.choice((1, 1, 2)))):
            rows.add("conversation_labels", ("conversation_id", "label"), (conversation_id, label))
    if assignee is not None:
        rows.add(
            "conversation_participants",
            ("conversation_id", "user_id", "added_by", "added_at"),
            (conversation_id, assignee, None, first_in),
        )
        read = count if status == "resolved" else max(0, count - (entries[-1].direction == "in"))
        rows.add(
            "conversation_reads",
            ("conversation_id", "user_id", "read_seq", "updated_at"),
            (conversation_id, assignee, read, last),
        )
    if resolved_at is not None:  # what the metrics read the resolution from
        rows.add(
            "timeline_events",
            EVENT_COLUMNS,
            (id_at(resolved_at, rng), contact_id, conversation_id, None, "conversation.resolved",
             json.dumps({"actor_id": str(assignee or replier)}), resolved_at),
        )  # fmt: skip
    _spans(world, rows, conversation_id, channel_id, team_id, assignee or replier, entries,
           resolved_at)  # fmt: skip


def _spans(
    world: _World,
    rows: _Rows,
    conversation_id: uuid.UUID,
    channel_id: uuid.UUID,
    team_id: uuid.UUID,
    agent_id: uuid.UUID,
    entries: Sequence[_Entry],
    resolved_at: datetime | None,
) -> None:
    """The spans inbox/response_metrics.py derives from these messages (one cycle), and
    the SLA clocks inbox/sla.py keeps for them."""
    calendar = world.calendars[channel_id]
    calendar_id = world.calendar_id if calendar is not None else None
    now, rng = world.now, world.rng
    spans: list[tuple[str, datetime, datetime]] = []
    turn_start: datetime | None = None
    first = True
    for entry in entries:
        if entry.direction == "in":
            turn_start = turn_start or entry.at
        elif not entry.note and turn_start is not None:
            spans.append(("first_response" if first else "reply", turn_start, entry.at))
            first, turn_start = False, None
    opened = entries[0].at
    if resolved_at is not None:
        spans.append(("resolution", opened, resolved_at))
    for kind, start, end in spans:
        rows.add(
            "conversation_metrics",
            METRIC_COLUMNS,
            (
                id_at(end, rng), conversation_id, channel_id, team_id, agent_id, 1, kind,
                start, end, (end - start).total_seconds(),
                None if calendar is None else business_hours.business_seconds(calendar, start, end),
                calendar_id, end,
            ),
        )  # fmt: skip
    replies = [(start, end) for kind, start, end in spans if kind == "reply"]
    first_reply = next(((s, e) for k, s, e in spans if k == "first_response"), None)
    pending_turn = turn_start  # a customer turn not answered yet
    clocks: list[tuple[str, datetime, datetime | None]] = [
        ("first_response", opened, first_reply[1] if first_reply else None),
        ("resolution", opened, resolved_at),
    ]
    if pending_turn is not None and first_reply is not None and resolved_at is None:
        clocks.append(("next_response", pending_turn, None))
    elif replies:
        clocks.append(("next_response", replies[-1][0], replies[-1][1]))
    for target, start, met in clocks:
        due = business_hours.add_business_seconds(calendar, start, SLA_SECONDS[target])
        late = due <= now and (met is None or met > due)
        rows.add(
            "sla_clocks",
            CLOCK_COLUMNS,
            (conversation_id, 1, target, world.policy_id, start, due, met, due if late else None),
        )


def _message_counts(size: Size, rng: random.Random) -> list[int]:
    """Messages per ordinary conversation, summing exactly to what is left after the
    heavy ones: mostly short, a long tail."""
    ordinary = size.conversations - size.heavy
    total = size.messages - size.heavy * HEAVY_SIZE
    mean = total / ordinary
    counts = [
        min(MAX_MESSAGES, max(1, round(rng.lognormvariate(math.log(mean) - 0.35, 0.85))))
        for _ in range(ordinary)
    ]
    difference = total - sum(counts)
    step = 1 if difference > 0 else -1
    while difference:
        index = rng.randrange(ordinary)
        if 1 <= counts[index] + step <= MAX_MESSAGES:
            counts[index] += step
            difference -= step
    return counts


# --- the whole database ------------------------------------------------------------------


async def _copy(connection: asyncpg.Connection, rows: _Rows, sizes: dict[str, int]) -> None:
    # Parents first: the foreign keys are checked row by row.
    order = ("conversations", "messages", "conversation_labels", "conversation_participants",
             "conversation_reads", "conversation_metrics", "sla_clocks",
             "timeline_events")  # fmt: skip
    taken = {table: (columns, records) for table, columns, records in rows.take()}
    for table in sorted(taken, key=lambda name: order.index(name) if name in order else -1):
        columns, records = taken[table]
        await connection.copy_records_to_table(table, columns=columns, records=records)
        sizes[table] = sizes.get(table, 0) + len(records)


async def generate(
    connection: asyncpg.Connection,
    size: Size,
    now: datetime,
    encrypt: Any,
    *,
    seed: int = 9,
) -> tuple[People, dict[str, int]]:
    """Fill a migrated, empty database; returns who is who and the rows per table.

    `encrypt` turns a channel config (a dict) into its stored form (SecretBox.encrypt).
    """
    size.check()
    rng = random.Random(seed)
    sizes: dict[str, int] = {}
    rows = _Rows()
    start = now - timedelta(days=400)

    def user(email: str, name: str, role: str) -> uuid.UUID:
        user_id = id_at(start, rng)
        rows.add(
            "users",
            ("id", "email", "name", "role", "password_hash", "is_active", "created_at"),
            (user_id, email, name, role, "-", True, start),
        )
        return user_id

    admin = user("bench-admin@example.com", "Bench Admin", "admin")
    manager = user("bench-manager@example.com", "Bench Manager", "manager")
    agents = [user(f"agent{i}@example.com", f"Agent {i}", "agent") for i in range(size.agents)]
    channel_ids = [id_at(start, rng) for _ in CHANNELS]
    sms_ids = []
    for index, ((kind, name, _, _), channel_id) in enumerate(
        zip(CHANNELS, channel_ids, strict=True)
    ):
        config = sms_config(UNREACHABLE, index) if kind == "sms" else {}
        if kind == "sms":
            sms_ids.append(channel_id)
        rows.add(
            "channels",
            ("id", "kind", "name", "config_encrypted", "health", "paused", "created_at",
             "updated_at"),
            (channel_id, kind, name, encrypt(config), "unknown", False, start, start),
        )  # fmt: skip
    team_ids = [id_at(start, rng) for _ in TEAMS]
    for team_id, name in zip(team_ids, TEAMS, strict=True):
        rows.add("teams", ("id", "name", "created_at"), (team_id, name, start))
    team_agents: dict[uuid.UUID, list[uuid.UUID]] = {team_id: [] for team_id in team_ids}
    for index, agent in enumerate(agents):
        team_id = team_ids[index % len(TEAMS)]
        team_agents[team_id].append(agent)
        rows.add("team_members", ("team_id", "user_id", "created_at"), (team_id, agent, start))
    channel_teams: dict[uuid.UUID, list[uuid.UUID]] = {}
    for (_, _, _, teams), channel_id in zip(CHANNELS, channel_ids, strict=True):
        channel_teams[channel_id] = [team_ids[t] for t in teams]
        for t in teams:
            rows.add(
                "channel_teams", ("channel_id", "team_id", "created_at"),
                (channel_id, team_ids[t], start),
            )  # fmt: skip
    # A few agents also work one more channel directly (agent 0: the EU number).
    for index in range(0, size.agents, 7):
        rows.add(
            "channel_members", ("channel_id", "user_id", "created_at"),
            (channel_ids[2 + index % 3], agents[index], start),
        )  # fmt: skip
    week, holidays, calendar = business_calendar()
    calendar_id = id_at(start, rng)
    rows.add(
        "business_hours",
        ("id", "name", "timezone", "week", "holidays", "created_at", "updated_at"),
        (calendar_id, "Berlin office", "Europe/Berlin", json.dumps(week), json.dumps(holidays),
         start, start),
    )  # fmt: skip
    for channel_id in sms_ids:
        rows.add(
            "channel_business_hours", ("channel_id", "business_hours_id"), (channel_id, calendar_id)
        )
    policy_id = id_at(start, rng)
    rows.add(
        "sla_policies",
        ("id", "name", "position", "enabled", "first_response_seconds", "next_response_seconds",
         "resolution_seconds", "channel_ids", "team_ids", "priorities", "created_at",
         "updated_at"),
        (policy_id, "Standard", 0, True, SLA_SECONDS["first_response"],
         SLA_SECONDS["next_response"], SLA_SECONDS["resolution"], "[]", "[]", "[]", start, start),
    )  # fmt: skip
    rows.add("metric_cursors", ("name", "position", "updated_at"), ("metrics", now, now))
    contact_count = max(10, int(size.conversations * CONTACTS_PER_CONVERSATION))
    contacts = []
    for index in range(contact_count):
        contact_id, identity_id = id_at(start, rng), id_at(start, rng)
        contacts.append((contact_id, identity_id))
        rows.add(
            "contacts",
            ("id", "name", "lifecycle_stage", "created_at", "updated_at", "last_activity_at"),
            (contact_id, f"Customer {index}", "customer" if index % 4 == 0 else "new", start,
             start, now),
        )  # fmt: skip
        identity = ("id", "contact_id", "kind", "value", "created_at")
        rows.add(
            "identities", identity, (identity_id, contact_id, "phone", f"+1646{index:07d}", start)
        )
        if index % 2 == 0:
            rows.add(
                "identities", identity,
                (id_at(start, rng), contact_id, "email", f"customer{index}@example.com", start),
            )  # fmt: skip
    people = People(admin, manager, agents, channel_ids, sms_ids, channel_ids[0])
    for table, columns, records in rows.take():
        await connection.copy_records_to_table(table, columns=columns, records=records)
        sizes[table] = len(records)
    world = _World(
        size, now, rng, people, channel_teams, team_agents,
        {c: (calendar if c in sms_ids else None) for c in channel_ids}, calendar_id, policy_id,
        contacts,
    )  # fmt: skip
    counts = _message_counts(size, rng)
    weights = [weight for _, _, weight, _ in CHANNELS]
    plan = [(HEAVY_SIZE, True, 0)] * size.heavy + [
        (count, False, rng.choices(range(len(CHANNELS)), weights)[0]) for count in counts
    ]
    for number, (count, heavy, channel_index) in enumerate(plan):
        _conversation(world, rows, number, count, heavy, channel_index)
        if (number + 1) % CHUNK == 0:
            await _copy(connection, rows, sizes)
    await _copy(connection, rows, sizes)
    await connection.execute("VACUUM ANALYZE")
    return people, sizes


async def people_of(connection: asyncpg.Connection) -> People:
    """Who is who in a database `generate` filled earlier (--keep)."""
    users = {
        row["email"]: row["id"]
        for row in await connection.fetch("SELECT id, email FROM users ORDER BY created_at, id")
    }
    agents = [
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM users WHERE email LIKE 'agent%@example.com' "
            "ORDER BY (substring(email from 6 for position('@' in email) - 6))::int"
        )
    ]
    channels = await connection.fetch("SELECT id, kind, name FROM channels ORDER BY id")
    by_name = {row["name"]: row for row in channels}
    ordered = [by_name[name]["id"] for _, name, _, _ in CHANNELS]
    sms = [by_name[name]["id"] for kind, name, _, _ in CHANNELS if kind == "sms"]
    return People(
        users["bench-admin@example.com"], users["bench-manager@example.com"], agents, ordered,
        sms, ordered[0],
    )  # fmt: skip
