"""Re-run stored raw inbound payloads through ingestion (`switchboard reprocess`).

Flagged payloads (no usable sender, refused by the parser, or refused by the database)
get another chance after a fix: re-parsed from the raw bytes when the channel kind has a
parser, else re-ingested from the normalized form kept with them, whose attachments are
relinked to the files already in the blob store by their SHA-256 (none is orphaned,
none stored twice). Payloads that already became messages are re-parsed (with `--all`)
and their message's text is refreshed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from connectors.registry import spec_for
from connectors.types import (
    ChannelId,
    ExternalId,
    FormRecord,
    IdentityKind,
    Inbound,
    InboundAttachment,
    RawPayload,
    SenderHandle,
    ThreadHints,
)
from timeline.db import SessionFactory
from timeline.files import blob_path
from timeline.ingest import IngestError, Ingestor
from timeline.models import Channel, Message, ParseStatus, RawInbound

logger = logging.getLogger(__name__)

PAGE = 500


@dataclass
class ReprocessSummary:
    """Counts of what one reprocess run did."""

    seen: int = 0
    ingested: int = 0  # became a message, or refreshed its message
    still_flagged: int = 0
    skipped: int = 0  # no parser for the kind and nothing normalized kept


def inbound_from_json(
    channel_id: uuid.UUID, external_id: str, data: dict[str, Any], data_dir: Path | None = None
) -> Inbound:
    """Rebuild the Inbound kept with a flagged payload.

    Its attachments are read back from the blob store under `data_dir` by their digest;
    one whose file is gone is left out with a warning (the message itself is not lost).
    """
    sender = data.get("sender")
    thread = data.get("thread") or {}
    attachments: list[InboundAttachment] = []
    for item in data.get("attachments") or ():
        digest = item.get("sha256")
        if data_dir is None or not isinstance(digest, str):
            continue
        try:
            content = blob_path(data_dir, digest).read_bytes()
        except (OSError, ValueError) as err:
            logger.warning(
                "attachment %s of %s is not in the blob store: %s", digest, external_id, err
            )
            continue
        attachments.append(
            InboundAttachment(
                filename=item.get("filename"),
                content_type=item.get("content_type") or "application/octet-stream",
                data=content,
                inline=bool(item.get("inline")),
                content_id=item.get("content_id"),
            )
        )
    return Inbound(
        channel_id=ChannelId(str(channel_id)),
        external_id=ExternalId(external_id),
        sender=_handle(sender),
        author=_handle(data.get("author")),
        identities=tuple(
            handle for handle in map(_handle, data.get("identities") or ()) if handle is not None
        ),
        attribution=tuple(
            (str(pair[0]), str(pair[1])) for pair in data.get("attribution") or () if len(pair) == 2
        ),
        attribution_event=data.get("attribution_event") or "contact.attributed",
        new_contact_stage=data.get("new_contact_stage"),
        language=data.get("language"),
        form=_form(data.get("form")),
        edit_of=ExternalId(data["edit_of"]) if data.get("edit_of") else None,
        reply_to=ExternalId(data["reply_to"]) if data.get("reply_to") else None,
        text=data.get("text") or "",
        sent_at=datetime.fromisoformat(data["sent_at"]),
        reply_text=data.get("reply_text"),
        html=data.get("html"),
        thread=ThreadHints(
            message_id=thread.get("message_id"),
            in_reply_to=thread.get("in_reply_to"),
            references=tuple(thread.get("references") or ()),
            chat_id=thread.get("chat_id"),
            subject=thread.get("subject"),
        ),
        auto_submitted=bool(data.get("auto_submitted")),
        attachments=tuple(attachments),
    )


def _handle(data: dict[str, Any] | None) -> SenderHandle | None:
    if not data:
        return None
    return SenderHandle(IdentityKind(data["kind"]), data["value"], data.get("display_name"))


async def reprocess(
    sessions: SessionFactory,
    ingestor: Ingestor,
    *,
    channel_id: uuid.UUID | None = None,
    statuses: Sequence[str] = (ParseStatus.NO_IDENTITY.value, ParseStatus.FAILED.value),
) -> ReprocessSummary:
    """Reprocess stored payloads with the given parse statuses, page by page."""
    summary = ReprocessSummary()
    after: uuid.UUID | None = None
    while True:
        query = (
            select(RawInbound, Channel.kind)
            .join(Channel, Channel.id == RawInbound.channel_id)
            .where(RawInbound.parse_status.in_(list(statuses)))
            .order_by(RawInbound.id)
            .limit(PAGE)
        )
        if channel_id is not None:
            query = query.where(RawInbound.channel_id == channel_id)
        if after is not None:
            query = query.where(RawInbound.id > after)
        async with sessions() as session:
            page = (await session.execute(query)).all()
        if not page:
            return summary
        after = page[-1][0].id
        for raw, kind in page:
            summary.seen += 1
            await _reprocess_one(sessions, ingestor, raw, kind, summary)


async def _reprocess_one(
    sessions: SessionFactory,
    ingestor: Ingestor,
    raw: RawInbound,
    kind: str,
    summary: ReprocessSummary,
) -> None:
    parser = spec_for(kind).parse_raw
    stored = raw.parse_status != ParseStatus.OK.value and bool(raw.inbound)
    try:
        inbound = None
        if parser is not None and raw.body is not None:
            try:
                inbound = parser(
                    ChannelId(str(raw.channel_id)), RawPayload(raw.content_type, raw.body)
                )
            except Exception as err:
                if not stored:
                    raise
                # The connector's own normalized value was kept with the payload: it
                # stands when the payload does not parse (again).
                logger.info(
                    "reparse of %s/%s failed (%s); using the stored value",
                    raw.channel_id,
                    raw.external_id,
                    err,
                )
        if inbound is None and stored:
            assert raw.inbound is not None
            inbound = inbound_from_json(
                raw.channel_id, raw.external_id, raw.inbound, ingestor.data_dir
            )
        if inbound is None:
            summary.skipped += 1
            return
    except Exception as err:  # a parser bug must not stop the run: record it and go on
        logger.warning("reparse of %s/%s failed: %s", raw.channel_id, raw.external_id, err)
        async with sessions() as session, session.begin():
            await session.execute(
                update(RawInbound)
                .where(RawInbound.id == raw.id)
                .values(parse_status=ParseStatus.FAILED.value, error=f"reparse failed: {err}")
            )
        summary.still_flagged += 1
        return
    if raw.parse_status == ParseStatus.OK.value:
        async with sessions() as session, session.begin():
            await session.execute(
                update(Message)
                .where(Message.raw_id == raw.id)
                .values(
                    text=inbound.text,
                    reply_text=inbound.reply_text,
                    html=inbound.html,
                    auto_submitted=inbound.auto_submitted,
                )
            )
        summary.ingested += 1
        return
    try:
        result = await ingestor.ingest(inbound)
    except IngestError as err:
        logger.warning("re-ingest of %s/%s refused: %s", raw.channel_id, raw.external_id, err)
        summary.still_flagged += 1
        return
    if result.status == "flagged":
        summary.still_flagged += 1
    else:
        summary.ingested += 1


def _form(data: Any) -> FormRecord | None:
    if not isinstance(data, dict) or not data.get("form_id"):
        return None
    return FormRecord(
        form_id=str(data["form_id"]),
        attribution=tuple(
            (str(pair[0]), str(pair[1])) for pair in data.get("attribution") or () if len(pair) == 2
        ),
        ip=data.get("ip"),
    )
