"""Splitting a long reply into messages Telegram accepts (4,096 UTF-16 code units each)."""

from __future__ import annotations

import re

from connectors.telegram.text import utf16_len

MAX_MESSAGE_UNITS = 4096

# Boundaries to split at, best first: between paragraphs, after a sentence, between words.
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),
    re.compile(r"(?<=[.!?…])\s+"),
    re.compile(r"\s+"),
)


def split_text(text: str, limit: int = MAX_MESSAGE_UNITS) -> list[str]:
    """`text` as parts of at most `limit` UTF-16 code units, split at a paragraph break
    when one fits, else after a sentence, else between words, else (one endless word)
    at the limit itself, never inside a surrogate pair. Whitespace at the cuts is dropped;
    an empty or blank text gives no parts."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            parts.append(rest)
            break
        head, rest = _cut(rest, limit)
        parts.append(head)
        rest = rest.lstrip()
    return parts


def _cut(text: str, limit: int) -> tuple[str, str]:
    window = _prefix_within(text, limit)
    for boundary in _BOUNDARIES:
        cut = None
        for match in boundary.finditer(window):
            if match.start() > 0:
                cut = match
        if cut is not None:
            return window[: cut.start()].rstrip(), text[cut.end() :]
    return window, text[len(window) :]


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of `text` of at most `limit` UTF-16 code units. Python strings
    index by code point, so a prefix never ends inside a surrogate pair."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text
