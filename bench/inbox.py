"""The shared inbox on PostgreSQL over a year of history (issue 9).

A private durable PostgreSQL and a private Redis (both on 127.0.0.1) are started, a
database is filled with a generated history (bench/inbox_data.py: by default 100,000
conversations and 1,000,000 messages over 50 agents), and real `switchboard web` and
`switchboard worker` processes run on it with Redis. Then, over loopback:

1. an agent's conversation list: GET /api/v1/conversations as an agent who is a member
   of three channels uses it (open and mine, open and unassigned, open on a channel,
   open with a label, everything; last activity first, 25 a page, and a second page);
2. opening a conversation of 200 messages: GET /conversations/{id}, then its messages
   page after page (the default page size, 50) until the last;
3. the 90-day summary report grouped by agent (GET /reports/summary, a manager);
series. the same 90 days over time, as the reports screen loads them (GET
   /reports/series, a manager, Europe/Berlin): by day (90 buckets) and by week;
4. fan-out: 500 websockets (50 agents x 10, bearer tokens) on GET /ws; inbound SMS
   messages ingested by this process (timeline.ingest.Ingestor, RedisBus on the same
   Redis): from `ingest` returning to each socket's receipt of its message.created;
5. replies: POST /conversations/{id}/messages, sent by the worker process (woken through
   the bus) to a Twilio stand-in in this process: from the 201 answer to the stand-in's
   receipt of the request.

Targets (issue 9): 1 and 2 p99 < 50 ms; 3 < 500 ms; 4 p99 < 200 ms; 5 p99 < 100 ms;
series p99 < 500 ms (the summary report's budget: the screen asks for both).

    python -m bench.inbox
    python -m bench.inbox --parts 3,series --keep --postgres-url <a server's URL>
    python -m bench.inbox --conversations 20000 --messages 200000 --repeat 50
    python -m bench.inbox --keep --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import inbox_live
from bench.inbox_data import People, Size, generate, people_of, sms_config
from bench.inbox_live import WsUnavailable, as_text, summary
from migrations.upgrade import upgrade
from timeline.crypto import SecretBox
from timeline.db import create_engine

SECRET = "bench-inbox-secret-key-0123456789abcdef"
PAGE = 25  # the agent's conversation list
TARGETS = {
    "list": 50.0,
    "open": 50.0,
    "report": 500.0,
    "series": 500.0,
    "fanout": 200.0,
    "reply": 100.0,
}
KEEP_PREFIX = "bench_inbox_keep"


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# --- processes -------------------------------------------------------------------------


def start_process(
    role: str, url: str, redis_url: str, port: int, data_dir: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`switchboard web` (on `port`) or `switchboard worker` on the database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(
        {
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_REDIS_URL": redis_url,
            "SWITCHBOARD_SECRET_KEY": SECRET,
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SWITCHBOARD_DATA_DIR": str(data_dir),
            "SWITCHBOARD_LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
        }
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "web.cli", role], env=env, stdout=out, stderr=out
        )


async def wait_ready(process: subprocess.Popen[bytes], log: Path, base: str | None) -> None:
    """Until the web process answers /healthz, or the worker says it runs."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(
                    f"{log.name}: exited: {(await asyncio.to_thread(log.read_text))[-2000:]}"
                )
            if base is None:
                if "worker is running" in await asyncio.to_thread(log.read_text):
                    return
            else:
                try:
                    async with session.get(base + "/healthz") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{log.name}: not ready after 60 s")


# --- the database ----------------------------------------------------------------------


