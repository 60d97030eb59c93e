"""The new part of an email reply: quoted history and signature removed (mail-parser-reply).

mail-parser-reply recognises the quote headers of Gmail and Apple Mail ("On ... wrote:"),
Thunderbird ("On <date>, <name> wrote:"), Outlook ("-----Original Message-----" and the
"From: / Sent: / To: / Subject:" block, with or without asterisks) in several languages,
plus "-- " signatures and "Sent from my ..." lines. Checked on the zapier
email-reply-parser fixtures (tests/connectors/email/test_parse_quotes.py). Known limits,
kept rather than rewritten: an *interleaved* reply (answers written between quoted
lines) keeps only the text above the first quote; a closing formula ("Thanks,") ends the
reply like a signature.

Wrapped so that the library can never fail a parse: any exception, or an empty result,
gives the whole text back.
"""

from __future__ import annotations

import logging
import re

from mailparser_reply.parser import EmailMessage

logger = logging.getLogger(__name__)

_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl")
# The reply is at the top; the library's regular expressions need not see a whole
# forwarded archive (and some of them backtrack on long inputs).
_MAX_SCAN = 64 * 1024
# Cheap test (substrings of the lower-cased text) for anything the library acts on: a
# quote marker, a quote header in one of the languages above, a separator line, a
# signature delimiter, a "sent from" line. Mail with none of these is returned as is.
_MARKERS = (
    "\n>", "wrote:", "schrieb", "a écrit", "escribió", "ha scritto", "schreef", "napisał",
    "original message", "\n--", "__", "from:", "von:", "de:", "van:", "od:", "da:",
    "sent from", "get outlook", "gesendet von", "envoyé de", "enviado desde", "inviato da",
    "verzonden",
)  # fmt: skip
_TRAILING_SEPARATOR = re.compile(r"(?:\n[ \t]*[_\-=*]{5,}[ \t]*)+\Z")


def reply_text(text: str) -> str | None:
    """The new text of a reply without quoted history or signature; None for an empty text."""
    stripped = text.strip()
    if not stripped:
        return None
    head = stripped[:_MAX_SCAN]
    lowered = head.lower()
    if not head.startswith(">") and not any(marker in lowered for marker in _MARKERS):
        return stripped
    # The quote header comes before the first quoted line: the library need not see the
    # quoted history after it (its regular expressions cost time per character).
    first_quote = head.find("\n>")
    if first_quote >= 0:
        end_of_line = head.find("\n", first_quote + 2)
        head = head[:end_of_line] if end_of_line >= 0 else head
    try:
        message = EmailMessage(text=head, languages=list(_LANGUAGES), keep_hyphen_lists=True).read()
        reply = message.replies[0].body if message.replies else ""
    except Exception:  # a third-party parser must never fail the message
        logger.warning("reply parser failed; keeping the whole text", exc_info=True)
        return stripped
    reply = _TRAILING_SEPARATOR.sub("", reply.strip()).strip()
    return reply or stripped
