"""The Telegram channel's connector: one bot, through aiogram 3.

Updates arrive by long polling (polling.py, the default: works on a laptop with no public
address) or by webhook (`mode: "webhook"`, needs an https SWITCHBOARD_PUBLIC_URL).
Either way each update is validated on its own (validate.py) and fed to aiogram's
Dispatcher, whose handlers (registered here per update kind) build the Inbound
(updates.py), download its files (files.py) and hand it to the timeline. Going through
the Dispatcher keeps aiogram's routing by update kind and its middleware chain; unknown
kinds are caught before it (aiogram would only warn), and kinds with no handler here
(callback queries, reactions, poll answers) come back unhandled and are acknowledged.

Only reading an update can be skipped (logged); a failing hand-over always propagates, so
the webhook answers 503 and polling does not advance its offset.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, replace

from aiogram import Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.types import ChatMemberUpdated, Message, Update
from aiogram.types.update import UpdateTypeLookupError
from aiohttp import web

from connectors.base import ConnectorContext
from connectors.config import ChannelConfig
from connectors.errors import AuthError, PermanentError
from connectors.telegram.capabilities import CAPABILITIES
from connectors.telegram.chats import ChatAliases
from connectors.telegram.client import ALLOWED_UPDATES, make_bot, translate
from connectors.telegram.config import TelegramConfig
from connectors.telegram.files import download, refetch
from connectors.telegram.polling import Poller
from connectors.telegram.send import Sender
from connectors.telegram.updates import ParsedMessage, parse_membership, parse_message
from connectors.telegram.validate import InvalidUpdate, parse_update
from connectors.types import (
    ChannelHealth,
    ChannelId,
    Inbound,
    InboundAttachment,
    Outbound,
    RawPayload,
    SendResult,
)

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramConnector:
    """One bot: receives by long polling or webhook, sends through the Bot API."""

    def __init__(
        self, channel_id: ChannelId, config: TelegramConfig, context: ConnectorContext
    ) -> None:
        self.channel_id = channel_id
        self.capabilities = CAPABILITIES
        self._config = config
        self._context = context
        # First wait after a polling failure; doubles up to a minute.
        self.backoff_start_seconds = 1.0
        self._bot = make_bot(config)
        self._aliases = ChatAliases(channel_id, context.cursors)
        self._sender = Sender(
            channel_id, self._bot, self._aliases, context.cursors, context.reachability
        )
        self._dispatcher = Dispatcher(disable_fsm=True, name=f"telegram:{channel_id}")
        self._dispatcher.message.register(self._on_message)
        self._dispatcher.channel_post.register(self._on_message)
        self._dispatcher.edited_message.register(self._on_edit)
        self._dispatcher.edited_channel_post.register(self._on_edit)
        self._dispatcher.my_chat_member.register(self._on_membership)

    @property
    def webhook_path(self) -> str:
        """Where Telegram posts this channel's updates in webhook mode."""
        return f"/webhooks/telegram/{self.channel_id}"

    async def run(self) -> None:
        if self._config.mode == "webhook":
            await self._set_webhook()
            return
        poller = Poller(
            self.channel_id,
            self._bot,
            self._context.cursors,
            self._context.health,
            self.handle_update,
            poll_timeout=self._config.poll_timeout,
            backoff_start_seconds=self.backoff_start_seconds,
        )
        await poller.run()

    async def close(self) -> None:
        await self._bot.session.close()

    async def send(self, message: Outbound) -> SendResult:
        return await self._sender.send(message)

    async def fetch_attachment(self, attachment: InboundAttachment) -> InboundAttachment:
        return await refetch(self._bot, attachment)

    def routes(self) -> list[web.RouteDef]:
        # Served in polling mode too: updates still on their way to a webhook being
        # replaced by polling are taken rather than refused.
        return [web.post(self.webhook_path, self._webhook)]

    async def handle_update(self, update: Update, raw: RawPayload) -> None:
        """Hand one update over (returns after it is committed); raises only when the
        hand-over fails. Updates that are not messages or membership changes are
        acknowledged without effect."""
        try:
            kind = update.event_type
        except UpdateTypeLookupError:
            log.info(
                "telegram channel %s: update %s of an unknown kind acknowledged",
                self.channel_id,
                update.update_id,
            )
            return
        result = await self._dispatcher.feed_update(self._bot, update, raw=raw)
        if result is UNHANDLED:
            log.debug(
                "telegram channel %s: %s update %s is not a message; acknowledged",
                self.channel_id,
                kind,
                update.update_id,
            )

    async def _webhook(self, request: web.Request) -> web.Response:
        expected = (self._config.secret_token or "").encode()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not expected or not hmac.compare_digest(given, expected):
            return _error(403, "forbidden", f"missing or wrong {SECRET_HEADER}")
        body = await request.read()
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "bad_request", "the body is not JSON")
        try:
            update = parse_update(data, self._bot)
        except InvalidUpdate as err:
            # It came from Telegram (the secret matched) and would read no better when
            # redelivered: acknowledged, and logged.
            log.warning("telegram channel %s: update skipped: %s", self.channel_id, err)
            return web.Response(status=200)
        try:
            await self.handle_update(update, RawPayload("application/json", body))
        except Exception:
            log.exception(
                "telegram channel %s: update %s not stored", self.channel_id, update.update_id
            )
            return _error(503, "unavailable", "the update could not be stored; retry later")
        return web.Response(status=200)

    async def _set_webhook(self) -> None:
        public = self._context.public_url
        if not public.startswith("https://"):
            reason = (
                f"webhook mode needs an https SWITCHBOARD_PUBLIC_URL (Telegram calls only "
                f"https webhooks), got {public!r}; set it or use polling mode"
            )
            await self._context.health(self.channel_id, ChannelHealth.CONFIG_ERROR, reason)
            raise PermanentError(reason)
        try:
            await self._bot.set_webhook(
                url=public + self.webhook_path,
                secret_token=self._config.secret_token,
                allowed_updates=ALLOWED_UPDATES,
            )
        except TelegramAPIError as err:
            error = translate(err)
            if isinstance(error, AuthError):
                health = ChannelHealth.BAD_CREDENTIALS
            elif isinstance(error, PermanentError):
                health = ChannelHealth.CONFIG_ERROR
            else:
                health = ChannelHealth.TRANSIENT_DISCONNECT
            await self._context.health(self.channel_id, health, str(error))
            raise error from err
        await self._context.health(self.channel_id, ChannelHealth.CONNECTED, None)

    async def _on_message(self, message: Message, raw: RawPayload) -> None:
        await self._message(message, raw, edited=False)

    async def _on_edit(self, message: Message, raw: RawPayload) -> None:
        await self._message(message, raw, edited=True)

    async def _message(self, message: Message, raw: RawPayload, *, edited: bool) -> None:
        chat = message.chat
        if message.migrate_to_chat_id is not None:
            await self._aliases.record(chat.id, message.migrate_to_chat_id)
        if message.migrate_from_chat_id is not None:
            await self._aliases.record(message.migrate_from_chat_id, chat.id)
        conversation = await self._aliases.conversation_id(chat.id, chat.type)
        try:
            parsed = parse_message(
                self.channel_id, message, raw, edited=edited, conversation_chat=conversation
            )
        except Exception:
            # The one catch-all per message: a message this parser cannot read is logged
            # with its id and the next one goes on.
            log.exception(
                "telegram channel %s: message %s:%s could not be read",
                self.channel_id,
                chat.id,
                message.message_id,
            )
            return
        attachments = tuple([await download(self._bot, ref) for ref in parsed.files])
        await self._context.inbound(replace(parsed.inbound, attachments=attachments))

    async def _on_membership(self, event: ChatMemberUpdated) -> None:
        conversation = await self._aliases.conversation_id(event.chat.id, event.chat.type)
        change = parse_membership(self.channel_id, event, conversation_chat=conversation)
        if change is not None:
            await self._context.reachability(change)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def build(
    channel_id: ChannelId, config: ChannelConfig, context: ConnectorContext
) -> TelegramConnector:
    """The registry's factory for Telegram channels."""
    return TelegramConnector(channel_id, _telegram(config), context)