async def database(server_url: str, size: Size, keep: bool) -> tuple[str, People, bool]:
    """A filled database: a fresh one, or with --keep the one kept for this size (filled
    now if it is not there yet). Returns its URL, who is who, and whether it was reused."""
    base = server_url.rsplit("/", 1)[0]
    name = (
        f"{KEEP_PREFIX}_{size.conversations}_{size.messages}_{size.agents}"
        if keep
        else f"bench_inbox_{uuid.uuid4().hex[:10]}"
    )
    url = f"{base}/{name}"
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and keep:
            connection = await asyncpg.connect(_dsn(url))
            try:
                filled = await connection.fetchval("SELECT count(*) FROM conversations")
                if filled and filled >= size.conversations:
                    print(f"reusing the kept database {name} ({filled} conversations)")
                    people = await people_of(connection)
                    await _upgrade(url)  # migrations added since it was kept
                    return url, people, True
            finally:
                await connection.close()
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        settings = [
            f"{s}={await admin.fetchval(f'SHOW {s}')}"
            for s in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
        ]
        version = await admin.fetchval("SHOW server_version")
        print(f"PostgreSQL server: {version}, {', '.join(settings)}")
    finally:
        await admin.close()
    await _upgrade(url)
    now = datetime.now(UTC).replace(microsecond=0)
    print(
        f"generating {size.conversations} conversations, {size.messages} messages, "
        f"{size.agents} agents ...",
        flush=True,
    )
    started = time.perf_counter()
    connection = await asyncpg.connect(_dsn(url))
    try:
        people, sizes = await generate(connection, size, now, SecretBox(SECRET).encrypt)
    finally:
        await connection.close()
    print(f"    generated in {time.perf_counter() - started:.1f} s (COPY, then VACUUM ANALYZE):")
    print("    " + ", ".join(f"{table} {count}" for table, count in sizes.items()), flush=True)
    return url, people, False


async def _upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def point_sms_at(url: str, people: People, api_base_url: str) -> None:
    """The SMS channels send to the stand-in of this run."""
    box = SecretBox(SECRET)
    connection = await asyncpg.connect(_dsn(url))
    try:
        for number, channel_id in enumerate(people.sms_channel_ids):
            await connection.execute(
                "UPDATE channels SET config_encrypted = $1 WHERE id = $2",
                box.encrypt(sms_config(api_base_url, number)),
                channel_id,
            )
    finally:
        await connection.close()


async def tokens(url: str, user_ids: list[uuid.UUID]) -> list[str]:
    """A new API token for each user."""
    from inbox.users import add_token
    from timeline.db import session_factory

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return [add_token(session, user_id, "bench.inbox")[1] for user_id in user_ids]
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Picks:
    """Rows the measurements act on."""

    agent: uuid.UUID
    agent_channels: list[uuid.UUID]
    label: str
    heavy: list[uuid.UUID]  # open conversations of 200 messages the agent sees
    reply_to: list[tuple[uuid.UUID, uuid.UUID]]  # open SMS conversations and their channels
    data_end: datetime


async def picks(url: str, people: People) -> Picks:
    connection = await asyncpg.connect(_dsn(url))
    try:
        agent = people.agent_ids[0]
        channels = [
            row["channel_id"]
            for row in await connection.fetch(
                "SELECT channel_id FROM channel_members WHERE user_id = $1 UNION "
                "SELECT ct.channel_id FROM channel_teams ct JOIN team_members tm "
                "ON tm.team_id = ct.team_id WHERE tm.user_id = $1",
                agent,
            )
        ]
        label = await connection.fetchval(
            "SELECT label FROM conversation_labels GROUP BY label ORDER BY count(*) DESC LIMIT 1"
        )
        heavy = [
            row["id"]
            for row in await connection.fetch(
                "SELECT id FROM conversations WHERE message_count = 200 AND channel_id = ANY($1) "
                "ORDER BY id",
                channels,
            )
        ]
        # Open SMS conversations, taking the channels in turn.
        by_channel: dict[uuid.UUID, list[uuid.UUID]] = {}
        for row in await connection.fetch(
            "SELECT id, channel_id FROM conversations WHERE status = 'open' "
            "AND channel_id = ANY($1) AND message_count < 200 ORDER BY last_activity_at DESC",
            people.sms_channel_ids,
        ):
            by_channel.setdefault(row["channel_id"], []).append(row["id"])
        reply_to = [
            (conversation_id, channel_id)
            for rank in range(40)
            for channel_id, ids in sorted(by_channel.items())
            if rank < len(ids)
            for conversation_id in [ids[rank]]
        ]
        data_end = await connection.fetchval("SELECT max(created_at) FROM conversations")
    finally:
        await connection.close()
    return Picks(agent, channels, label, heavy, reply_to, data_end)


# --- reads over HTTP -------------------------------------------------------------------


async def _get(session: aiohttp.ClientSession, url: str, params: dict[str, Any]) -> Any:
    async with session.get(url, params=params) as answer:
        body = await answer.json()
        if answer.status != 200:
            raise RuntimeError(f"GET {url} {params}: {answer.status} {body}")
        return body


