"""Ingestion throughput through the real pipeline, on SQLite and PostgreSQL.

Synthetic workload: N messages from C contacts over four channel kinds (three channels
of each kind, like a company with several mailboxes and numbers). Each contact writes on
two or three channels of its kind; a third of the messages are replies into a
conversation that already exists (emails carry In-Reply-To; each web form submission
starts its own conversation, as the registry declares). Messages arrive from many
concurrent senders, as webhooks and mailbox fetches do, and go through
`Ingestor.ingest`, which groups concurrent arrivals into one transaction.

    python -m bench.ingest                          # both databases
    python -m bench.ingest --database postgresql --postgres-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import spec_for
from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    RawPayload,
    SenderHandle,
    ThreadHints,
)
from migrations.upgrade import upgrade
from timeline.crypto import SecretBox
from timeline.db import create_engine, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import Channel, Contact, Conversation, Message

KINDS = {
    "email": (
        IdentityKind.EMAIL,
        {
            "imap_host": "127.0.0.1",
            "imap_username": "u",
            "imap_password": "p",
            "smtp_host": "127.0.0.1",
            "from_address": "support@example.com",
        },
    ),
    "sms": (
        IdentityKind.PHONE,
        {
            "account_sid": "AC" + "0" * 32,
            "auth_token": "t",
            "phone_number": "+14155550199",
            "default_region": "US",
        },
    ),
    "telegram": (IdentityKind.TELEGRAM, {"bot_token": "123456:" + "A" * 35}),
    "webform": (IdentityKind.WEBFORM, {}),
}
CHANNELS_PER_KIND = 3


@dataclass(frozen=True)
class Workload:
    """The messages in arrival order, partitioned by contact, and what the result must be."""

    lanes: list[list[Inbound]]
    messages: int
    contacts: int
    conversations: int


def build_workload(
    channels: dict[str, list[uuid.UUID]], messages: int, contacts: int, lanes: int, seed: int
) -> Workload:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kinds = list(KINDS)
    events: list[
        tuple[float, int, str, uuid.UUID, bool]
    ] = []  # time, contact, kind, channel, reply
    pairs: list[tuple[int, str, uuid.UUID, float]] = []
    new_target = messages - messages // 3
    # Two or three channels per contact so that new conversations number two thirds.
    per_contact = new_target / contacts
    for contact in range(contacts):
        kind = kinds[contact % len(kinds)]
        count = 3 if rng.random() < per_contact - 2 else 2
        for channel in rng.sample(channels[kind], count):
            t = rng.random()
            pairs.append((contact, kind, channel, t))
            events.append((t, contact, kind, channel, False))
    for _ in range(messages - len(events)):
        contact, kind, channel, t0 = rng.choice(pairs)
        events.append((t0 + rng.random() * (1 - t0), contact, kind, channel, True))
    events.sort()

    lane_lists: list[list[Inbound]] = [[] for _ in range(lanes)]
    last_id: dict[tuple[int, uuid.UUID], str] = {}
    for n, (t, contact, kind, channel, _reply) in enumerate(events):
        ident_kind = KINDS[kind][0]
        sender = {
            IdentityKind.EMAIL: f"Customer.{contact}@Example.com",
            IdentityKind.PHONE: f"+1 (415) 6{contact // 10000 % 100:02d}-{contact % 10000:04d}",
            IdentityKind.TELEGRAM: str(100000 + contact),
            IdentityKind.WEBFORM: f"visitor-{contact}",
        }[ident_kind]
        message_id = f"<m{n}.{contact}@example.com>" if kind == "email" else None
        previous = last_id.get((contact, channel))
        hints = ThreadHints(
            message_id=message_id,
            in_reply_to=previous,
            references=(previous,) if previous else (),
            subject=f"Question {contact}" if kind == "email" else None,
            chat_id=str(100000 + contact) if kind == "telegram" else None,
        )
        if message_id:
            last_id[(contact, channel)] = message_id
        text = f"Message {n} from customer {contact}. " * 4
        lane_lists[contact % lanes].append(
            Inbound(
                channel_id=ChannelId(str(channel)),
                external_id=ExternalId(f"ext-{n}"),
                sender=SenderHandle(ident_kind, sender, f"Customer {contact}"),
                text=text,
                sent_at=start + timedelta(seconds=t * 86400),
                thread=hints,
                raw=RawPayload("text/plain", text.encode()),
            )
        )
    # Every web form submission starts its own conversation (connectors/registry.py);
    # the other kinds thread a contact's messages on a channel into one.
    conversations = sum(1 for pair in pairs if pair[1] != "webform") + sum(
        1 for event in events if event[2] == "webform"
    )
    return Workload(lane_lists, len(events), contacts, conversations)


async def prepare_database(
    url: str, box: SecretBox
) -> tuple[AsyncEngine, dict[str, list[uuid.UUID]]]:
    engine = create_engine(url, pool_size=10)
    await upgrade(engine)
    sessions = session_factory(engine)
    channels: dict[str, list[uuid.UUID]] = {}
    async with sessions() as session, session.begin():
        for kind, (_ident, config) in KINDS.items():
            for n in range(CHANNELS_PER_KIND):
                validated = spec_for(kind).config.model_validate(config)
                channel = Channel(
                    kind=kind,
                    name=f"{kind} {n}",
                    config_encrypted=box.encrypt(validated.model_dump(mode="json")),
                )
                session.add(channel)
                await session.flush()
                channels.setdefault(kind, []).append(channel.id)
    return engine, channels


async def run_one(label: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    box = SecretBox("bench-secret-key-" + "x" * 32)
    engine, channels = await prepare_database(url, box)
    workload = build_workload(channels, args.messages, args.contacts, args.concurrency, args.seed)
    sessions = session_factory(engine)
    with tempfile.TemporaryDirectory() as data_dir:
        ingestor = Ingestor(
            sessions,
            InProcessBus(),
            reopen_window=timedelta(days=7),
            data_dir=Path(data_dir),
            secret_box=box,
            max_batch=args.batch,
            workers=args.workers,
        )
        await ingestor.start()
        latencies: list[float] = []

        async def lane(items: list[Inbound]) -> None:
            for item in items:
                began = time.perf_counter()
                result = await ingestor.ingest(item)
                latencies.append(time.perf_counter() - began)
                if result.status != "created":
                    raise SystemExit(f"unexpected {result.status} for {item.external_id}")

        began = time.perf_counter()
        await asyncio.gather(*(lane(items) for items in workload.lanes))
        elapsed = time.perf_counter() - began
        await ingestor.close()
    async with sessions() as session:
        counts = {
            "messages": await session.scalar(select(func.count()).select_from(Message)),
            "contacts": await session.scalar(select(func.count()).select_from(Contact)),
            "conversations": await session.scalar(select(func.count()).select_from(Conversation)),
        }
    await engine.dispose()
    expected = {
        "messages": workload.messages,
        "contacts": workload.contacts,
        "conversations": workload.conversations,
    }
    if counts != expected:
        raise SystemExit(f"{label}: stored {counts}, expected {expected}")
    latencies.sort()
    figures = {
        "rate": workload.messages / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "seconds": elapsed,
    }
    print(
        f"{label:<11} {workload.messages} messages, {counts['contacts']} contacts, "
        f"{counts['conversations']} conversations in {elapsed:.2f}s: "
        f"{figures['rate']:.0f} messages/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms per message"
    )
    return figures


async def fresh_postgres_database(server_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        # The figures mean little without knowing whether commits were durable.
        settings = [
            f"{setting}={await conn.fetchval(f'SHOW {setting}')}"
            for setting in ("fsync", "synchronous_commit", "full_page_writes")
        ]
        version = await conn.fetchval("SHOW server_version")
        print(f"PostgreSQL server: {version}, {', '.join(settings)}")
    finally:
        await conn.close()
    return server_url.rsplit("/", 1)[0] + "/" + name


async def main_async(args: argparse.Namespace) -> int:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.database in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            results["sqlite"] = await run_one("SQLite", url, args)
        if args.database in ("postgresql", "both"):
            server = None
            server_url = args.postgres_url
            if server_url is None:
                from tests.services import Postgres, free_port

                server = Postgres(Path(tmp) / "pg", free_port(), durable=True)
                # initdb runs as the postgres user, which must reach into the folder.
                await asyncio.to_thread(os.chmod, tmp, 0o755)
                await asyncio.to_thread(server.start)
                server_url = server.url
            try:
                url = await fresh_postgres_database(server_url)
                results["postgresql"] = await run_one("PostgreSQL", url, args)
            finally:
                if server is not None:
                    server.stop()
    parts = [
        f"{db}_{key}={value:.1f}"
        for db, figs in results.items()
        for key, value in figs.items()
        if key != "seconds"
    ]
    print(
        f"RESULT name=ingest messages={args.messages} concurrency={args.concurrency} "
        + " ".join(parts)
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--postgres-url",
        help="server to create a scratch database on; "
        "default: start a private durable PostgreSQL on 127.0.0.1",
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="concurrent senders (each owns a share of the contacts)",
    )
    parser.add_argument("--batch", type=int, default=200, help="largest group commit")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="concurrent group commits (default: 1 on SQLite, 2 on PostgreSQL)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
