"""Building the MIME message of an outbound email reply (pure functions, no I/O).

Everything that reaches a header is cleaned first: a customer's subject or an agent's
name may hold CR/LF or other line breaks, controls, NUL or lone surrogates, and none of
them may ever start a new header line. Thread ids that are not plain msg-ids are dropped
rather than passed on.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from typing import Any

from connectors.email.config import EmailConfig
from connectors.types import Outbound

# The subject of a reply when neither the conversation nor the core names one. English
# because there is nothing else to go on; the lead may change it in one place.
NO_SUBJECT = "Re: your message"

# References is capped as common practice suggests (RFC 5322 section 3.6.4 leaves the
# length open; MUAs such as Thunderbird keep the first id, the thread root, and the
# most recent ones): at most this many ids and this many characters.
MAX_REFERENCES = 20
MAX_REFERENCES_CHARS = 2000
# A msg-id longer than this is not one any mail client made; dropping it keeps every
# header line far below the 998-byte limit of RFC 5322 section 2.1.1.
MAX_MSG_ID_CHARS = 250

MAX_SUBJECT_CHARS = 900
MAX_NAME_CHARS = 200
MAX_FILENAME_CHARS = 200

# Reply prefixes of the common mail clients in many languages ("Re:", "RE :", "Aw:",
# "Sv:", "Antw:", "Re[2]:", "回复:"...), so a reply to "Re: x" stays "Re: x".
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|odp|res|rif|ref|atb|ynt|vá|ats|απ|σχετ|отв|回复|回覆|答复|답장)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]",
    re.IGNORECASE,
)
# msg-id (RFC 5322 section 3.6.4) restricted to what can travel in a header untouched:
# atext and dots on the left, atext and dots or a [domain literal] on the right.
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~."
_MSG_ID = re.compile(rf"[{_ATEXT}]+@(?:[{_ATEXT}]+|\[[{_ATEXT}:]*\])")
_BRACKETED_ID = re.compile(rf"<([{_ATEXT}@\[\]:]+)>")
_SAFE_LOCAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CONTENT_TYPE = re.compile(r"([a-z0-9][a-z0-9!#$&^_.+-]{0,62})/([a-z0-9][a-z0-9!#$&^_.+-]{0,126})")
_WHITESPACE = re.compile(r"\s+")
_PLAIN_WORD = re.compile(r"[\x21-\x7e]{1,70}")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=^_`{|}~]+")  # atext without "?" (no "=?")


class _MessageIdListHeader(UnstructuredHeader, BaseHeader):
    """References / In-Reply-To: one msg-id per folded line, never encoded.

    The standard unstructured folding turns an id longer than a line into RFC 2047
    encoded words, which no mail client matches against a Message-ID; the ids here are
    validated plain ASCII without whitespace, so a fold between ids is always right."""

    max_count = 1

    def fold(self, *, policy: Policy) -> str:
        """The header folded with one id on each line."""
        ids = str(self).split()
        return f"{self.name}: " + f"{policy.linesep} ".join(ids) + policy.linesep


class _WireHeader(UnstructuredHeader, BaseHeader):
    """Subject, From, To: a value already in wire form, kept verbatim, folded at spaces.

    The standard header classes decode any RFC 2047 encoded word found in the text they
    are given and write the result out raw, so a customer's subject that merely contains
    "=?utf-8?b?...?=" decoding to CR LF would come out as a header line of its own; and
    they drop the quotes of a long quoted display name when folding it. The values
    given here are printable ASCII words: plain text, a quoted string, or encoded words
    made by `_encoded_words` (UTF-8 only where an address needs SMTPUTF8)."""

    max_count = 1

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        """Keep the value as given: it is never decoded."""
        kwds["parse_tree"] = None
        kwds["decoded"] = value

    def fold(self, *, policy: Policy) -> str:
        """The header folded at spaces into lines of at most 78 characters where the
        words allow (an encoded word is at most 75)."""
        lines: list[str] = []
        line = f"{self.name}:"
        has_word = False
        for word in str(self).split(" "):
            if has_word and len(line) + 1 + len(word) > 78:
                lines.append(line)
                line = ""
            line += " " + word
            has_word = True
        lines.append(line)
        return policy.linesep.join(lines) + policy.linesep


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("references", _MessageIdListHeader)
_HEADERS.map_to_type("in-reply-to", _MessageIdListHeader)
for _name in ("subject", "from", "to"):
    _HEADERS.map_to_type(_name, _WireHeader)
# SMTP line endings; 7bit so that every body part is quoted-printable or base64 and the
# message travels through servers without 8BITMIME.
POLICY = SMTP.clone(cte_type="7bit", header_factory=_HEADERS)


def compose(config: EmailConfig, outbound: Outbound) -> tuple[EmailMessage, str]:
    """Build the reply's MIME message; answers the message and its Message-ID (with <>).

    Raises ValueError only for a recipient that is not one plain address: content (text,
    names, subject, filenames, thread ids) never makes it raise."""
    recipient = envelope_address(outbound.recipient)
    from_address = envelope_address(config.from_address)
    message_id = message_id_for(config, outbound)
    message = EmailMessage(policy=POLICY)
    name = clean_header_text(outbound.sender_name or config.from_name or "", MAX_NAME_CHARS)
    message["From"] = f"{_phrase(name)} <{from_address}>" if name else from_address
    message["To"] = recipient
    message["Subject"] = _encoded_text(reply_subject(outbound))
    message["Date"] = datetime.now(UTC)
    message["Message-ID"] = message_id
    in_reply_to = _valid_msg_id(outbound.thread.in_reply_to)
    if in_reply_to is not None:
        message["In-Reply-To"] = in_reply_to
    references = thread_references(outbound.thread.references, outbound.thread.in_reply_to)
    if references:
        message["References"] = " ".join(references)
    if outbound.auto_reply:
        # RFC 3834: an automatic answer, so that auto-responders do not answer it back;
        # X-Auto-Response-Suppress is what Exchange/Outlook look at instead.
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    message.set_content(clean_body(outbound.text))
    if outbound.html is not None:
        message.add_alternative(clean_body(outbound.html), subtype="html")
    for attachment in outbound.attachments:
        maintype, subtype = _attachment_type(attachment.content_type)
        message.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=clean_filename(attachment.filename),
        )
    return message, message_id


def message_id_for(config: EmailConfig, outbound: Outbound) -> str:
    """Our Message-ID for an outbound message: on the From domain, the same on every retry."""
    local = outbound.message_id
    if not _SAFE_LOCAL.fullmatch(local):
        local = hashlib.sha256(local.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    domain = envelope_address(config.from_address).rpartition("@")[2]
    return f"<sb.{local}@{domain}>"


def reply_subject(outbound: Outbound) -> str:
    """The subject of a reply: "Re: " + the customer's latest subject, never "Re: Re:".

    Without a thread subject the core's explicit `subject` is used as given; with
    neither, NO_SUBJECT."""
    thread_subject = clean_header_text(outbound.thread.subject or "", MAX_SUBJECT_CHARS)
    if thread_subject:
        if _REPLY_PREFIX.match(thread_subject):
            return thread_subject
        return clean_header_text("Re: " + thread_subject, MAX_SUBJECT_CHARS)
    explicit = clean_header_text(outbound.subject or "", MAX_SUBJECT_CHARS)
    return explicit or NO_SUBJECT


def thread_references(references: tuple[str, ...], in_reply_to: str | None) -> list[str]:
    """The References of a reply: the valid ids of `references`, then `in_reply_to` when
    missing, without duplicates, capped to the first id (the thread's root) and the
    latest ones."""
    ids: list[str] = []
    for candidate in (*references, in_reply_to):
        msg_id = _valid_msg_id(candidate)
        if msg_id is not None and msg_id not in ids:
            ids.append(msg_id)
    if len(ids) <= 1:
        return ids
    first, rest = ids[0], ids[1:]
    kept: list[str] = []
    size = len(first)
    for msg_id in reversed(rest):
        if len(kept) + 1 >= MAX_REFERENCES or size + 1 + len(msg_id) > MAX_REFERENCES_CHARS:
            break
        kept.append(msg_id)
        size += 1 + len(msg_id)
    return [first, *reversed(kept)]


def clean_header_text(value: str, limit: int) -> str:
    """Text safe for a header: line breaks, controls and surrogates become spaces,
    whitespace runs collapse, and the result is cut to `limit` characters."""
    cleaned = "".join(" " if _unsafe_in_header(char) else char for char in value)
    return _WHITESPACE.sub(" ", cleaned).strip()[:limit].strip()


def clean_body(value: str) -> str:
    """Body text that encodes as UTF-8 and holds no NUL (RFC 5322 section 2.3)."""
    return "".join("\ufffd" if char == "\0" or _is_surrogate(char) else char for char in value)


def clean_filename(value: str) -> str:
    """A display file name: its last path part, no controls, never empty."""
    base = re.split(r"[/\\]", value)[-1]
    # "=?" goes: the email package decodes encoded words inside parameters and writes
    # the result out raw, so "=?utf-8?b?...?=" could smuggle CR LF into the part header.
    base = base.replace("=?", "=")
    return clean_header_text(base, MAX_FILENAME_CHARS).lstrip(". ") or "attachment"


def envelope_address(value: str) -> str:
    """A plain address for the envelope and headers, with an ASCII (IDNA) domain when the
    domain can be so encoded; raises ValueError when `value` is not one plain address."""
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or any(char.isspace() or _unsafe_in_header(char) for char in address)
        or any(char in '<>(),;:"[]\\' for char in domain)
        or len(address) > 320
    ):
        raise ValueError(f"not a plain email address: {address!r}")
    # Left as UTF-8 when IDNA refuses it: only an SMTPUTF8 server takes it, and the send
    # says so.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    try:
        parsed = Address(addr_spec=f"{local}@{domain}")
    except (ValueError, IndexError, HeaderParseError) as err:
        raise ValueError(f"not a plain email address: {address!r}") from err
    return parsed.addr_spec


def _encoded_text(text: str) -> str:
    """Unstructured text (RFC 5322 section 3.2.5) as it goes in a header: as is when it
    is plain printable ASCII in words that fit a line, else RFC 2047 encoded words, so
    that text which merely looks like an encoded word arrives as the text it is."""
    if text.isascii() and "=?" not in text and all(map(_PLAIN_WORD.fullmatch, text.split(" "))):
        return text
    return _encoded_words(text)


def _phrase(name: str) -> str:
    """A display name as a phrase (RFC 5322 section 3.2.5): atoms as they are, other
    printable ASCII as a quoted string, anything else as encoded words (RFC 2047
    section 5(3))."""
    if all(map(_ATOM.fullmatch, name.split(" "))):
        return name
    if name.isascii() and name.isprintable() and "=?" not in name:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encoded_words(name)


def _encoded_words(text: str) -> str:
    # Header picks base64 or a Q encoding safe in phrases, and splits between characters.
    return " ".join(Header(text, "utf-8").encode(linesep="\n", maxlinelen=76).split())


def _valid_msg_id(value: str | None) -> str | None:
    """`value` as "<id>" when it is one plain msg-id (a bare "left@right" is accepted and
    bracketed); None otherwise."""
    if value is None:
        return None
    text = value.strip()
    bracketed = _BRACKETED_ID.fullmatch(text)
    inner = bracketed.group(1) if bracketed else text
    if not _MSG_ID.fullmatch(inner) or len(inner) + 2 > MAX_MSG_ID_CHARS:
        return None
    return f"<{inner}>"


def _attachment_type(content_type: str) -> tuple[str, str]:
    match = _CONTENT_TYPE.fullmatch(content_type.strip().lower().split(";")[0].strip())
    # multipart/* and message/* must not be base64-encoded (RFC 2046 section 5): such
    # files go as opaque bytes, keeping their file name.
    if match is None or match.group(1) in ("multipart", "message"):
        return "application", "octet-stream"
    return match.group(1), match.group(2)


def _unsafe_in_header(char: str) -> bool:
    # Cc: controls incl. CR, LF, NUL, U+0085; Zl/Zp: U+2028/U+2029, which str.splitlines
    # (and so the email package) treats as line breaks; Cs: lone surrogates.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs")


def _is_surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"
