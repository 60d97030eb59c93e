"""Webhook throughput and latency: Twilio SMS and Telegram updates into PostgreSQL.

A real `switchboard web` process (the HTTP role: webhooks are answered only after the
message is committed) on a durable private PostgreSQL, driven from this process over
loopback by a load generator that signs every Twilio request (X-Twilio-Signature) and
sends Telegram's secret token, half SMS and half Telegram, from many senders:

(a) throughput: N messages as fast as C concurrent connections take them;
(b) latency at a fixed rate (default 300 messages/s, open loop: requests start on
    schedule whether or not earlier ones have been answered), p50 / p99 / max.

Targets (issue 7): at least 800 messages/s per process; p99 under 50 ms at 300/s.

    python -m bench.webhooks
    python -m bench.webhooks --messages 6000 --rate 300 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from bench.ingest import fresh_postgres_database
from migrations.upgrade import upgrade
from timeline.crypto import SecretBox
from timeline.db import create_engine, session_factory
from timeline.models import Channel, Message

SECRET = "bench-webhooks-secret-key-0123456789abcdef"
ACCOUNT = "AC" + "2" * 32
AUTH_TOKEN = "bench-twilio-auth-token"
OUR_NUMBER = "+14155550199"
BOT_TOKEN = "123456789:" + "B" * 35
TG_SECRET = "bench-telegram-secret-token"
SENDERS = 500


class Target:
    """The web process's two webhook endpoints, and how to sign for them."""

    def __init__(self, base: str, sms_channel: uuid.UUID, tg_channel: uuid.UUID) -> None:
        self.base = base
        self.sms_path = f"/webhooks/twilio/{sms_channel}"
        self.tg_path = f"/webhooks/telegram/{tg_channel}"
        self._validator = RequestValidator(AUTH_TOKEN)
        self._taken = 0

    def take(self, count: int) -> range:
        """Message numbers never used before: each message is new (Telegram message ids
        are per chat, so a number used twice would be a duplicate, rightly dropped)."""
        numbers = range(self._taken, self._taken + count)
        self._taken += count
        return numbers

    def request(self, number: int, run: str) -> tuple[str, bytes, dict[str, str]]:
        """Path, body and headers of the `number`th message (even: SMS, odd: Telegram)."""
        sender = number % SENDERS
        if number % 2 == 0:
            sid = f"SM{run}{number:024d}"[:34]
            params = [
                ("MessageSid", sid),
                ("SmsMessageSid", sid),
                ("AccountSid", ACCOUNT),
                ("From", f"+1415555{sender:04d}"),
                ("To", OUR_NUMBER),
                ("Body", f"Message {number}: where is my order?"),
                ("NumMedia", "0"),
                ("ApiVersion", "2010-04-01"),
            ]
            signature = self._validator.compute_signature(self.base + self.sms_path, dict(params))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            }
            return self.sms_path, urlencode(params).encode(), headers
        update = {
            "update_id": number,
            "message": {
                "message_id": number,
                "from": {"id": 10_000 + sender, "is_bot": False, "first_name": f"User{sender}"},
                "chat": {"id": 10_000 + sender, "type": "private", "first_name": f"User{sender}"},
                "date": int(time.time()),
                "text": f"Message {number} ({run}): hello!",
            },
        }
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
        }
        return self.tg_path, json.dumps(update).encode(), headers


async def post(session: aiohttp.ClientSession, target: Target, number: int, run: str) -> float:
    path, body, headers = target.request(number, run)
    started = time.perf_counter()
    async with session.post(target.base + path, data=body, headers=headers) as answer:
        await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}: {await answer.text()}")
    return time.perf_counter() - started


