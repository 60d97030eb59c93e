"""Web forms end to end, and segment queries over a large contact base, on PostgreSQL.

(a) Submissions: a real `switchboard web` process (web.app.create_app, the web role: a
    submission is answered after it is committed) on a durable private PostgreSQL. A
    webform channel (its per-address rate limit raised so the benchmark is not refused)
    and a form are created through the REST API; then N JSON submissions to
    POST /forms/{key}, each from another person (distinct name, email, phone, message),
    from C concurrent clients over loopback. Afterwards exactly N messages, contacts and
    form_submissions rows must exist, or the benchmark fails.
(b) Segments: a fresh database filled with 200,000 contacts (stages, owners, tags, typed
    custom attributes, identities, conversations with last inbound/outbound times,
    opt-outs, a few merged and erased contacts) by COPY, then a handful of realistic
    filters, each evaluated many times as the segments API does: the live count
    (inbox.segments.count_contacts) and the first page of the segment's contacts
    (compile_filters, most recent activity first, with identities, tags, attributes).

Targets (issue 8): at least 500 submissions/s; segment queries p99 under 100 ms.

    python -m bench.forms
    python -m bench.forms --submissions 5000 --concurrency 50 --contacts 200000
    python -m bench.forms --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import secrets
import statistics
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import Select, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.ingest import fresh_postgres_database
from bench.webhooks import start_web, wait_healthy
from connectors.webform.definition import FormDefinition
from inbox.models import Role
from inbox.segments import SegmentFilters, compile_filters, count_contacts
from inbox.users import create_user, issue_token
from migrations.upgrade import upgrade
from timeline.db import create_engine, read_session_factory, session_factory
from timeline.models import Contact, Form, FormSubmission, Message
from web.api.contacts import _contact_outs

WARMUP = 200
PAGE = 50  # the contact list's default page size
TARGET_RATE = 500.0
TARGET_SEGMENT_P99_MS = 100.0
# WebformConfig.submissions_per_hour_per_ip allows at most this; beyond it, clients are
# spread over more loopback source addresses (each its own visitor to the rate limiter).
PER_ADDRESS = 10_000
AREA_CODES = (212, 312, 415, 617, 646, 206, 303, 512, 702, 808, 305, 404)
FIRST = ("Ann", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Inès", "José")
LAST = ("Smith", "Müller", "García", "Nguyen", "O'Brien", "Kowalski", "Rossi", "Dubois")
TOPICS = ("sales", "support", "billing", "partnership")
ASKS = (
    "Could you send me a quote for {n} seats? We are comparing tools this month.",
    "Our invoice #{n} shows the wrong VAT number, please correct it.",
    "Hello,\nwe would like a demo next week. Tuesday or Thursday afternoon works for us.",
    "The export to CSV stops at {n} rows; is there a limit on our plan?",
    "Do you offer a discount for non-profits? We are a team of {n} volunteers.",
)


# --- (a) form submissions --------------------------------------------------------------


def form_fields() -> list[dict[str, Any]]:
    """The form the benchmark posts to: what a typical contact form asks."""
    return [
        {"name": "name", "label": "Your name", "type": "text", "required": True, "maps_to": "name"},
        {"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"},
        {"name": "phone", "label": "Phone", "type": "phone", "required": False, "maps_to": "phone"},
        {
            "name": "topic",
            "label": "What is it about?",
            "type": "select",
            "required": True,
            "maps_to": None,
            "options": list(TOPICS),
        },
        {
            "name": "message",
            "label": "Message",
            "type": "textarea",
            "required": True,
            "maps_to": "message",
        },
    ]


def _ascii(name: str) -> str:
    """A name as it would appear in an email address (accents dropped)."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")


