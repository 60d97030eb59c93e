"""The email channel's throughput: the parser, and a whole mailbox imported over IMAP.

(a) The parser against the standard library's bare parse of the same corpus
    (bench/email_parser.py): target, our parse takes at most twice the bare parse's time.
(b) A mailbox of N messages (the same realistic corpus: plain, HTML, multipart with
    attachments, replies; ~17 KB on average) read from a real Dovecot over IMAP and stored
    in PostgreSQL by the real path: the connector runtime builds the email connector,
    which fetches in batches, parses, and hands each batch to the Ingestor's group commit
    before it advances its UID cursor. Reported: messages per second from the first fetch
    to the last commit, and this process's resident memory at each fifth of the import,
    which must stay flat as the mailbox grows (the connector streams; nothing holds the
    whole mailbox). Target: 250 messages/s (5x django-helpdesk's ~50/s on this machine).

    python -m bench.email
    python -m bench.email --messages 5000 --postgres-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, select

from bench.email_corpus import build_corpus
from bench.email_parser import measure_parser
from bench.ingest import fresh_postgres_database
from migrations.upgrade import upgrade
from timeline.crypto import SecretBox
from timeline.db import create_engine, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import Channel, Message
from web.runtime import ChannelRuntime

SECRET = "bench-email-secret-key-0123456789abcdef"
USER = "bench"
PASSWORD = "bench-password"


def rss_mib() -> float:
    """This process's resident memory now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def fill_mailbox(port: int, corpus: Sequence[bytes], messages: int) -> None:
    """APPEND `messages` mails (the corpus repeated, each with a Message-ID of its own)."""
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=60)
    client.login(USER, PASSWORD)
    try:
        batch: list[bytes] = []
        for number in range(messages):
            raw = corpus[number % len(corpus)]
            # Repeats of the corpus must be distinct mail, or ingestion rightly dedupes them.
            raw = raw.replace(b"Message-ID: <", f"Message-ID: <r{number}.".encode(), 1)
            batch.append(raw)
            if len(batch) == 100:
                client.multiappend("INBOX", batch)
                batch = []
        if batch:
            client.multiappend("INBOX", batch)
    finally:
        client.logout()


async def import_mailbox(url: str, port: int, messages: int, data_dir: Path) -> dict[str, float]:
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    box = SecretBox(SECRET)
    config = {
        "imap_host": "127.0.0.1",
        "imap_port": port,
        "imap_security": "none",
        "imap_username": USER,
        "imap_password": PASSWORD,
        "smtp_host": "127.0.0.1",
        "from_address": "support@example.com",
    }
    channel = Channel(kind="email", name="bench", config_encrypted=box.encrypt(config))
    async with sessions() as session, session.begin():
        session.add(channel)
    bus = InProcessBus()
    ingestor = Ingestor(
        sessions, bus, reopen_window=timedelta(days=7), data_dir=data_dir, secret_box=box
    )
    await ingestor.start()
    runtime = ChannelRuntime(
        sessions=sessions,
        box=box,
        ingestor=ingestor,
        bus=bus,
        connectors={},
        receive=True,
        holder=f"bench:{os.getpid()}",
    )
    marks = [messages * k // 5 for k in range(1, 6)]
    memory: list[float] = []
    started = time.perf_counter()
    await runtime.reload()
    stored = 0
    try:
        while stored < messages:
            await asyncio.sleep(0.25)
            async with sessions() as session:
                stored = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(Message.channel_id == channel.id)
                    )
                    or 0
                )
            while marks and stored >= marks[0]:
                memory.append(rss_mib())
                print(f"  {marks.pop(0):6d} stored  rss {memory[-1]:7.1f} MiB", flush=True)
        elapsed = time.perf_counter() - started
    finally:
        await runtime.close()
        await ingestor.close()
        await engine.dispose()
    return {
        "seconds": elapsed,
        "rate": messages / elapsed,
        "rss_first_mib": memory[0],
        "rss_last_mib": memory[-1],
        "rss_growth_mib": memory[-1] - memory[0],
    }


async def main_async(args: argparse.Namespace) -> int:
    corpus = build_corpus(args.corpus, args.seed)
    size = sum(len(raw) for raw in corpus)
    print(f"corpus: {len(corpus)} messages, {size / len(corpus) / 1024:.1f} KiB average")

    print("(a) parser, CPU seconds, best of", args.rounds)
    parser = measure_parser(corpus, args.rounds)
    print(
        f"  parse_email {parser['ours_rate']:.0f} msg/s, bare compat32 parse "
        f"{parser['compat32_rate']:.0f} msg/s: {parser['ratio_vs_compat32']:.2f}x its time "
        "(target <= 2.00x)"
    )

    from tests.services import Dovecot, Postgres, free_port

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # The postgres and dovecot users must reach their folders inside.
        await asyncio.to_thread(root.chmod, 0o755)
        dovecot = Dovecot(root / "dovecot", free_port())
        postgres = None
        await asyncio.to_thread(dovecot.start)
        try:
            dovecot.add_user(USER, PASSWORD)
            server_url = args.postgres_url
            if server_url is None:
                postgres = Postgres(root / "pg", free_port(), durable=True)
                await asyncio.to_thread(postgres.start)
                server_url = postgres.url
            url = await fresh_postgres_database(server_url)
            print(f"(b) filling the mailbox with {args.messages} messages ...", flush=True)
            await asyncio.to_thread(fill_mailbox, dovecot.port, corpus, args.messages)
            print("    importing over IMAP into PostgreSQL:", flush=True)
            result = await import_mailbox(url, dovecot.port, args.messages, root / "data")
        finally:
            if postgres is not None:
                await asyncio.to_thread(postgres.stop)
            await asyncio.to_thread(dovecot.stop)
    print(
        f"  {args.messages} messages in {result['seconds']:.1f} s: {result['rate']:.0f} msg/s "
        "(target >= 250); resident memory "
        f"{result['rss_first_mib']:.0f} MiB at the first fifth, "
        f"{result['rss_last_mib']:.0f} MiB at the end"
    )
    print(
        f"RESULT name=email messages={args.messages} "
        f"parse_rate={parser['ours_rate']:.1f} compat32_rate={parser['compat32_rate']:.1f} "
        f"parse_ratio={parser['ratio_vs_compat32']:.2f} "
        f"import_rate={result['rate']:.1f} import_seconds={result['seconds']:.1f} "
        f"rss_first_mib={result['rss_first_mib']:.1f} rss_last_mib={result['rss_last_mib']:.1f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.email",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=5000, help="mails in the mailbox")
    parser.add_argument("--corpus", type=int, default=2000, help="distinct corpus messages")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="parser: best of this many")
    parser.add_argument(
        "--postgres-url",
        help="server to create a scratch database on; "
        "default: start a private durable PostgreSQL on 127.0.0.1",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