async def _timed(action: Awaitable[Any]) -> tuple[float, Any]:
    """How long `action` took in ms, and its result."""
    started = time.perf_counter()
    result = await action
    return (time.perf_counter() - started) * 1000, result


def list_cases(pick: Picks) -> list[tuple[str, dict[str, Any]]]:
    """The conversation list as an agent uses it."""
    me = str(pick.agent)
    channel = str(pick.agent_channels[0])
    return [
        ("open, mine", {"status": "open", "assignee": me}),
        ("open, unassigned", {"status": "open", "assignee": "none"}),
        ("open, one channel", {"status": "open", "channel_id": channel}),
        ("open, label", {"status": "open", "label": pick.label}),
        ("open, all visible", {"status": "open"}),
        ("everything", {}),
        ("mine, any status", {"assignee": me}),
    ]


async def conversation_lists(
    base: str, token: str, pick: Picks, repeat: int
) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/v1/conversations"
    results: dict[str, list[float]] = {}
    async with aiohttp.ClientSession(headers=headers) as session:
        for round_ in range(repeat + 3):  # three warm-up rounds
            for label, filters in list_cases(pick):
                params = {**filters, "limit": PAGE}
                elapsed, first = await _timed(_get(session, url, params))
                if round_ >= 3:
                    results.setdefault(label, []).append(elapsed)
                if first.get("next_cursor"):
                    following = {**params, "cursor": first["next_cursor"]}
                    elapsed, _ = await _timed(_get(session, url, following))
                    if round_ >= 3:
                        results.setdefault(label + ", page 2", []).append(elapsed)
    return {label: summary(values) for label, values in results.items()}


async def open_conversations(
    base: str, token: str, pick: Picks, repeat: int
) -> dict[str, dict[str, float]]:
    """Open a 200-message conversation as the UI would: the conversation, then every
    page of its messages at the default page size; and, for comparison, in one page."""
    headers = {"Authorization": f"Bearer {token}"}
    whole: list[float] = []
    single: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:

        async def open_paged(conversation_id: uuid.UUID) -> None:
            conversation = await _get(session, f"{base}/api/v1/conversations/{conversation_id}", {})
            params: dict[str, Any] = {}
            seen = 0
            while True:
                page = await _get(
                    session, f"{base}/api/v1/conversations/{conversation_id}/messages", params
                )
                seen += len(page["items"])
                if not page["next_cursor"]:
                    break
                params = {"cursor": page["next_cursor"]}
            if seen != conversation["message_count"]:
                raise RuntimeError(f"read {seen} of {conversation['message_count']} messages")

        async def open_single(conversation_id: uuid.UUID) -> None:
            await _get(session, f"{base}/api/v1/conversations/{conversation_id}", {})
            page = await _get(
                session, f"{base}/api/v1/conversations/{conversation_id}/messages", {"limit": 200}
            )
            if len(page["items"]) != 200:
                raise RuntimeError(f"one page held {len(page['items'])} messages")

        for index in range(repeat + 3):
            conversation_id = pick.heavy[index % len(pick.heavy)]
            elapsed, _ = await _timed(open_paged(conversation_id))
            elapsed_single, _ = await _timed(open_single(conversation_id))
            if index >= 3:
                whole.append(elapsed)
                single.append(elapsed_single)
    return {"paged": summary(whole), "single": summary(single)}


async def report(base: str, token: str, pick: Picks, repeat: int) -> dict[str, float]:
    """The 90 days before the data's last day, grouped by agent."""
    last = (pick.data_end - timedelta(days=1)).date()
    params = {
        "from": (last - timedelta(days=89)).isoformat(),
        "to": last.isoformat(),
        "timezone": "Europe/Berlin",
        "group_by": "agent",
    }
    times: list[float] = []
    body: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for index in range(repeat + 1):  # the first one warms up
            elapsed, body = await _timed(_get(session, f"{base}/api/v1/reports/summary", params))
            if index:
                times.append(elapsed)
    totals = body["totals"]
    print(
        f"    {params['from']}..{params['to']}: {len(body['groups'])} groups, "
        f"{totals['conversations_opened']} opened, {totals['messages_in']} in, "
        f"{totals['messages_out']} out",
        flush=True,
    )
    return summary(times)


def _last_90_days(pick: Picks) -> dict[str, str]:
    last = (pick.data_end - timedelta(days=1)).date()
    return {
        "from": (last - timedelta(days=89)).isoformat(),
        "to": last.isoformat(),
        "timezone": "Europe/Berlin",
    }


