"""The one inbound shape, the outbound shape, and delivery states shared by every channel."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NewType

ChannelId = NewType("ChannelId", str)
ExternalId = NewType("ExternalId", str)
ProviderMessageId = NewType("ProviderMessageId", str)


class ChannelKind(enum.StrEnum):
    """The kinds of channel a customer can write on."""

    EMAIL = "email"
    SMS = "sms"
    TELEGRAM = "telegram"
    WEBFORM = "webform"


class IdentityKind(enum.StrEnum):
    """How a sender is identified; the value is normalized per kind by the timeline."""

    EMAIL = "email"  # an address; lower-cased, IDNA domain
    PHONE = "phone"  # E.164, parsed with the channel's default region
    TELEGRAM = "telegram"  # the Telegram user id (stable, unlike usernames)
    WEBFORM = "webform"  # an opaque visitor key, when a form collects no email or phone


class DeliveryState(enum.StrEnum):
    """Where an outbound message is on its way to the customer. Only moves forward."""

    QUEUED = "queued"  # stored with its delivery job; no worker has it yet
    SENDING = "sending"  # a worker claimed it and is handing it to the provider
    FAILED_TEMPORARY = "failed_temporary"  # the last attempt failed; it will be retried
    SENT = "sent"  # the provider accepted it (we hold its message id)
    DELIVERED = "delivered"  # the provider reports it reached the customer's device or mailbox
    READ = "read"  # the customer opened it (channels that report reads)
    FAILED_PERMANENT = "failed_permanent"  # will not be retried; `error` says why


# Rank used to keep delivery state forward-only: a state may replace another only
# when its rank is strictly greater. A late "sent" callback never overwrites
# "delivered"; "failed_permanent" after "sent" is allowed (Twilio's undelivered).
DELIVERY_RANK: dict[DeliveryState, int] = {
    DeliveryState.QUEUED: 0,
    DeliveryState.FAILED_TEMPORARY: 1,
    DeliveryState.SENDING: 2,
    DeliveryState.SENT: 3,
    DeliveryState.DELIVERED: 4,
    DeliveryState.FAILED_PERMANENT: 4,
    DeliveryState.READ: 5,
}


class ChannelHealth(enum.StrEnum):
    """Connection health of a channel, shown to admins."""

    UNKNOWN = "unknown"  # never started, or the connector is not built yet
    CONNECTED = "connected"  # the last sync or send worked
    TRANSIENT_DISCONNECT = "transient_disconnect"  # network or provider trouble; retrying
    BAD_CREDENTIALS = "bad_credentials"  # needs a person: the provider refused our credentials
    CONFIG_ERROR = "config_error"  # permanent misconfiguration (wrong host, missing folder)


@dataclass(frozen=True, slots=True)
class SenderHandle:
    """Who sent a message, as the channel knows them. `value` is raw; the timeline normalizes."""

    kind: IdentityKind
    value: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class ThreadHints:
    """What a channel knows about which thread a message belongs to."""

    message_id: str | None = None  # RFC 5322 Message-ID of this message (email)
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    chat_id: str | None = None  # Telegram chat, or the phone pair for SMS
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """A file that came with an inbound message. `filename` is display-only, never a path."""

    filename: str | None
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None
    size: int | None = None  # the provider's size when `data` could not be fetched
    # Why `data` is empty: the download failed (worth retrying later) or the file is over
    # the channel's limit. The message is stored anyway, with the attachment noted.
    error: str | None = None
    # What the connector fetches the file by (a media URL, a Telegram file id), kept so
    # a failed download can be tried again (`Connector.fetch_attachment`).
    source: str | None = None
    # The failure may pass (a timeout, a provider's 5xx): the core fetches the file again
    # later. False for what cannot change (over the size limit, a refused URL).
    retry: bool = False


@dataclass(frozen=True, slots=True)
class RawPayload:
    """The provider input exactly as received, kept so it can be re-parsed later."""

    content_type: (
        str  # e.g. "message/rfc822", "application/json", "application/x-www-form-urlencoded"
    )
    data: bytes


@dataclass(frozen=True, slots=True)
class FormRecord:
    """A web form submission's own record (`form_submissions`), stored in the message's
    transaction: there is never a form message without it, nor a record twice."""

    form_id: str
    attribution: tuple[tuple[str, str], ...] = ()
    ip: str | None = None  # only when the channel keeps addresses


@dataclass(frozen=True, slots=True)
class Inbound:
    """One inbound message from any channel, normalized by its connector."""

    channel_id: ChannelId
    external_id: ExternalId  # the provider's id: unique per channel; the idempotency key
    sender: SenderHandle | None  # None when the provider input names nobody usable
    text: str
    sent_at: datetime  # timezone-aware
    thread: ThreadHints = field(default_factory=ThreadHints)
    reply_text: str | None = None  # new text without quoted history, when the channel quotes
    html: str | None = None  # already sanitized by the connector
    attachments: tuple[InboundAttachment, ...] = ()
    raw: RawPayload | None = None
    auto_submitted: bool = False  # auto-replies, bounces, bulk mail: never auto-acknowledge
    # In a group chat `sender` is the group (the conversation's contact, whom replies go
    # to) and `author` the member who wrote; None in one-to-one chats.
    author: SenderHandle | None = None
    # A new version of an earlier message (a Telegram edit): recorded as an edit of the
    # message with this external id, never as a message of its own.
    edit_of: ExternalId | None = None
    # The earlier message (by external id) this one answers, when the channel says so.
    reply_to: ExternalId | None = None
    # Other identities of the sender that the message itself vouches for (a Telegram user
    # sharing their own phone number; a form's email and phone): attached to the sender's
    # contact, or recorded as a merge suggestion when another contact already holds one.
    identities: tuple[SenderHandle, ...] = ()
    # Where the customer came from (a Telegram /start payload; a form's page, referrer,
    # UTM parameters): recorded on the contact's timeline with the message.
    attribution: tuple[tuple[str, str], ...] = ()
    # The timeline event the attribution is recorded as (a web form: "form.submitted").
    attribution_event: str = "contact.attributed"
    # The lifecycle stage of a contact this message creates (a form's visitor is a
    # "lead"); None: "new".
    new_contact_stage: str | None = None
    # The language the customer wrote in, when the channel knows it (a form's language,
    # BCP 47): given to the sender's contact when it has none yet.
    language: str | None = None
    # The submission record of a web form message.
    form: FormRecord | None = None


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    """A file to send with an outbound message."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to send to a customer on their channel."""

    channel_id: ChannelId
    message_id: str  # our message id; stable across retries (connectors may use it to dedupe)
    recipient: str  # normalized identity value (email address, E.164 number, Telegram chat id)
    text: str
    html: str | None = None
    subject: str | None = None
    thread: ThreadHints = field(default_factory=ThreadHints)
    attachments: tuple[OutboundAttachment, ...] = ()
    sender_name: str | None = None  # the agent's display name; None: the channel's own
    # The external id of the customer's message this answers (a Telegram reply), when the
    # agent replied to one; channels without the notion ignore it.
    reply_to: str | None = None
    # An automatic acknowledgement, not a person's reply: marked so (email Auto-Submitted:
    # auto-replied) that the customer's own auto-responder does not answer it.
    auto_reply: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider said when it accepted an outbound message."""

    provider_message_id: ProviderMessageId | None
    state: DeliveryState = DeliveryState.SENT
    # The RFC 5322 Message-ID the message went out with (email), so a customer's reply
    # that cites only our message threads into its conversation.
    rfc_message_id: str | None = None


class Reachability(enum.StrEnum):
    """Whether a contact may be written to on a channel, as the channel reports it."""

    OPTED_OUT = "opted_out"  # SMS STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT
    OPTED_IN = "opted_in"  # SMS START, UNSTOP
    BLOCKED = "blocked"  # the user blocked the Telegram bot
    UNBLOCKED = "unblocked"  # ... and unblocked it


@dataclass(frozen=True, slots=True)
class ReachabilityChange:
    """A contact opted out of (or back into) a channel, or blocked (or unblocked) it.

    While opted out or blocked, replies to them on the channel are refused before
    anything is sent."""

    channel_id: ChannelId
    who: SenderHandle
    change: Reachability
    at: datetime  # timezone-aware
    detail: str | None = None  # e.g. the keyword the customer sent


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A later delivery report from the provider (a status callback, a bounce, a read receipt)."""

    channel_id: ChannelId
    provider_message_id: ProviderMessageId
    state: DeliveryState
    error: str | None = None
    at: datetime | None = None
