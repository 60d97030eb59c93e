"""What a channel can carry, applied to a reply: one pure check for the API and the outbox.

The limits themselves are declared by each channel kind in the connector registry
(`Capabilities`); this module only compares a reply with them. The REST API refuses a
reply up front with 422 naming each field; a dispatcher can apply the same check to a
queued reply before handing it to a connector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from connectors.base import Capabilities

# Field names of the refusals, as the REST API names the request's fields.
CHANNEL = "channel_id"
TEXT = "text"
ATTACHMENTS = "attachments"


class Sized(Protocol):
    """Anything with a size in bytes (an `OutboundFile`, a decoded upload)."""

    @property
    def size(self) -> int: ...


def reply_refusals(
    capabilities: Capabilities, text: str, attachments: Sequence[Sized] = ()
) -> dict[str, str]:
    """Why a channel cannot carry this reply, by field name; empty when it can.

    Private notes are never sent, so they are not checked against a channel.
    """
    if not capabilities.can_send:
        # Nothing else matters: nothing can be sent on this channel at all.
        return {CHANNEL: "this channel cannot send replies; add a private note instead"}
    refusals: dict[str, str] = {}
    limit = capabilities.max_text_length
    if limit is not None and len(text) > limit:
        refusals[TEXT] = (
            f"this channel carries at most {limit:,} characters; this text has {len(text):,}"
        )
    if attachments:
        total = sum(item.size for item in attachments)
        if not capabilities.supports_attachments:
            refusals[ATTACHMENTS] = "this channel cannot send attachments"
        elif capabilities.max_attachment_bytes is not None and (
            total > capabilities.max_attachment_bytes
        ):
            refusals[ATTACHMENTS] = (
                f"this channel carries at most {_size(capabilities.max_attachment_bytes)} "
                f"of attachments in total; these are {_size(total)}"
            )
    return refusals


def _size(n: int) -> str:
    """A byte count for people: exact bytes below 1 KiB, else KiB/MiB with one decimal."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"
