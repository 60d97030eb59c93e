"""Machine-written mail: auto-replies, bulk and list mail, read receipts, and bounces.

Such mail is recorded but never answered automatically (RFC 3834 section 2: no mail
loops). A bounce is also turned into a `Bounce` naming the Message-IDs of the message(s)
that could not be delivered, so the core can mark our own outbound message failed.

Bounces come as RFC 3464 reports (multipart/report; report-type=delivery-status) or in
the older free-text formats that qmail, Exim, Postfix, Exchange, Gmail and Yahoo still
send. A free-text bounce is recognised only when the sender is a mail system
(MAILER-DAEMON, postmaster, or no address at all) *and* its subject or text has a known
bounce phrase: a person's mail titled "Mailbox size limit exceeded" is not a bounce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from connectors.email.mime_text import decode_bytes, header_text


@dataclass(frozen=True, slots=True)
class Bounce:
    """A delivery failure (or delay) notice about a message we, or someone, sent."""

    # Message-IDs (with <>) of the message(s) that bounced, from the returned
    # message/rfc822 or text/rfc822-headers part, else In-Reply-To/References.
    original_message_ids: tuple[str, ...]
    # Final-Recipient / Original-Recipient addresses when given.
    recipients: tuple[str, ...]
    # Human reason: Diagnostic-Code / Status, or the first lines of a free-text bounce.
    reason: str
    # False for delayed / "will retry" notices (Action: delayed, 4.x.x status).
    permanent: bool


_DAEMON_LOCAL_PARTS = {"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"}
_LOCAL_PART_WORD = re.compile(r"[\w.+-]+")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|delivery (?:status )?failure"
    r"|returned mail|mail delivery failed|failure notice|delivery notification"
    r"|nondeliverable|non-delivery|could not send message|delayed mail|delivery delayed"
    r"|warning: could not send",
    re.IGNORECASE,
)
_BOUNCE_BODY = re.compile(
    r"This is the qmail-send program"
    r"|This message was created automatically by mail delivery software"
    r"|This is the mail system at host"
    r"|I'm sorry to have to inform you that your message could not"
    r"|Delivery to the following recipients? (?:failed|has been delayed)"
    r"|Your message (?:wasn't|was not|couldn't be|could not be) delivered"
    r"|Message not delivered"
    r"|The following addresses? had permanent fatal errors"
    r"|Sorry, we were unable to deliver your message"
    r"|Delivery has failed to these recipients",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:auto:|auto-?reply|automatic reply|autoreply|automatische antwort|"
    r"abwesenheitsnotiz|out of (?:the )?office|r[ée]ponse automatique|"
    r"respuesta autom[áa]tica|risposta automatica|automatisch antwoord|"
    r"automatyczna odpowied[źz]|automatick[áa] odpov[ěe]ď|autosvar|"
    r"automaattinen vastaus|fuera de la oficina|absence du bureau)",
    re.IGNORECASE,
)
_READ_RECEIPT_SUBJECT = re.compile(r"^\s*(?:not )?read:", re.IGNORECASE)
_PERMANENT_STATUS = re.compile(r"\b5\.\d{1,3}\.\d{1,3}\b")
_TEMPORARY_STATUS = re.compile(r"\b4\.\d{1,3}\.\d{1,3}\b")
_DELAY_TEXT = re.compile(
    r"will (?:continue to )?(?:retry|be retried|try)|still being retried|delayed"
    r"|has not yet been delivered|could not send message for past|warning:",
    re.IGNORECASE,
)
_MESSAGE_ID_LINE = re.compile(
    r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE
)
_MSG_ID = re.compile(r"<[^<>\s]+>")
_SMTP_REPLY_LINE = re.compile(r"^.*\b[45]\d\d[ -]#?[45]\.\d{1,3}\.\d{1,3}\b.*$", re.MULTILINE)
_SMTP_PREFIX = re.compile(r"^\s*smtp\s*;\s*", re.IGNORECASE)
_MAX_REASON = 500


def is_daemon(address: str, raw_from: str | None) -> bool:
    """True for a mail system's own sender: MAILER-DAEMON, postmaster (any domain)."""
    # Every daemon local part contains "daemon" or "postmaster": without either word
    # anywhere in the sender, no candidate below can be one.
    lowered = (address + " " + (raw_from or "")).lower()
    if "daemon" not in lowered and "postmaster" not in lowered:
        return False
    candidates = [address.split("@", 1)[0]]
    if raw_from:
        candidates += _LOCAL_PART_WORD.findall(raw_from.split("@", 1)[0])[-1:]
    return any(c.lower() in _DAEMON_LOCAL_PARTS for c in candidates)


