"""What the channels pages show of a channel: its health as a badge, a one-line summary of
where it connects, and its configuration as the form fills it in (secrets left out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.config import SECRET_MASK
from connectors.registry import spec_for
from connectors.types import ChannelHealth, ChannelKind
from timeline.models import Channel

Translate = Callable[[str], str]

KINDS: tuple[ChannelKind, ...] = (
    ChannelKind.EMAIL,
    ChannelKind.SMS,
    ChannelKind.TELEGRAM,
    ChannelKind.WEBFORM,
)


@dataclass(frozen=True, slots=True)
class Badge:
    """A state in a word: its text and its admin.css modifier (good, bad, warn or none)."""

    text: str
    tone: str


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A channel as the list and its page show it."""

    channel: Channel
    kind: ChannelKind
    kind_title: str
    health: Badge
    summary: str  # where it connects: the address, the number, the bot's mode
    config: dict[str, Any]  # as the API shows it: secrets are "***"; {} when unreadable
    readable: bool


def kind_title(kind: ChannelKind, t: Translate) -> str:
    """The kind's name (the inbox's strings)."""
    return {
        ChannelKind.EMAIL: t("Email channel"),
        ChannelKind.SMS: t("SMS channel"),
        ChannelKind.TELEGRAM: t("Telegram channel"),
        ChannelKind.WEBFORM: t("Web form channel"),
    }[kind]


@dataclass(frozen=True, slots=True)
class KindChoice:
    """A kind of channel offered to connect."""

    kind: str
    title: str
    description: str


def kind_choices(t: Translate) -> list[KindChoice]:
    """The kinds to connect, each with what it takes."""
    return [
        KindChoice(
            ChannelKind.EMAIL.value,
            t("Email"),
            t("A mailbox read over IMAP; replies go out over SMTP."),
        ),
        KindChoice(
            ChannelKind.SMS.value,
            t("SMS"),
            t("A Twilio number: texts come in by webhook and replies go out through Twilio."),
        ),
        KindChoice(
            ChannelKind.TELEGRAM.value,
            t("Telegram"),
            t("A Telegram bot: people write to it and agents answer as the bot."),
        ),
        KindChoice(
            ChannelKind.WEBFORM.value,
            t("Web form"),
            t("Forms on your website: each submission opens a conversation and a lead."),
        ),
    ]


def health_badge(channel: Channel, t: Translate) -> Badge:
    """The channel's health; a kind with nothing to connect to is always ready."""
    spec = spec_for(channel.kind)
    if spec.factory is None and spec.check_connection is None:
        return Badge(t("Ready"), "good")
    health = channel.health
    if health == ChannelHealth.CONNECTED:
        return Badge(t("Connected"), "good")
    if health == ChannelHealth.TRANSIENT_DISCONNECT:
        return Badge(t("Reconnecting"), "warn")
    if health == ChannelHealth.BAD_CREDENTIALS:
        return Badge(t("Credentials refused"), "bad")
    if health == ChannelHealth.CONFIG_ERROR:
        return Badge(t("Configuration error"), "bad")
    return Badge(t("Not connected yet"), "")


def summary(kind: ChannelKind, config: dict[str, Any], t: Translate) -> str:
    """One line saying where the channel connects."""
    if kind is ChannelKind.EMAIL:
        return str(config.get("from_address") or config.get("imap_username") or "")
    if kind is ChannelKind.SMS:
        return str(config.get("phone_number") or config.get("messaging_service_sid") or "")
    if kind is ChannelKind.TELEGRAM:
        return t("Webhook") if config.get("mode") == "webhook" else t("Long polling")
    origins = config.get("allowed_origins") or []
    return ", ".join(str(o) for o in origins) if origins else t("Any website")


def channel_row(channel: Channel, config: dict[str, Any] | None, t: Translate) -> ChannelRow:
    """The row of `channel`, `config` being its masked configuration (None: unreadable)."""
    kind = spec_for(channel.kind).kind
    shown = config or {}
    return ChannelRow(
        channel=channel,
        kind=kind,
        kind_title=kind_title(kind, t),
        health=health_badge(channel, t),
        summary=summary(kind, shown, t),
        config=shown,
        readable=config is not None,
    )


def form_values(config: dict[str, Any]) -> dict[str, str]:
    """The configuration as the form's inputs hold it: lists one item a line, numbers as
    text, secrets empty (a stored secret is kept unless a new one is typed)."""
    values: dict[str, str] = {}
    for key, value in config.items():
        if value is None or value == SECRET_MASK:
            continue
        if isinstance(value, list):
            values[key] = "\n".join(str(item) for item in value)
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        else:
            values[key] = str(value)
    return values


def stored_secrets(config: dict[str, Any]) -> frozenset[str]:
    """The keys whose secret is stored (shown masked)."""
    return frozenset(key for key, value in config.items() if value == SECRET_MASK)