def submission(number: int, run: str) -> dict[str, str]:
    """The `number`th visitor's post: a distinct person (email and phone) each time."""
    rng = random.Random(number)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    area = AREA_CODES[number // 10_000 % len(AREA_CODES)]
    return {
        "name": f"{first} {last}",
        "email": f"{_ascii(first.lower())}.{number}.{run}@example.com",
        "phone": f"+1{area}555{number % 10_000:04d}",
        "topic": rng.choice(TOPICS),
        "message": rng.choice(ASKS).format(n=rng.randint(2, 900)),
        "_page_url": f"https://www.example.com/pricing?utm_source=news&utm_campaign=c{number % 7}",
        "_referrer": "https://www.google.com/",
    }


@dataclass(frozen=True)
class Site:
    """The web process, an admin's token, and the form under test."""

    base: str
    token: str
    form_key: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def admin_token(url: str) -> str:
    """Migrate the database and make an admin with an API token."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            user = await create_user(
                session,
                email="bench-admin@example.com",
                password="bench-admin-password",
                role=Role.ADMIN,
            )
            return await issue_token(session, user, "bench.forms")
    finally:
        await engine.dispose()


async def create_form(site: Site, url: str) -> str:
    """A webform channel and a form on it, through the API; the form's key."""
    channel_body = {
        "kind": "webform",
        "name": "bench website",
        "config": {"submissions_per_hour_per_ip": PER_ADDRESS},
    }
    async with aiohttp.ClientSession(headers=site.auth) as session:
        async with session.post(f"{site.base}/api/v1/channels", json=channel_body) as answer:
            if answer.status != 201:
                raise RuntimeError(f"creating the channel: {answer.status} {await answer.text()}")
            channel_id = (await answer.json())["id"]
        form_body = {
            "name": "Contact us",
            "channel_id": channel_id,
            "fields": form_fields(),
            "language": "en",
        }
        async with session.post(f"{site.base}/api/v1/forms", json=form_body) as answer:
            if answer.status == 201:
                return str((await answer.json())["key"])
            if answer.status not in (404, 405):
                raise RuntimeError(f"creating the form: {answer.status} {await answer.text()}")
    # The forms API is not there yet (issue 8 is being built): the row it would write.
    print("    (POST /api/v1/forms is not served yet: the form row is inserted directly)")
    definition = FormDefinition.model_validate(form_body)
    key = secrets.token_urlsafe(16)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            db.add(
                Form(
                    key=key,
                    channel_id=uuid.UUID(channel_id),
                    name=definition.name,
                    definition=definition.model_dump(mode="json"),
                    active=True,
                )
            )
    finally:
        await engine.dispose()
    return key


class Refused(RuntimeError):
    """The endpoint did not accept a submission the benchmark expected it to."""


async def submit(session: aiohttp.ClientSession, site: Site, number: int, run: str) -> float:
    headers = {"Accept": "application/json", "User-Agent": "Mozilla/5.0 (bench.forms)"}
    body = submission(number, run)
    started = time.perf_counter()
    async with session.post(f"{site.base}/forms/{site.form_key}", json=body, headers=headers) as a:
        text = await a.text()
        elapsed = time.perf_counter() - started
        if a.status not in (200, 201) or not a.content_type.endswith("json"):
            raise Refused(f"POST /forms/{{key}} answered {a.status}: {text[:500]}")
    return elapsed


def _sessions(total: int, concurrency: int) -> list[aiohttp.ClientSession]:
    """Client sessions sharing `concurrency` connections; more than one (each from its own
    127.0.0.x source address) only when `total` is over one address's hourly allowance."""
    addresses = max(1, math.ceil(total / (PER_ADDRESS * 0.95)))
    if addresses == 1:
        return [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))]
    share = max(1, concurrency // addresses)
    return [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=share, local_addr=(f"127.0.0.{2 + i}", 0))
        )
        for i in range(addresses)
    ]


