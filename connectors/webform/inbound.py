"""A valid form submission as the one inbound shape, and re-parsing a stored one.

Idempotency: the external id is a hash of the form key, the render token (or, for posts
without one, an id the caller passes: the client's Idempotency-Key header, say) and the
submitted content. A browser's double submit (same token, same content; a fresh multipart
boundary does not matter, since parsed values are hashed, not bytes) is one message; a
visitor who goes back, corrects a typo and sends again makes a second one. A post with
neither token nor id is never deduplicated (the raw body and arrival time are hashed).

Who: the sender is the email identity if given, else the phone; the other of the two goes
in `identities` so the core attaches both (or records a merge suggestion when another
contact holds it). A form that collects neither gets an opaque per-submission identity
(IdentityKind.WEBFORM, the external id): the visitor still becomes a lead with a
conversation in the inbox instead of a flagged payload nobody sees. A contact the
submission creates starts as a "lead" in the form's language; the attribution (with the
form's key, id and name) is recorded as the "form.submitted" timeline event, in the
message's transaction.

Text: the message field first, as written (it is what an agent reads first and what the
inbox shows as a preview), then a blank line and "Label: value" for every other field
answered, in the form's order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime

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
from connectors.webform.attribution import Attribution
from connectors.webform.definition import FieldType, FormDefinition, MapsTo
from connectors.webform.limits import DEFAULT_LIMITS, Limits
from connectors.webform.submission import Answer, Submission, read_submission

# The timeline event a submission's attribution is recorded as.
FORM_SUBMITTED = "form.submitted"
# Where a contact a form creates starts in the pipeline (inbox/lifecycle.py).
NEW_CONTACT_STAGE = "lead"


def _shown(answer: Answer) -> str:
    if isinstance(answer.value, bool):
        return "Yes" if answer.value else "No"
    if answer.field.type is FieldType.SELECT:
        return next((o.label for o in answer.field.options if o.value == answer.value), "")
    return answer.value


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def submission_text(submission: Submission) -> str:
    """The message text: the message field, then "Label: value" lines."""
    lines: list[str] = []
    for answer in submission.answers:
        if answer.field.mapping is MapsTo.MESSAGE:
            continue
        # Continuation lines indented so a multi-line answer stays under its label.
        lines.append(f"{answer.field.label}: " + _shown(answer).replace("\n", "\n  "))
    for upload in submission.files:
        name = upload.filename or "file"
        lines.append(f"{upload.field.label}: {name} ({_size(len(upload.data))})")
    message = submission.message
    if message is None:
        return "\n".join(lines)
    return message + ("\n\n" + "\n".join(lines) if lines else "")


def external_id(
    form_key: str,
    submission: Submission,
    raw: RawPayload,
    received_at: datetime,
    fallback_id: str | None,
) -> ExternalId:
    """The submission's idempotency key (see the module's docstring)."""
    content = [[a.field.name, a.value] for a in submission.answers]
    content += [[f.field.name, hashlib.sha256(f.data).hexdigest()] for f in submission.files]
    if submission.token:
        origin = ["token", submission.token]
    elif fallback_id:
        origin = ["id", fallback_id]
    else:
        origin = ["raw", hashlib.sha256(raw.data).hexdigest(), received_at.isoformat()]
    document = json.dumps([form_key, origin, content], ensure_ascii=True, separators=(",", ":"))
    return ExternalId("form:" + hashlib.sha256(document.encode("ascii")).hexdigest())


def attribution_pairs(
    definition: FormDefinition, attribution: Attribution, form_id: str | None
) -> tuple[tuple[str, str], ...]:
    """What the "form.submitted" event records: the form (key, id, name), then where the
    visitor came from."""
    pairs = attribution.pairs()
    form = [("form_id", form_id), ("form_name", definition.name)]
    return (pairs[0], *((k, v) for k, v in form if v), *pairs[1:])


def to_inbound(
    channel_id: ChannelId,
    definition: FormDefinition,
    submission: Submission,
    attribution: Attribution,
    received_at: datetime,
    raw: RawPayload,
    *,
    fallback_id: str | None = None,
    form_id: str | None = None,
) -> Inbound:
    """The inbound message of a submission that passed the spam checks and validation
    (who sends it, and what it records: see the module's docstring). `raw.content_type`
    must be the whole Content-Type header (a multipart boundary is needed to re-parse)."""
    name = submission.name
    key = external_id(attribution.form_key, submission, raw, received_at, fallback_id)
    given = ((IdentityKind.EMAIL, submission.email), (IdentityKind.PHONE, submission.phone))
    handles = [SenderHandle(kind, value, name) for kind, value in given if value]
    if not handles:
        handles = [SenderHandle(IdentityKind.WEBFORM, key, name)]
    return Inbound(
        channel_id=channel_id,
        external_id=key,
        sender=handles[0],
        identities=tuple(handles[1:]),
        text=submission_text(submission),
        sent_at=received_at,
        thread=ThreadHints(subject=f"Form: {definition.name}"),
        attachments=tuple(
            InboundAttachment(
                filename=f.filename, content_type=f.content_type, data=f.data, size=len(f.data)
            )
            for f in submission.files
        ),
        raw=raw,
        attribution=attribution_pairs(definition, attribution, form_id),
        attribution_event=FORM_SUBMITTED,
        new_contact_stage=NEW_CONTACT_STAGE,
        language=definition.language,
        form=None if form_id is None else form_record(definition, attribution, form_id),
    )


def form_record(definition: FormDefinition, attribution: Attribution, form_id: str) -> FormRecord:
    """The submission's `form_submissions` record: the attribution without the address,
    which has a column of its own (cleared when the channel's retention period ends)."""
    pairs = attribution_pairs(definition, dataclasses.replace(attribution, ip=None), None)
    return FormRecord(form_id, (*pairs, ("form_id", form_id)), ip=attribution.ip or None)


def reparse(
    definition: FormDefinition,
    raw: RawPayload,
    *,
    default_region: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Submission:
    """The submission a stored raw body makes, for `switchboard reprocess`. It needs the
    definition as it was when the form was sent (store a snapshot or version with the
    message); the header-borne attribution (IP, user agent) is not in the body, the posted
    `_page_url`, `_referrer` and `_utm_*` are. Raises SubmissionError like the endpoint."""
    return read_submission(
        definition, raw.content_type, raw.data, default_region=default_region, limits=limits
    )
