"""Telegram text in UTF-16 code units: entity offsets, lengths and the 4,096 limit all
count UTF-16 code units (Bot API, "MessageEntity"), not Python characters."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import MessageEntity


def utf16_len(text: str) -> int:
    """How many UTF-16 code units Telegram counts in `text`."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def readable(text: str, entities: Sequence[MessageEntity] | None) -> str:
    """The text with its formatting dropped but nothing the reader needs lost: a hidden
    link (`text_link`) becomes "label (url)". Offsets past the end of the text (seen in
    the wild) are clipped, overlapping or repeated links are kept once."""
    links = sorted(
        (e.offset, e.length, e.url)
        for e in entities or ()
        if e.type == "text_link" and e.url and e.length > 0
    )
    if not links:
        return text
    units = text.encode("utf-16-le", "surrogatepass")
    size = len(units) // 2
    out: list[str] = []
    position = 0
    for offset, length, url in links:
        if offset < position or offset >= size:
            continue
        end = min(offset + length, size)
        label = _decode(units, offset, end)
        out.append(_decode(units, position, offset))
        out.append(label if label.strip() == url else f"{label} ({url})")
        position = end
    out.append(_decode(units, position, size))
    return "".join(out)


def _decode(units: bytes, start: int, end: int) -> str:
    # "replace": a malformed offset may cut a surrogate pair; the stored text must stay
    # encodable as UTF-8.
    return units[start * 2 : end * 2].decode("utf-16-le", "replace")