async def burst(site: Site, numbers: range, concurrency: int, run: str) -> list[float]:
    """Post every number in `numbers` from `concurrency` clients; each one's latency."""
    sessions = _sessions(len(numbers), concurrency)
    queue = iter(numbers)
    latencies: list[float] = []
    try:

        async def lane(session: aiohttp.ClientSession) -> None:
            for number in queue:
                latencies.append(await submit(session, site, number, run))

        await asyncio.gather(*(lane(sessions[i % len(sessions)]) for i in range(concurrency)))
    finally:
        for session in sessions:
            await session.close()
    return latencies


async def stored_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return {
                name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in (
                    ("messages", Message),
                    ("contacts", Contact),
                    ("form_submissions", FormSubmission),
                )
            }
    finally:
        await engine.dispose()


async def endpoint_ready(site: Site) -> bool:
    """Whether POST /forms/{key} takes a submission (it is being written alongside)."""
    async with aiohttp.ClientSession() as session:
        try:
            await submit(session, site, 0, "probe")
        except Refused as err:
            print(f"    the public endpoint is not ready: {err}")
            return False
    return True


async def run_submissions(
    server_url: str, args: argparse.Namespace, root: Path
) -> dict[str, float]:
    url = await fresh_postgres_database(server_url)
    from tests.services import free_port

    token = await admin_token(url)
    port = free_port()
    log = root / "web.log"
    process = start_web(url, port, root / "data", log)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, process, log)
        site = Site(base, token)
        site = Site(base, token, await create_form(site, url))
        if not await endpoint_ready(site):
            raise RuntimeError("POST /forms/{key} does not accept submissions yet")
        run = uuid.uuid4().hex[:6]
        # Warm up: connections, prepared statements, caches; number 0 was the probe.
        await burst(site, range(1, WARMUP + 1), 8, run)
        print(f"(a) {args.submissions} submissions, {args.concurrency} clients ...", flush=True)
        started = time.perf_counter()
        timed = range(WARMUP + 1, WARMUP + 1 + args.submissions)
        latencies = sorted(await burst(site, timed, args.concurrency, run))
        seconds = time.perf_counter() - started
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
    rate = args.submissions / seconds
    figures = {
        "rate": rate,
        "seconds": seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _p99(latencies) * 1000,
        "max_ms": latencies[-1] * 1000,
    }
    print(
        f"    {rate:.0f} submissions/s ({seconds:.1f} s), p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms "
        f"(target >= {TARGET_RATE:.0f}/s)",
        flush=True,
    )
    expected = 1 + WARMUP + args.submissions  # the probe, the warm-up, the timed run
    counts = await stored_counts(url)
    print(f"    stored {counts} (expected {expected} of each)", flush=True)
    wrong = {name: count for name, count in counts.items() if count != expected}
    if wrong:
        raise RuntimeError(f"stored {wrong}, expected {expected} of each")
    await _drop_database(server_url, url)
    return figures


