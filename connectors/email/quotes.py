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
from typing import Any

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
# The same markers grouped by a character they need: a scan for one character is far
# quicker than for a short string, and rules out its whole group in text without it.
# Markers without letters are the same in the text as written: found there, the text
# needs no lower-cased copy.
_GATES = (">", ":", "_", "-")


def _gated(markers: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (gate, group) for gate in _GATES if (group := tuple(m for m in markers if gate in m))
    )


_UNCASED = _gated(tuple(m for m in _MARKERS if m.isascii() and m.lower() == m.upper()))
_CASED = _gated(tuple(m for m in _MARKERS if m.isascii() and m.lower() != m.upper()))
_PLAIN_MARKERS = tuple(
    m
    for m in _MARKERS
    if m.isascii() and m.lower() != m.upper() and not any(gate in m for gate in _GATES)
)
_NON_ASCII_MARKERS = tuple(m for m in _MARKERS if not m.isascii())
_UNGATED_UNCASED = tuple(
    m
    for m in _MARKERS
    if m.isascii() and m.lower() == m.upper() and not any(gate in m for gate in _GATES)
)
_TRAILING_SEPARATOR = re.compile(r"(?:\n[ \t]*[_\-=*]{5,}[ \t]*)+\Z")
# The library builds its three regular expressions (header, disclaimer, signature) from
# the language tables for every message, and looks them up in `re`'s cache, which the
# stdlib's per-boundary patterns keep flushing: built once here, from the same
# languages and options, and handed to each message (an attribute the library reads).
_PATTERN_ATTRIBUTES = {
    "_header_regex": "HEADER_REGEX",
    "_disclaimers_regex": "DISCLAIMERS_REGEX",
    "_signature_regex": "SIGNATURE_REGEX",
}
_patterns: dict[str, Any] = {}


def _message(text: str) -> Any:
    """The library's message object for `text`, with the compiled patterns reused."""
    message = EmailMessage(text=text, languages=list(_LANGUAGES), keep_hyphen_lists=True)
    if _patterns:
        for attribute, pattern in _patterns.items():
            setattr(message, attribute, pattern)
    else:
        # Only what the library really built is kept: should a version build them
        # differently, each message builds its own again (slower, never wrong).
        built = {a: getattr(message, b, None) for a, b in _PATTERN_ATTRIBUTES.items()}
        if all(isinstance(p, re.Pattern) for p in built.values()):
            _patterns.update(built)
    return message


def _has_marker(head: str) -> bool:
    """Whether any of `_MARKERS` is in `head`, ignoring case."""
    # Quoted lines first: most text with a marker has one early.
    if _found(head, _UNCASED) or any(m in head for m in _UNGATED_UNCASED):
        return True
    lowered = head.lower()
    return (
        _found(lowered, _CASED)
        or any(marker in lowered for marker in _PLAIN_MARKERS)
        or (not lowered.isascii() and any(marker in lowered for marker in _NON_ASCII_MARKERS))
    )


def _found(text: str, groups: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
    for gate, markers in groups:
        if gate in text:
            for marker in markers:
                if marker in text:
                    return True
    return False


def reply_text(text: str) -> str | None:
    """The new text of a reply without quoted history or signature; None for an empty text."""
    stripped = text.strip()
    if not stripped:
        return None
    head = stripped[:_MAX_SCAN]
    if not head.startswith(">") and not _has_marker(head):
        return stripped
    # The quote header comes before the first quoted line: the library need not see the
    # quoted history after it (its regular expressions cost time per character).
    first_quote = head.find("\n>")
    if first_quote >= 0:
        end_of_line = head.find("\n", first_quote + 2)
        head = head[:end_of_line] if end_of_line >= 0 else head
    try:
        message = _message(head).read()
        reply = message.replies[0].body if message.replies else ""
    except Exception:  # a third-party parser must never fail the message
        logger.warning("reply parser failed; keeping the whole text", exc_info=True)
        return stripped
    reply = _TRAILING_SEPARATOR.sub("", reply.strip()).strip()
    return reply or stripped