async def report_series(
    base: str, token: str, pick: Picks, repeat: int
) -> dict[str, dict[str, float]]:
    """The 90 days before the data's last day over time, by day and by week, alternated
    (so that both see the same moments of a noisy machine)."""
    period = _last_90_days(pick)
    times: dict[str, list[float]] = {"day": [], "week": []}
    bodies: dict[str, dict[str, Any]] = {}
    url = f"{base}/api/v1/reports/series"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for index in range(repeat + 1):  # the first round warms up
            for interval, values in times.items():
                params = {**period, "interval": interval}
                elapsed, bodies[interval] = await _timed(_get(session, url, params))
                if index:
                    values.append(elapsed)
    for interval, body in bodies.items():
        buckets = body["buckets"]
        # The buckets' counts add up to the period's (spans and messages fall in one
        # bucket each): a check that the series covered the whole period once.
        opened = sum(b["totals"]["conversations_opened"] for b in buckets)
        replies = sum(b["totals"]["reply"]["wall"]["count"] for b in buckets)
        print(
            f"    by {interval}: {len(buckets)} buckets, {opened} opened, {replies} replies timed",
            flush=True,
        )
    return {interval: summary(values) for interval, values in times.items()}


# --- the measurements -------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every measurement may use."""

    args: argparse.Namespace
    bases: list[str]
    agent_tokens: list[str]
    manager_token: str
    admin_token: str
    people: People
    pick: Picks
    url: str
    redis_url: str
    root: Path
    api: inbox_live.TimedStandin