def is_auto_submitted(
    headers: dict[str, list[str]],
    content_type: str,
    subject: str | None,
    daemon: bool,
    bounce: bool,
) -> bool:
    """True for mail no one should answer automatically (RFC 3834 and common practice).

    `headers` maps lower-cased header names to their raw values."""
    if bounce or daemon:
        return True

    def value(name: str) -> str | None:
        values = headers.get(name)
        return values[0].strip().lower() if values else None

    auto = value("auto-submitted")
    if auto is not None and auto not in ("", "no"):
        return True
    for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress", "x-autogenerated"):
        flag = value(name)
        if flag is not None and flag not in ("", "no"):
            return True
    if value("precedence") in ("bulk", "junk", "list", "auto_reply"):
        return True
    if "list-id" in headers or "list-unsubscribe" in headers:
        return True
    # A null reverse-path is only for notifications and auto-replies (RFC 5321 4.5.5).
    if value("return-path") == "<>":
        return True
    if content_type in ("multipart/report", "message/delivery-status"):
        return True
    if subject:
        if _AUTO_REPLY_SUBJECT.match(subject):
            return True
        if _READ_RECEIPT_SUBJECT.match(subject) and content_type == "application/ms-tnef":
            return True
    return False


def find_bounce(
    msg: Message,
    *,
    subject: str | None,
    text: str,
    sender_is_system: bool,
    own_message_id: str | None,
    in_reply_to: str | None,
    references: tuple[str, ...],
    content_type: str | None = None,
) -> Bounce | None:
    """The delivery failure this message reports, or None when it is not a bounce.

    `content_type` is `msg.get_content_type()` when the caller has it already."""
    if content_type is None:
        content_type = msg.get_content_type()
    is_dsn = content_type == "message/delivery-status" or (
        content_type == "multipart/report"
        and str(msg.get_param("report-type", "") or "").strip().lower() == "delivery-status"
    )
    if not is_dsn and not (
        sender_is_system
        and ((subject and _BOUNCE_SUBJECT.search(subject)) or _BOUNCE_BODY.search(text[:4000]))
    ):
        return None

    ids: list[str] = []
    recipients: list[str] = []
    reasons: list[str] = []
    actions: list[str] = []
    for part in _walk(msg):
        part_type = part.get_content_type()
        if part_type == "message/delivery-status":
            _read_status(part, recipients, reasons, actions)
        elif part_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found = _MSG_ID.search(str(payload[0].get("Message-ID", "")))
                if found:
                    ids.append(found.group())
        elif part_type == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                ids += _MESSAGE_ID_LINE.findall(decode_bytes(data[:65536]))
    if not ids:
        # Free-text bounces quote the returned message's headers in their text.
        ids = [i for i in _MESSAGE_ID_LINE.findall(text) if i != own_message_id]
    if not ids:
        ids = ([in_reply_to] if in_reply_to else []) + list(references[-1:])
    if not reasons:
        smtp_line = _SMTP_REPLY_LINE.search(text[:20000])
        if smtp_line:
            reasons.append(smtp_line.group().strip())
        else:
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            reasons.append(" ".join(lines[:3]) or (subject or "delivery failed"))

    head = " ".join(reasons) + " " + (subject or "")
    if "failed" in actions:
        permanent = True
    elif "delayed" in actions:
        permanent = False
    else:
        temporary = _TEMPORARY_STATUS.search(head) and not _PERMANENT_STATUS.search(head)
        permanent = not temporary and not _DELAY_TEXT.search(subject or "")
    reason = "; ".join(dict.fromkeys(reasons))[:_MAX_REASON]
    return Bounce(
        original_message_ids=tuple(dict.fromkeys(ids)),
        recipients=tuple(dict.fromkeys(recipients)),
        reason=reason,
        permanent=permanent,
    )


def _walk(msg: Message, limit: int = 200) -> list[Message]:
    """Parts of a report, breadth first, without entering returned messages."""
    out: list[Message] = []
    queue = [msg]
    while queue and len(out) < limit:
        part = queue.pop(0)
        out.append(part)
        if part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            if isinstance(payload, list):
                queue += [p for p in payload if isinstance(p, Message)]
    return out


def _read_status(
    part: Message, recipients: list[str], reasons: list[str], actions: list[str]
) -> None:
    """Fields of a message/delivery-status part (RFC 3464): per-message then per-recipient."""
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not isinstance(block, Message):
            continue
        recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
        if recipient is None:
            continue
        address = str(recipient).split(";", 1)[-1].strip().strip("<>").strip()
        if address:
            recipients.append(address)
        actions.append(str(block.get("Action", "")).strip().lower())
        diagnostic = header_text(block.get("Diagnostic-Code"))
        status = str(block.get("Status", "")).strip()
        if diagnostic:
            diagnostic = _SMTP_PREFIX.sub("", diagnostic)
            reasons.append(f"{status} {diagnostic}".strip() if status else diagnostic)
        elif status:
            reasons.append(f"status {status}")