async def throughput(target: Target, messages: int, concurrency: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(target.take(messages))
        run = uuid.uuid4().hex[:6]

        async def lane() -> None:
            for number in queue:
                await post(session, target, number, run)

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rate": messages / elapsed}


async def fixed_rate(target: Target, rate: float, seconds: float) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=0)
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        run = uuid.uuid4().hex[:6]
        total = int(rate * seconds)
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1
        tasks = []
        for index, number in enumerate(target.take(total)):
            delay = start + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, target, number, run)))
        latencies = list(await asyncio.gather(*tasks))
    # Even numbers are SMS, odd ones Telegram (Target.request).
    sms, telegram = sorted(latencies[0::2]), sorted(latencies[1::2])
    ordered = sorted(latencies)
    return {
        "sent": float(total),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": _p99(ordered) * 1000,
        "max_ms": ordered[-1] * 1000,
        "sms_p99_ms": _p99(sms) * 1000,
        "telegram_p99_ms": _p99(telegram) * 1000,
    }


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def prepare(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        box = SecretBox(SECRET)
        sms = Channel(
            kind="sms",
            name="bench sms",
            config_encrypted=box.encrypt(
                {
                    "account_sid": ACCOUNT,
                    "auth_token": AUTH_TOKEN,
                    "phone_number": OUR_NUMBER,
                    "default_region": "US",
                    "api_base_url": "http://127.0.0.1:9",
                }
            ),
        )
        tg = Channel(
            kind="telegram",
            name="bench telegram",
            config_encrypted=box.encrypt(
                {
                    "bot_token": BOT_TOKEN,
                    "mode": "webhook",
                    "secret_token": TG_SECRET,
                    "api_base_url": "http://127.0.0.1:9",
                }
            ),
        )
        async with session_factory(engine)() as session, session.begin():
            session.add_all([sms, tg])
        return sms.id, tg.id
    finally:
        await engine.dispose()


async def stored(url: str) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(Message)) or 0)
    finally:
        await engine.dispose()


def start_web(url: str, port: int, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        {
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_SECRET_KEY": SECRET,
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SWITCHBOARD_DATA_DIR": str(data_dir),
            "SWITCHBOARD_ADMIN_PASSWORD": "bench-admin-password",
            "SWITCHBOARD_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
        }
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "web.cli", "web"], env=env, stdout=out, stderr=out
        )


async def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.poll() is not None:
                output = await asyncio.to_thread(log.read_text)
                raise RuntimeError(f"switchboard web exited: {output[-2000:]}")
            try:
                async with session.get(base + "/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("switchboard web did not become healthy")


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
        web_process = None
        try:
            url = await fresh_postgres_database(server_url)
            sms_channel, tg_channel = await prepare(url)
            port = free_port()
            log = Path(os.environ.get("BENCH_SERVER_LOG", root / "web.log"))
            web_process = start_web(url, port, root / "data", log)
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base, web_process, log)
            target = Target(base, sms_channel, tg_channel)
            # Warm up: connections, prepared statements, the ingestor's channel cache.
            await throughput(target, 200, 8)
            print(f"(a) {args.messages} messages, {args.concurrency} connections ...", flush=True)
            burst = await throughput(target, args.messages, args.concurrency)
            print(f"    {burst['rate']:.0f} messages/s ({burst['seconds']:.1f} s)", flush=True)
            print(f"(b) {args.rate:g} messages/s for {args.seconds:g} s ...", flush=True)
            steady = await fixed_rate(target, args.rate, args.seconds)
            print(
                f"    p50 {steady['p50_ms']:.1f} ms, p99 {steady['p99_ms']:.1f} ms, "
                f"max {steady['max_ms']:.1f} ms (p99 SMS {steady['sms_p99_ms']:.1f} ms, "
                f"Telegram {steady['telegram_p99_ms']:.1f} ms)",
                flush=True,
            )
            total = await stored(url)
            expected = 200 + args.messages + int(steady["sent"])
            print(f"stored {total} messages (expected {expected})")
            if total != expected:
                raise RuntimeError(f"stored {total} messages, expected {expected}")
        finally:
            if web_process is not None:
                web_process.terminate()
                web_process.wait(timeout=30)
            if server is not None:
                await asyncio.to_thread(server.stop)
    print(
        f"RESULT name=webhooks messages={args.messages} concurrency={args.concurrency} "
        f"rate_msgs={burst['rate']:.1f} fixed_rate={args.rate:g} "
        f"p50_ms={steady['p50_ms']:.1f} p99_ms={steady['p99_ms']:.1f} "
        f"max_ms={steady['max_ms']:.1f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=6000, help="throughput phase")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=300.0, help="fixed-rate phase, per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="fixed-rate phase length")
    parser.add_argument(
        "--postgres-url",
        help="server to create a scratch database on; "
        "default: start a private durable PostgreSQL on 127.0.0.1",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