async def baseline(c: Context) -> dict[str, float]:
    """What any request costs here: /healthz, and an API read of an unknown conversation
    (authentication, the agent's channels, routing, the 404)."""
    unknown = f"{c.bases[0]}/api/v1/conversations/{uuid.uuid4()}"
    health: list[float] = []
    api: list[float] = []
    headers = {"Authorization": f"Bearer {c.agent_tokens[0]}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for index in range(c.args.repeat + 3):
            started = time.perf_counter()
            async with session.get(c.bases[0] + "/healthz") as answer:
                await answer.read()
            middle = time.perf_counter()
            async with session.get(unknown) as answer:
                await answer.read()
                if answer.status != 404:
                    raise RuntimeError(f"unknown conversation: {answer.status}")
            if index >= 3:
                health.append((middle - started) * 1000)
                api.append((time.perf_counter() - middle) * 1000)
    print("0. baseline, any request:")
    print(f"    GET /healthz                 {as_text(summary(health))}")
    print(f"    GET unknown conversation     {as_text(summary(api))}", flush=True)
    return {"baseline_api_p50_ms": summary(api)["p50_ms"]}


async def part_lists(c: Context) -> dict[str, float]:
    print(
        f"1. conversation list, agent in {len(c.pick.agent_channels)} channels, "
        f"{PAGE} a page, {c.args.repeat} rounds:"
    )
    lists = await conversation_lists(c.bases[0], c.agent_tokens[0], c.pick, c.args.repeat)
    for label, values in lists.items():
        print(f"    {label:28s} {as_text(values)}", flush=True)
    return {
        "list_p50_ms": statistics.median(v["p50_ms"] for v in lists.values()),
        "list_p99_ms": max(v["p99_ms"] for v in lists.values()),
    }


async def part_open(c: Context) -> dict[str, float]:
    print(
        f"2. opening a 200-message conversation ({len(c.pick.heavy)} of them), "
        f"{c.args.repeat} times:"
    )
    opened = await open_conversations(c.bases[0], c.agent_tokens[0], c.pick, c.args.repeat)
    print(f"    conversation + 4 pages of 50  {as_text(opened['paged'])}")
    print(f"    conversation + 1 page of 200  {as_text(opened['single'])}", flush=True)
    return {
        "open_p50_ms": opened["paged"]["p50_ms"],
        "open_p99_ms": opened["paged"]["p99_ms"],
        "open_single_p99_ms": opened["single"]["p99_ms"],
    }


async def part_report(c: Context) -> dict[str, float]:
    repeat = max(5, c.args.repeat // 10)
    print(f"3. 90-day summary report by agent, {repeat} times:")
    reported = await report(c.bases[0], c.manager_token, c.pick, repeat)
    print(f"    {as_text(reported)}", flush=True)
    return {"report_p50_ms": reported["p50_ms"], "report_max_ms": reported["max_ms"]}


async def part_series(c: Context) -> dict[str, float]:
    repeat = max(5, c.args.repeat // 10)
    print(f"series. 90-day response times over time (GET /reports/series), {repeat} times:")
    measured = await report_series(c.bases[0], c.manager_token, c.pick, repeat)
    for interval, figures in measured.items():
        print(f"    by {interval:4s} {as_text(figures)}", flush=True)
    return {
        "series_day_p50_ms": measured["day"]["p50_ms"],
        "series_day_p99_ms": measured["day"]["p99_ms"],
        "series_week_p50_ms": measured["week"]["p50_ms"],
        "series_week_p99_ms": measured["week"]["p99_ms"],
    }


async def part_fanout(c: Context) -> dict[str, float]:
    print(f"4. fan-out to {c.args.sockets} websockets over {len(c.bases)} web process(es):")
    try:
        async with aiohttp.ClientSession() as session:
            await inbox_live.probe_ws(session, c.bases[0], c.agent_tokens[0])
    except WsUnavailable as err:
        print(f"    pending: {err}", flush=True)
        return {}
    per_agent = max(1, c.args.sockets // len(c.agent_tokens))
    setup = inbox_live.FanoutSetup(
        c.bases, c.agent_tokens, per_agent, c.people.shared_channel_id,
        c.args.fanout_messages, 0.2,
    )  # fmt: skip
    result = await inbox_live.fanout(setup, c.url, c.redis_url, SECRET, c.root / "data")
    print(
        f"    {int(result['sockets'])} sockets x {c.args.fanout_messages} messages: "
        f"{as_text(result)}; missing {int(result['missing'])}",
        flush=True,
    )
    return {
        "fanout_p50_ms": result["p50_ms"],
        "fanout_p99_ms": result["p99_ms"],
        "fanout_missing": result["missing"],
    }


async def part_replies(c: Context) -> dict[str, float]:
    print(f"5. replies through the worker, {c.args.replies}:")
    replied = await inbox_live.replies(
        c.bases[0], c.admin_token, c.pick.reply_to, c.api, c.args.replies
    )
    print(
        f"    first on each of {int(replied['cold_n'])} channels (cold, apart): "
        f"first {replied['cold_first_ms']:.1f} ms, max {replied['cold_max_ms']:.1f} ms; "
        f"lost {int(replied['cold_lost'])}"
    )
    print(f"    201 answer -> stand-in  {as_text(replied)}; lost {int(replied['lost'])}")
    print(
        f"    request -> stand-in     p50 {replied['from_request_p50_ms']:.1f} ms, "
        f"p99 {replied['from_request_p99_ms']:.1f} ms",
        flush=True,
    )
    return {
        "reply_p50_ms": replied["p50_ms"],
        "reply_p99_ms": replied["p99_ms"],
        "reply_cold_max_ms": replied["cold_max_ms"],
    }


PARTS: dict[str, Callable[[Context], Awaitable[dict[str, float]]]] = {
    "0": baseline,
    "1": part_lists,
    "2": part_open,
    "3": part_report,
    "series": part_series,
    "4": part_fanout,
    "5": part_replies,
}


# --- running ---------------------------------------------------------------------------


def _verdict(name: str, p99_ms: float) -> str:
    return "met" if p99_ms < TARGETS[name] else "MISSED"


async def run(args: argparse.Namespace, root: Path, server_url: str, redis_url: str) -> int:
    from tests.services import free_port

    size = Size(args.conversations, args.messages, args.agents)
    url, people, _ = await database(server_url, size, args.keep)
    pick = await picks(url, people)
    print(f"load before measuring: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    api = inbox_live.standin()
    processes: list[subprocess.Popen[bytes]] = []
    figures: dict[str, Any] = {}
    async with api:
        await point_sms_at(url, people, api.base_url)
        agent_tokens = await tokens(url, people.agent_ids)
        [manager_token, admin_token] = await tokens(url, [people.manager_id, people.admin_id])
        bases = []
        # BENCH_LOG_DIR keeps the processes' logs (BENCH_SERVER_LOG_LEVEL=INFO for more).
        logs = Path(os.environ.get("BENCH_LOG_DIR", root))
        try:
            for index in range(args.web_processes):
                port = free_port()
                log = logs / f"web{index}.log"
                processes.append(start_process("web", url, redis_url, port, root / "data", log))
                bases.append(f"http://127.0.0.1:{port}")
                await wait_ready(processes[-1], log, bases[-1])
            worker_log = logs / "worker.log"
            processes.append(start_process("worker", url, redis_url, 0, root / "data", worker_log))
            await wait_ready(processes[-1], worker_log, None)
            context = Context(
                args, bases, agent_tokens, manager_token, admin_token, people, pick, url,
                redis_url, root, api,
            )  # fmt: skip
            for part in PARTS:
                if part in args.parts:
                    figures.update(await PARTS[part](context))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                await asyncio.to_thread(process.wait, 30)
    print(f"load after measuring: {os.getloadavg()[0]:.2f} (1 min)")
    if not args.keep:
        admin = await asyncpg.connect(_dsn(server_url))
        try:
            await admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()
    judged = {"list": "list_p99_ms", "open": "open_p99_ms", "report": "report_max_ms",
              "fanout": "fanout_p99_ms", "reply": "reply_p99_ms"}  # fmt: skip
    checks = [(name, figures[key]) for name, key in judged.items() if key in figures]
    if "series_day_p99_ms" in figures:
        # Judged by the slower of the two intervals.
        checks.append(("series", max(figures["series_day_p99_ms"], figures["series_week_p99_ms"])))
    print(
        "targets: "
        + ", ".join(
            f"{name} {value:.1f} < {TARGETS[name]:.0f} ms {_verdict(name, value)}"
            for name, value in checks
        )
        + ("" if "fanout_p99_ms" in figures or "4" not in args.parts else ", fanout pending")
    )
    parts = [
        "RESULT name=inbox",
        f"conversations={args.conversations} messages={args.messages} agents={args.agents}",
        *(f"{key}={value:.1f}" for key, value in figures.items()),
    ]
    print(" ".join(parts))
    return 0


async def main_async(args: argparse.Namespace) -> int:
    from tests.services import Postgres, Redis, free_port

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        await asyncio.to_thread(root.chmod, 0o755)  # the postgres user must reach inside
        postgres = None
        server_url = args.postgres_url
        redis = Redis(root / "redis", free_port())
        await asyncio.to_thread(redis.start)
        try:
            if server_url is None:
                postgres = Postgres(root / "pg", free_port(), durable=True)
                await asyncio.to_thread(postgres.start)
                server_url = postgres.url
            return await run(args, root, server_url, redis.url)
        finally:
            if postgres is not None:
                await asyncio.to_thread(postgres.stop)
            await asyncio.to_thread(redis.stop)


def parse_parts(text: str) -> set[str]:
    """--parts: digits name the numbered parts ("012"), words the named ones; either may
    be separated by commas ("3,series")."""
    chosen: set[str] = set()
    for token in (t.strip() for t in text.split(",")):
        if token in PARTS:
            chosen.add(token)
        elif token.isdigit() and all(digit in PARTS for digit in token):
            chosen.update(token)
        else:
            raise ValueError(f"unknown part {token!r}: choose from {', '.join(PARTS)}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=100, help="rounds of reads (1, 2; 3: /10)")
    parser.add_argument("--sockets", type=int, default=500, help="4: spread over the agents")
    parser.add_argument("--fanout-messages", type=int, default=50, help="4: inbound messages")
    parser.add_argument("--replies", type=int, default=100, help="5: replies posted")
    parser.add_argument(
        "--parts",
        default="0123,series,45",
        help="which measurements, digits and names, commas between names "
        "(0: baseline, 1-5 and series as above)",
    )
    parser.add_argument("--web-processes", type=int, default=1, help="4: sockets spread over them")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated database (one per size) and reuse it next time; "
        "only useful with --postgres-url",
    )
    parser.add_argument(
        "--postgres-url",
        help="server to create the database on; "
        "default: start a private durable PostgreSQL on 127.0.0.1",
    )
    args = parser.parse_args()
    if min(args.repeat, args.sockets, args.fanout_messages, args.replies, args.web_processes) < 1:
        parser.error("counts must be at least 1")
    try:
        Size(args.conversations, args.messages, args.agents).check()
        args.parts = parse_parts(args.parts)
    except ValueError as err:
        parser.error(str(err))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
