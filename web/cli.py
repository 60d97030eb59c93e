"""The `switchboard` command line: serve, web, worker, migrate, reprocess, inspect, import,
user, token.

Configuration comes from the environment (SWITCHBOARD_*, see web/settings.py). Errors a
person can act on are printed on stderr without a traceback: exit code 2 for unusable
configuration (as argparse does for bad usage), 1 for a command that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from aiohttp import web
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from inbox.models import Role
from inbox.users import UserError, create_user, ensure_first_admin, issue_token, user_by_email
from migrations.upgrade import upgrade
from timeline.crypto import SecretBox
from timeline.db import SessionFactory, create_engine, session_factory
from timeline.events import create_bus
from timeline.ingest import Ingestor
from timeline.models import Channel, ParseStatus
from web.keys import SESSIONS_KEY, SETTINGS_KEY
from web.settings import Settings, SettingsError

logger = logging.getLogger(__name__)
# Libraries that log each request at INFO (Twilio's clients: a dozen lines of headers per
# SMS sent): heard only when debugging.
CHATTY_LOGGERS = ("twilio.http_client", "twilio.async_http_client")

PROG = "switchboard"
# In-flight requests get this long to finish on SIGTERM: below Docker's 10 s stop grace.
SHUTDOWN_TIMEOUT = 8.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class CliError(Exception):
    """A command failed for a reason the user can act on; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- helpers -------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """A database or Redis URL without its password, for printing."""
    return make_url(url).render_as_string(hide_password=True)


@contextlib.asynccontextmanager
async def _engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _ingestor(settings: Settings, sessions: SessionFactory) -> AsyncIterator[Ingestor]:
    """An Ingestor for a command. Events go on the configured bus, so running web
    processes see what the command stores."""
    bus = create_bus(settings.redis_url)
    ingestor = Ingestor(
        sessions,
        bus,
        reopen_window=timedelta(hours=settings.reopen_window_hours),
        data_dir=settings.data_dir,
        secret_box=SecretBox(settings.resolved_secret_key()),
    )
    try:
        yield ingestor
    finally:
        await ingestor.close()
        await bus.close()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _migrate(settings: Settings) -> str | None:
    """Apply the migrations; returns the revision the database is now at."""
    async with _engine(settings) as engine:
        await upgrade(engine)
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)


async def _first_admin(app: web.Application) -> str:
    """Create the first admin if there is no user yet; returns how to log in, or ""."""
    settings = app[SETTINGS_KEY]
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    async with app[SESSIONS_KEY]() as session:
        try:
            created = await ensure_first_admin(session, settings.admin_email, password)
        except UserError as err:
            raise CliError(
                f"SWITCHBOARD_ADMIN_EMAIL / SWITCHBOARD_ADMIN_PASSWORD: {err}", 2
            ) from err
    if created is None:
        return ""
    admin, generated = created
    if generated is None:
        return f" — log in as {admin.email} with the password from SWITCHBOARD_ADMIN_PASSWORD"
    return f" — log in as {admin.email} with password {generated} (shown once)"


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (instead of killing the process mid-cleanup)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _run(
    app: web.Application,
    *,
    listen: bool,
    greeting: Callable[[str], Coroutine[Any, Any, str]],
) -> int:
    """Start `app` (its cleanup_ctx; an HTTP site when `listen`), run until a signal, stop.

    `greeting(url)` runs once the app is up and returns the line to print: the first
    admin is created only then, so a generated password is never lost to a failed start.
    """
    settings = app[SETTINGS_KEY]
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            url = settings.base_url
            if listen:
                site = web.TCPSite(runner, settings.host, settings.port)
                try:
                    await site.start()
                except OSError as err:
                    raise CliError(
                        f"cannot listen on {settings.host}:{settings.port}: {err.strerror or err}"
                    ) from err
                if settings.port == 0 and not settings.public_url:
                    # An ephemeral port was asked for: say which one we got.
                    port = int(runner.addresses[0][1])
                    url = settings.model_copy(update={"port": port}).base_url
            print(await greeting(url), flush=True)
            # What start-up built (modules, the app, connectors) lives as long as the
            # process: kept out of the collector's full passes, which would otherwise walk
            # it all now and then and stall every request in flight.
            gc.collect()
            gc.freeze()
            await stop.wait()
            logger.info("stopping")
        finally:
            await runner.cleanup()
    return 0


# --- commands ------------------------------------------------------------------------


async def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    # The app (every API module) is imported only by the commands that run it.
    from web.app import create_app

    # Built first: it refuses unusable settings (a production secret key) before any write.
    app = create_app(settings)
    await _migrate(settings)

    async def greeting(url: str) -> str:
        return f"Switchboard is running at {url}{await _first_admin(app)}"

    return await _run(app, listen=True, greeting=greeting)


async def _cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    from web.app import create_app

    app = create_app(settings, roles=frozenset({"web"}))
    if args.migrate:
        await _migrate(settings)

    async def greeting(url: str) -> str:
        return f"Switchboard web is running at {url}{await _first_admin(app)}"

    return await _run(app, listen=True, greeting=greeting)