def _p99(ordered: Sequence[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# --- (b) segments ----------------------------------------------------------------------

STAGES = (("new", 30), ("lead", 30), ("qualified", 15), ("customer", 20), ("lost", 5))
# Tag popularity falls off like real tagging: a few common tags, a long tail.
TAGS = (
    "vip", "newsletter", "trial", "churn-risk", "enterprise", "partner", "event-2026",
    "webinar", "referral", "reseller", "education", "nonprofit", "beta", "gdpr-request",
    "eu", "us", "apac", "upsell", "inbound", "outbound",
)  # fmt: skip
TAG_WEIGHTS = tuple(1.0 / (rank + 1) for rank in range(len(TAGS)))
OWNERS = 20
CHANNELS: tuple[tuple[str, str], ...] = (
    ("email", "Support mailbox"),
    ("email", "Sales mailbox"),
    ("sms", "US number"),
    ("telegram", "Bot"),
    ("webform", "Website"),
)
DEFINITIONS = (
    ("plan", "Plan", "select", ["free", "starter", "pro", "enterprise"]),
    ("employees", "Employees", "number", None),
    ("renewal", "Renewal date", "date", None),
    ("newsletter", "Newsletter", "boolean", None),
    ("mrr", "Monthly revenue", "money", None),
)


@dataclass
class Tables:
    """Rows for COPY, per table: (columns, records)."""

    rows: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]

    def add(self, table: str, columns: tuple[str, ...], record: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, (columns, []))[1].append(record)


def _chance(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def build_contacts(
    count: int,
    now: datetime,
    channels: Sequence[tuple[uuid.UUID, str]],
    owners: Sequence[uuid.UUID],
) -> Tables:
    """`count` contacts and everything hanging off them, deterministic (seeded)."""
    rng = random.Random(8)
    tables = Tables({})
    stage_names = [name for name, _ in STAGES]
    stage_weights = [weight for _, weight in STAGES]
    sms = next(channel for channel, kind in channels if kind == "sms")
    contact_columns = (
        "id", "name", "lifecycle_stage", "lost_reason", "owner_id", "lifetime_value_minor",
        "lifetime_value_currency", "language", "merged_into_id", "erased_at", "created_at",
        "updated_at", "last_activity_at",
    )  # fmt: skip
    conversation_columns = (
        "id", "contact_id", "channel_id", "status", "thread_key", "assignee_id", "created_at",
        "last_activity_at", "first_inbound_at", "last_inbound_at", "last_outbound_at",
        "first_response_at", "resolved_at", "reopen_count", "message_count", "last_seq",
    )  # fmt: skip
    ids: list[uuid.UUID] = []
    for index in range(count):
        contact_id = uuid.uuid4()
        ids.append(contact_id)
        created = now - timedelta(seconds=rng.uniform(0, 730 * 86400))
        stage = rng.choices(stage_names, stage_weights)[0]
        last_activity = created
        for channel_id, kind in rng.sample(list(channels), rng.choice((0, 1, 1, 1, 2, 2, 3))):
            opened = created + (now - created) * rng.random()
            inbound = opened + timedelta(minutes=rng.uniform(0, 600))
            outbound = (
                inbound + timedelta(minutes=rng.uniform(2, 600)) if _chance(rng, 0.8) else None
            )
            latest = min(now, max(inbound, outbound or inbound))
            resolved = latest if _chance(rng, 0.7) else None
            status = "resolved" if resolved else rng.choice(("open", "open", "pending"))
            # Email threads have their root Message-ID; chats the one "" thread; forms none.
            thread_key = {"email": f"<{uuid.uuid4()}@mail.example.com>", "webform": None}.get(
                kind, ""
            )
            messages = rng.randint(1, 12)
            tables.add(
                "conversations",
                conversation_columns,
                (
                    uuid.uuid4(), contact_id, channel_id, status, thread_key,
                    rng.choice(owners) if _chance(rng, 0.6) else None, opened, latest,
                    inbound, min(inbound, now), outbound and min(outbound, now),
                    outbound and min(outbound, now), resolved, 0, messages, messages,
                ),
            )  # fmt: skip
            last_activity = max(last_activity, latest)
        tables.add(
            "contacts",
            contact_columns,
            (
                contact_id,
                f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                stage,
                rng.choice(("price", "competitor", "no budget")) if stage == "lost" else None,
                rng.choice(owners) if _chance(rng, 0.7) else None,
                rng.randint(1_000, 5_000_000) if stage == "customer" else None,
                "EUR" if stage == "customer" else None,
                rng.choice(("en", "en", "de", "fr", "es")),
                # A few merged (into an earlier contact) and erased ones, as in real data.
                rng.choice(ids[:-1]) if index > 10 and _chance(rng, 0.005) else None,
                now if _chance(rng, 0.002) else None,
                created,
                last_activity,
                last_activity,
            ),
        )
        identity = ("id", "contact_id", "kind", "value", "display_name", "created_at")
        if _chance(rng, 0.9):
            tables.add(
                "identities",
                identity,
                (uuid.uuid4(), contact_id, "email", f"c{index}@example.com", None, created),
            )
        if _chance(rng, 0.5):
            phone = f"+1{AREA_CODES[index % len(AREA_CODES)]}{index // len(AREA_CODES):07d}"
            tables.add(
                "identities", identity, (uuid.uuid4(), contact_id, "phone", phone, None, created)
            )
            if _chance(rng, 0.04):  # replied STOP
                tables.add(
                    "contact_reachability",
                    ("channel_id", "contact_id", "opted_out", "blocked", "detail", "updated_at"),
                    (sms, contact_id, True, False, "STOP", now),
                )
        if _chance(rng, 0.2):
            tables.add(
                "identities",
                identity,
                (uuid.uuid4(), contact_id, "telegram", str(10_000_000 + index), None, created),
            )
        tag_count = rng.choice((0, 0, 1, 1, 2, 3, 4))
        for tag in set(rng.choices(TAGS, TAG_WEIGHTS, k=tag_count)):
            tables.add("contact_tags", ("contact_id", "tag"), (contact_id, tag))
        _attributes(tables, rng, contact_id, now)
    return tables


def _attributes(tables: Tables, rng: random.Random, contact_id: uuid.UUID, now: datetime) -> None:
    """Custom attribute values, each in its type's column (the others NULL)."""
    columns = (
        "contact_id", "key", "text_value", "number_value", "date_value", "bool_value",
        "money_minor", "currency",
    )  # fmt: skip

    def add(key: str, **values: Any) -> None:
        row = (contact_id, key, *(values.get(column) for column in columns[2:]))
        tables.add("contact_attributes", columns, row)

    if _chance(rng, 0.6):
        plan = rng.choices(("free", "starter", "pro", "enterprise"), (50, 25, 20, 5))[0]
        add("plan", text_value=plan)
    if _chance(rng, 0.5):
        add("employees", number_value=float(int(rng.lognormvariate(3.5, 1.5)) + 1))
    if _chance(rng, 0.3):
        day = now + timedelta(days=rng.randint(-200, 400))
        add("renewal", date_value=day.replace(hour=0, minute=0, second=0, microsecond=0))
    if _chance(rng, 0.4):
        add("newsletter", bool_value=rng.random() < 0.5)
    if _chance(rng, 0.2):
        add("mrr", money_minor=rng.randint(0, 500_000), currency="EUR")


async def fill(url: str, count: int, now: datetime) -> dict[str, int]:
    """Migrate, then COPY `count` contacts with their children; rows per table."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        owners = [uuid.uuid4() for _ in range(OWNERS)]
        await connection.copy_records_to_table(
            "users",
            columns=("id", "email", "name", "role", "password_hash", "is_active", "created_at"),
            records=[
                (owner, f"agent{i}@example.com", f"Agent {i}", "agent", "-", True, now)
                for i, owner in enumerate(owners)
            ],
        )
        channels = [(uuid.uuid4(), kind) for kind, _ in CHANNELS]
        await connection.copy_records_to_table(
            "channels",
            columns=(
                "id",
                "kind",
                "name",
                "config_encrypted",
                "health",
                "paused",
                "created_at",
                "updated_at",
            ),
            records=[
                (channel_id, kind, name, "-", "unknown", False, now, now)
                for (channel_id, kind), (_, name) in zip(channels, CHANNELS, strict=True)
            ],
        )
        await connection.copy_records_to_table(
            "attribute_definitions",
            columns=("key", "label", "type", "options", "created_at"),
            records=[
                (key, label, kind, None if options is None else json.dumps(options), now)
                for key, label, kind, options in DEFINITIONS
            ],
        )
        tables = await asyncio.to_thread(build_contacts, count, now, channels, owners)
        sizes: dict[str, int] = {}
        # Parents first (foreign keys); contacts merged into others point at earlier rows.
        for table in ("contacts", "identities", "conversations", "contact_tags",
                      "contact_attributes", "contact_reachability"):  # fmt: skip
            columns, records = tables.rows[table]
            await connection.copy_records_to_table(table, columns=columns, records=records)
            sizes[table] = len(records)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return sizes


@dataclass(frozen=True)
class Case:
    label: str
    filters: dict[str, Any]


def cases(now: datetime, owner: uuid.UUID) -> list[Case]:
    """The filters timed: what a marketer or a sales lead would save."""
    day = timedelta(days=1)
    return [
        Case("stage=lead", {"stages": ["lead"]}),
        Case("tag vip + owner", {"tags_any": ["vip"], "owner_id": str(owner)}),
        Case(
            "employees 50..500",
            {
                "attributes": [
                    {"key": "employees", "op": "gte", "value": 50},
                    {"key": "employees", "op": "lt", "value": 500},
                ]
            },
        ),
        Case("reachable on sms", {"reachable_on_kinds": ["sms"]}),
        Case("inbound last 30 days", {"last_inbound_after": (now - 30 * day).isoformat()}),
        Case(
            "created in a quarter",
            {
                "created_after": (now - 270 * day).isoformat(),
                "created_before": (now - 180 * day).isoformat(),
            },
        ),
        Case(
            "customers pro, no churn-risk",
            {
                "stages": ["customer"],
                "tags_none": ["churn-risk"],
                "attributes": [{"key": "plan", "op": "in", "value": ["pro", "enterprise"]}],
                "reachable_on_kinds": ["email"],
            },
        ),
    ]


def page_statement(condition: Any) -> Select[Contact]:
    """The first page of a segment's contacts, as GET /segments/{id}/contacts asks for it."""
    return (
        select(Contact)
        .where(condition)
        .order_by(Contact.last_activity_at.desc(), Contact.id.desc())
        .limit(PAGE + 1)
    )


async def _timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


async def time_case(engine: AsyncEngine, case: Case, repeat: int) -> dict[str, Any]:
    sessions = read_session_factory(engine)
    filters = SegmentFilters.model_validate(case.filters)
    counts: list[float] = []
    pages: list[float] = []
    matched = 0
    for _ in range(repeat):
        async with sessions() as session:

            async def count() -> None:
                nonlocal matched
                matched = await count_contacts(session, filters)

            async def page() -> None:
                condition = await compile_filters(session, filters)
                rows = (await session.scalars(page_statement(condition))).all()
                await _contact_outs(session, rows[:PAGE])

            counts.append(await _timed(count))
            pages.append(await _timed(page))
    counts.sort()
    pages.sort()
    return {
        "label": case.label,
        "matched": matched,
        "count": counts,
        "page": pages,
    }


async def explain(engine: AsyncEngine, case: Case) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the count and the page statement, as they are sent."""
    sessions = read_session_factory(engine)
    filters = SegmentFilters.model_validate(case.filters)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        captured.append((statement, parameters))

    lines: list[str] = []
    async with sessions() as session:
        condition = await compile_filters(session, filters)
        for label, statement in (
            ("count", select(func.count()).select_from(Contact).where(condition)),
            ("page", page_statement(condition)),
        ):
            event.listen(engine.sync_engine, "before_cursor_execute", capture)
            try:
                await session.execute(statement)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", capture)
            sql, parameters = captured[-1]
            connection = await session.connection()
            plan = await connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, parameters)
            lines.append(f"-- {case.label}: {label}")
            lines += [str(row[0]) for row in plan]
    return lines


async def run_segments(server_url: str, args: argparse.Namespace) -> dict[str, float]:
    url = await fresh_postgres_database(server_url)
    now = datetime.now(UTC).replace(microsecond=0)
    print(f"(b) filling {args.contacts} contacts ...", flush=True)
    started = time.perf_counter()
    sizes = await fill(url, args.contacts, now)
    print(
        f"    filled in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{table} {size}" for table, size in sizes.items()),
        flush=True,
    )
    engine = create_engine(url)
    everything: list[float] = []
    slow: list[Case] = []
    try:
        async with read_session_factory(engine)() as session:
            owner = await session.scalar(
                select(Contact.owner_id)
                .where(Contact.owner_id.is_not(None))
                .group_by(Contact.owner_id)
                .order_by(func.count().desc())
                .limit(1)
            )
        assert owner is not None
        print(f"    {args.repeat} runs per filter, live count and first page of {PAGE}:")
        print(
            f"    {'filter':30s} {'matched':>8s} {'count p50/p99 ms':>18s} {'page p50/p99 ms':>17s}"
        )
        for case in cases(now, owner):
            await time_case(engine, case, 3)  # warm the cache and the prepared statements
            result = await time_case(engine, case, args.repeat)
            count, page = result["count"], result["page"]
            everything += count + page
            print(
                f"    {case.label:30s} {result['matched']:8d} "
                f"{statistics.median(count):8.1f} /{_p99(count):7.1f} "
                f"{statistics.median(page):8.1f} /{_p99(page):7.1f}",
                flush=True,
            )
            if max(_p99(count), _p99(page)) > TARGET_SEGMENT_P99_MS or args.explain:
                slow.append(case)
        for case in slow:
            print("\n".join(await explain(engine, case)))
    finally:
        await engine.dispose()
    everything.sort()
    figures = {
        "p50_ms": statistics.median(everything),
        "p99_ms": _p99(everything),
        "max_ms": everything[-1],
    }
    print(
        f"    overall: p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.1f} ms (target p99 < {TARGET_SEGMENT_P99_MS:.0f} ms)",
        flush=True,
    )
    if args.keep:
        print(f"    kept the database: {url}")
    else:
        await _drop_database(server_url, url)
    return figures


# --- running ---------------------------------------------------------------------------


async def _drop_database(server_url: str, url: str) -> None:
    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await connection.close()


async def main_async(args: argparse.Namespace) -> int:
    from tests.services import Postgres, free_port

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        await asyncio.to_thread(root.chmod, 0o755)  # the postgres user must reach inside
        server = None
        server_url = args.postgres_url
        if server_url is None:
            server = Postgres(root / "pg", free_port(), durable=True)
            await asyncio.to_thread(server.start)
            server_url = server.url
        try:
            forms = await run_submissions(server_url, args, root) if args.submissions > 0 else None
            segments = await run_segments(server_url, args) if args.contacts > 0 else None
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)
    parts = ["RESULT name=forms"]
    if forms is not None:
        parts += [
            f"submissions={args.submissions} concurrency={args.concurrency}",
            f"submissions_per_s={forms['rate']:.1f} submit_p50_ms={forms['p50_ms']:.1f}",
            f"submit_p99_ms={forms['p99_ms']:.1f}",
        ]
    if segments is not None:
        parts += [
            f"segment_contacts={args.contacts} segment_p50_ms={segments['p50_ms']:.1f}",
            f"segment_p99_ms={segments['p99_ms']:.1f}",
        ]
    print(" ".join(parts))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.forms",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--submissions", type=int, default=5000, help="(a); 0 skips it")
    parser.add_argument("--concurrency", type=int, default=50, help="(a) concurrent clients")
    parser.add_argument("--contacts", type=int, default=200_000, help="(b); 0 skips it")
    parser.add_argument("--repeat", type=int, default=50, help="(b) runs per filter")
    parser.add_argument(
        "--explain", action="store_true", help="(b) print every filter's plan, not only slow ones"
    )
    parser.add_argument(
        "--keep", action="store_true", help="(b) keep the filled database (its name is printed)"
    )
    parser.add_argument(
        "--postgres-url",
        help="server to create scratch databases on (dropped afterwards); "
        "default: start a private durable PostgreSQL on 127.0.0.1",
    )
    args = parser.parse_args()
    if args.concurrency < 1 or args.submissions < 0 or args.contacts < 0 or args.repeat < 1:
        parser.error("counts must not be negative; concurrency and repeat at least 1")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
