"""Loading a form by its public key: the row, its validated definition and its channel's
web form settings, kept a few seconds in process.

A busy form is posted to hundreds of times a second; each load reads two rows and
decrypts the channel's configuration, so loads are cached for `ttl` seconds and dropped
at once on the events that change a form or a channel. The events are fire-and-forget, so
the short lifetime is the safety net for a missed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select

from connectors.types import ChannelKind
from connectors.webform.config import WebformConfig
from connectors.webform.definition import NAME_PATTERN, FormDefinition
from timeline.crypto import SecretBox, SecretBoxError
from timeline.db import SessionFactory
from timeline.events import Event, EventBus, next_event
from timeline.models import Channel, Form

logger = logging.getLogger(__name__)

MAX_KEY_CHARS = 64  # forms.key is a String(64)
DEFAULT_TTL_SECONDS = 5.0
DEFAULT_MAX_ENTRIES = 10_000
# Event types after which cached forms may be stale; form.submitted and the like are not.
_INVALIDATING_PREFIXES = ("channel.",)
_INVALIDATING_TYPES = frozenset({"form.created", "form.updated", "form.deleted"})


@dataclass(frozen=True, slots=True)
class PublicForm:
    """A form that exists and is active. `definition` is the effective one: the channel's
    allowed origins and honeypot name folded in, so every check reads one object.
    `available` is False while the channel is paused or its settings cannot be read."""

    form: Form
    definition: FormDefinition
    config: WebformConfig
    available: bool


def is_plausible_key(key: str) -> bool:
    """Whether `key` could name a form at all (checked before any database read)."""
    return 0 < len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable()


def effective_definition(definition: FormDefinition, config: WebformConfig) -> FormDefinition:
    """The definition with the channel's allowed origins added and, when the channel names
    one that no field uses, the channel's honeypot field."""
    origins = tuple(dict.fromkeys((*definition.allowed_origins, *config.allowed_origins)))
    update: dict[str, object] = {"allowed_origins": origins}
    honeypot = config.honeypot_field
    names = {field.name.lower() for field in definition.fields}
    if honeypot and NAME_PATTERN.fullmatch(honeypot) and honeypot.lower() not in names:
        update["honeypot_field"] = honeypot
    return definition.model_copy(update=update)


async def load_form(sessions: SessionFactory, box: SecretBox, key: str) -> PublicForm | None:
    """The active form `key` of a web form channel; None when there is none."""
    if not is_plausible_key(key):
        return None
    async with sessions() as session:
        found = (
            await session.execute(
                select(Form, Channel)
                .join(Channel, Channel.id == Form.channel_id)
                .where(Form.key == key)
            )
        ).first()
    if found is None:
        return None
    form, channel = found[0], found[1]
    if not form.active or channel.kind != ChannelKind.WEBFORM.value:
        return None
    try:
        stored = {"name": form.name, **form.definition, "channel_id": str(form.channel_id)}
        definition = FormDefinition.model_validate(stored)
    except ValidationError as err:
        # Definitions are validated when saved: this is a bug or a hand-edited row.
        logger.error("form %s: stored definition is invalid: %s", form.id, err)
        return None
    available = not channel.paused
    try:
        config = WebformConfig.model_validate(box.decrypt(channel.config_encrypted))
    except (SecretBoxError, ValidationError) as err:
        logger.warning("form %s: channel %s settings are unreadable: %s", form.id, channel.id, err)
        config, available = WebformConfig(), False
    return PublicForm(form, effective_definition(definition, config), config, available)


class FormLookup:
    """`load_form` behind a small least-recently-used cache with a time to live; absent
    keys are cached too, so a scan of made-up keys costs one read per key and lifetime."""

    def __init__(
        self,
        sessions: SessionFactory,
        box: SecretBox,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, PublicForm | None]] = OrderedDict()

    async def get(self, key: str) -> PublicForm | None:
        """The form `key`, from the cache when it was loaded less than `ttl` ago."""
        if not is_plausible_key(key):
            return None
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl:
            self._entries.move_to_end(key)
            return entry[1]
        loaded = await load_form(self._sessions, self._box, key)
        self._entries[key] = (now, loaded)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return loaded

    def clear(self) -> None:
        """Forget every cached form (a form or channel changed)."""
        self._entries.clear()

    def observe(self, event: Event) -> None:
        """Drop the cache if `event` may have changed a form or its channel."""
        if event.type in _INVALIDATING_TYPES or event.type.startswith(_INVALIDATING_PREFIXES):
            self.clear()

    async def follow(self, bus: EventBus, stop: asyncio.Event, retry_seconds: float = 5.0) -> None:
        """Apply the bus's events to the cache until `stop` is set; a lost bus is
        subscribed to again (meanwhile entries still expire by age)."""
        while not stop.is_set():
            try:
                async with bus.subscribe() as events:
                    self.clear()  # anything may have changed while unsubscribed
                    while not stop.is_set():
                        event = await next_event(events, stop, None)
                        if event is not None:
                            self.observe(event)
            except Exception as err:
                logger.warning("form cache lost the event bus (%r); relying on expiry", err)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_seconds)