async def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from web.app import create_app

    app = create_app(settings, roles=frozenset({"worker"}))

    async def greeting(url: str) -> str:
        return "Switchboard worker is running"

    return await _run(app, listen=False, greeting=greeting)


async def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    revision = await _migrate(settings)
    print(f"database {_safe_url(settings.database_url)} is at revision {revision}")
    return 0


async def _cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from timeline.reprocess import reprocess

    statuses = (
        tuple(status.value for status in ParseStatus)
        if args.all
        else (ParseStatus.NO_IDENTITY.value, ParseStatus.FAILED.value)
    )
    async with _engine(settings) as engine:
        sessions = session_factory(engine)
        if args.channel is not None:
            async with sessions() as session:
                if await session.get(Channel, args.channel) is None:
                    raise CliError(f"no channel with id {args.channel}")
        async with _ingestor(settings, sessions) as ingestor:
            summary = await reprocess(
                sessions, ingestor, channel_id=args.channel, statuses=statuses
            )
    print(
        f"reprocessed {summary.seen} stored payload(s): {summary.ingested} ingested, "
        f"{summary.still_flagged} still flagged, {summary.skipped} skipped"
    )
    return 0


async def _cmd_inspect_email(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.email.inspect import inspect_files

    # Pure parsing: no database, no configuration beyond the defaults.
    return await asyncio.to_thread(inspect_files, args.files, sys.stdout)


async def _cmd_import_email(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.email.mailbox_files import detect_format
    from web.email_import import Progress, import_email, total_messages

    try:
        detect_format(args.path)
    except (ValueError, OSError) as err:
        raise CliError(f"cannot import {args.path}: {err}") from err
    async with _engine(settings) as engine:
        sessions = session_factory(engine)
        async with sessions() as session:
            channel = await session.get(Channel, args.channel)
        if channel is None:
            raise CliError(f"no channel with id {args.channel}")
        if channel.kind != "email":
            raise CliError(f"channel {args.channel} is a {channel.kind} channel, not email")
        async with _ingestor(settings, sessions) as ingestor:
            total = await asyncio.to_thread(total_messages, args.path)
            print(f"importing {total} message(s) from {args.path} into {channel.name}")
            summary = await import_email(
                ingestor, args.channel, args.path, progress=Progress(total)
            )
    for line in summary.lines():
        print(line)
    return 0


def _read_password(given: str | None) -> str:
    """The --password value; else asked twice on a terminal, or one line of stdin."""
    if given is not None:
        return given
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != first:
            raise CliError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args.password)
    async with _engine(settings) as engine, session_factory(engine)() as session:
        user = await create_user(
            session, email=args.email, password=password, role=args.role, name=args.name
        )
    print(f"created {user.role} {user.email} (id {user.id})")
    return 0


async def _cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    async with _engine(settings) as engine, session_factory(engine)() as session:
        user = await user_by_email(session, args.email)
        if user is None:
            raise CliError(f"no user with email {args.email}")
        if not user.is_active:
            raise CliError(f"user {user.email} is deactivated")
        token = await issue_token(session, user, name=args.name)
    # The token is the last word: scripts take it with `awk '{print $NF}'`.
    print(f"API token for {user.email}: {token}")
    return 0


# --- parser --------------------------------------------------------------------------


def _channel_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a channel id (a UUID): {value!r}") from err


def _version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used by tests to check compose files)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Switchboard: an omnichannel communication hub with a CRM timeline. "
        "Configured by SWITCHBOARD_* environment variables (see README.md).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        summary: str,
        command: Command | None,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=summary, description=description or summary)
        if command is not None:
            sub.set_defaults(handler=command)
        return sub

    add(
        commands,
        "serve",
        "run everything in one process: web, connectors and the outbound worker",
        _cmd_serve,
        "Run everything in one process: migrates the schema, creates the first admin when "
        "there is no user (printing how to log in), then serves the web app, the "
        "connectors and the outbound worker until SIGINT/SIGTERM. With no configuration "
        "it uses SQLite (./switchboard.db) and an in-process event bus.",
    )
    web_parser = add(
        commands,
        "web",
        "run the web role only (HTTP API, webhooks, UI), for several processes",
        _cmd_web,
        "Serve HTTP (API, webhooks, forms, realtime, UI) without the outbound worker. Run "
        "several behind a load balancer with PostgreSQL and Redis. Does not migrate unless "
        "--migrate is given; creates the first admin when there is no user.",
    )
    web_parser.add_argument(
        "--migrate", action="store_true", help="apply the migrations before starting"
    )
    add(
        commands,
        "worker",
        "run the worker role only (connectors and outbound delivery), no HTTP",
        _cmd_worker,
        "Run the connectors and the outbound delivery worker without an HTTP port, "
        "until SIGINT/SIGTERM.",
    )
    add(
        commands,
        "migrate",
        "apply the database migrations and print the revision",
        _cmd_migrate,
    )
    reprocess_parser = add(
        commands,
        "reprocess",
        "re-parse stored raw inbound payloads (after a parser fix)",
        _cmd_reprocess,
        "Re-parse stored raw inbound payloads and ingest what now parses. By default only "
        "the flagged ones (no identity, a failed parse, refused by the database); --all "
        "takes every stored payload. "
        "Ingestion is idempotent: messages already stored are not stored twice.",
    )
    reprocess_parser.add_argument(
        "--channel", type=_channel_id, metavar="ID", help="only this channel's payloads"
    )
    reprocess_parser.add_argument(
        "--all", action="store_true", help="every stored payload, not only the flagged ones"
    )

    inspect_parser = add(commands, "inspect", "parse provider input without a database", None)
    inspect_commands = inspect_parser.add_subparsers(
        dest="inspect_command", metavar="KIND", required=True
    )
    inspect_email = add(
        inspect_commands,
        "email",
        "parse raw RFC 822 files and print one JSON object per file",
        _cmd_inspect_email,
        "Parse raw RFC 822 files with the email connector (no database) and print one "
        "JSON object per file: from, to, cc, subject, message_id, in_reply_to, references, "
        "sent_at, text, reply_text, html (sanitized), attachments, auto_submitted, and "
        "error (null, or why the file is not a usable message). Never crashes on bad input.",
    )
    inspect_email.add_argument("files", nargs="+", type=Path, metavar="FILE")

    import_parser = add(commands, "import", "import history from exported files", None)
    import_commands = import_parser.add_subparsers(
        dest="import_command", metavar="KIND", required=True
    )
    import_email_parser = add(
        import_commands,
        "email",
        "import an mbox file, a Maildir or a folder of .eml files into an email channel",
        _cmd_import_email,
        "Import exported mail into an email channel's timeline through the same parser "
        "and ingestion as IMAP. Idempotent: a message already stored (same Message-ID) is "
        "skipped, so a second run adds nothing. Prints progress and a summary of what was "
        "imported, skipped as duplicate, and refused with the reason.",
    )
    import_email_parser.add_argument(
        "--channel", type=_channel_id, required=True, metavar="ID", help="the email channel"
    )
    import_email_parser.add_argument(
        "path", type=Path, metavar="PATH", help="an mbox file, a Maildir, or a folder of .eml"
    )

    user_parser = add(commands, "user", "manage users", None)
    user_commands = user_parser.add_subparsers(
        dest="user_command", metavar="COMMAND", required=True
    )
    user_create = add(
        user_commands,
        "create",
        "create a user",
        _cmd_user_create,
        "Create a user. Without --password the password is asked for on a terminal, or "
        "read as one line from standard input.",
    )
    user_create.add_argument("--email", required=True, help="login email")
    user_create.add_argument("--password", help="at least 8 characters")
    user_create.add_argument(
        "--role", required=True, choices=[role.value for role in Role], help="what the user may do"
    )
    user_create.add_argument("--name", help="display name")

    token_parser = add(commands, "token", "manage API tokens", None)
    token_commands = token_parser.add_subparsers(
        dest="token_command", metavar="COMMAND", required=True
    )
    token_create = add(
        token_commands,
        "create",
        "create an API token for a user and print it (the last word)",
        _cmd_token_create,
        "Create an API token for a user. The token is printed once, as the last word of "
        "the output; only its hash is stored.",
    )
    token_create.add_argument("--email", required=True, help="the user's login email")
    token_create.add_argument("--name", help="a label for the token, e.g. the integration")
    return parser