def parse_raw(channel_id: ChannelId, payload: RawPayload) -> Inbound:
    """Re-parse a stored update (`switchboard reprocess`). Files are not downloaded here:
    they come back as attachments to fetch again (their file id as `source`). The group
    → supergroup mapping lives in the cursor store, out of reach here: a supergroup's
    message re-parses under the supergroup's own id."""
    update = parse_update(json.loads(payload.data), None)
    message = update.message or update.channel_post
    edited = message is None
    message = message or update.edited_message or update.edited_channel_post
    if message is None:
        raise ValueError(f"update {update.update_id} carries no message")
    parsed = parse_message(channel_id, message, payload, edited=edited)
    return replace(parsed.inbound, attachments=_not_fetched(parsed))


def _not_fetched(parsed: ParsedMessage) -> tuple[InboundAttachment, ...]:
    return tuple(
        InboundAttachment(
            filename=ref.filename,
            content_type=ref.content_type,
            data=b"",
            size=ref.size,
            error="not downloaded while re-parsing",
            source=ref.file_id,
            retry=True,
        )
        for ref in parsed.files
    )


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who a token belongs to, as getMe answers: shown to the admin to confirm the bot."""

    id: int
    name: str  # the bot's first name
    username: str | None


async def describe_bot(config: ChannelConfig) -> tuple[dict[str, str], BotIdentity | None]:
    """Ask Telegram who the bot is (getMe): field errors by configuration key (empty when
    the token works) and, when it works, the bot's identity."""
    telegram = _telegram(config)
    bot = make_bot(telegram)
    where = "api_base_url" if telegram.api_base_url else "bot_token"
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        return {"bot_token": "Telegram refused the token (401 Unauthorized)"}, None
    except TelegramNotFound:
        return {"bot_token": "Telegram does not know this token (404 Not Found)"}, None
    except TelegramNetworkError as err:
        return {where: f"could not reach the Telegram Bot API: {err.message}"}, None
    except TelegramAPIError as err:
        return {"bot_token": f"Telegram refused getMe: {err.message}"}, None
    except ClientDecodeError:
        return {where: "the server did not answer like the Telegram Bot API"}, None
    finally:
        await bot.session.close()
    return {}, BotIdentity(id=me.id, name=me.first_name, username=me.username)


async def check_token(config: ChannelConfig) -> dict[str, str]:
    """Ask Telegram who the bot is (getMe): field errors by configuration key, empty when
    the token works. Used when a channel is saved."""
    errors, _ = await describe_bot(config)
    return errors


async def check_connection(config: ChannelConfig) -> dict[str, str]:
    """The "test connection" action: the token checked with getMe."""
    return await check_token(config)


def _telegram(config: ChannelConfig) -> TelegramConfig:
    if not isinstance(config, TelegramConfig):
        raise TypeError(f"a Telegram channel needs a TelegramConfig, got {type(config).__name__}")
    return config
