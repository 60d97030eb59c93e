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
# Cheap test for anything the library would act on: a quote marker, a quote header in
# one of the languages above, a separator line, a signature delimiter, a "sent from"
# line. Mail without any of these is returned as is, without running the library.
_MAY_QUOTE = re.compile(
    r"^[ \t]*>|^-- ?$|^[_-]{5,}|^[* ]*(?:From|Von|De|Van|Od|Da|Sent|Gesendet|Envoy)\b"
    r"|wrote:|schrieb|a écrit|escribió|ha scritto|schreef|napisał|Original Message"
    r"|Sent from|Get Outlook|Gesendet von|Envoyé de|Enviado desde|Inviato da|Verzonden",
    re.MULTILINE | re.IGNORECASE,
)
_TRAILING_SEPARATOR = re.compile(r"(?:\n[ \t]*[_\-=*]{5,}[ \t]*)+\Z")


def reply_text(text: str) -> str | None:
    """The new text of a reply without quoted history or signature; None for an empty text."""
    stripped = text.strip()
    if not stripped:
        return None
    if not _MAY_QUOTE.search(stripped):
        return stripped
    try:
        message = EmailMessage(
            text=stripped[:_MAX_SCAN], languages=list(_LANGUAGES), keep_hyphen_lists=True
        ).read()
        reply = message.replies[0].body if message.replies else ""
    except Exception:  # a third-party parser must never fail the message
        logger.warning("reply parser failed; keeping the whole text", exc_info=True)
        return stripped
    reply = _TRAILING_SEPARATOR.sub("", reply.strip()).strip()
    return reply or stripped