# --- entry point ---------------------------------------------------------------------


def _settings_errors(err: ValidationError) -> str:
    lines = []
    for error in err.errors():
        name = "SWITCHBOARD_" + "_".join(str(part) for part in error["loc"]).upper()
        lines.append(f"  {name}: {error['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def _configure_logging(settings: Settings) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level.strip().upper())
    if level is None:
        raise SettingsError(
            f"SWITCHBOARD_LOG_LEVEL {settings.log_level!r} is not a level: "
            "use DEBUG, INFO, WARNING or ERROR"
        )
    logging.basicConfig(level=level, format=LOG_FORMAT)
    if level > logging.DEBUG:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        _configure_logging(settings)
    except ValidationError as err:
        _fail(_settings_errors(err))
        return 2
    except SettingsError as err:
        _fail(str(err))
        return 2
    command: Command = args.handler
    try:
        return asyncio.run(command(args, settings))
    except SettingsError as err:
        _fail(str(err))
        return 2
    except CliError as err:
        _fail(str(err))
        return err.exit_code
    except UserError as err:
        _fail(str(err))
        return 1
    except DBAPIError as err:
        hint = ""
        text = str(err.orig).lower()
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            hint = " (has `switchboard migrate` been run?)"
        _fail(f"database error on {_safe_url(settings.database_url)}: {err.orig}{hint}")
        return 1
    except OSError as err:
        # Typically the database or Redis refusing connections: say which were configured.
        services = f"database {_safe_url(settings.database_url)}"
        if settings.redis_url:
            services += f", Redis {_safe_url(settings.redis_url)}"
        _fail(f"{err} ({services})")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
