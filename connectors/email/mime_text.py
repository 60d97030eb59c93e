"""Bytes and header words of real mail turned into text, whatever the charset label says.

Mail declares charsets wrongly, names ones Python spells differently, or declares none
and sends 8-bit bytes anyway. `decode_bytes` tries the declared charset (through the
aliases below), then UTF-8, then windows-1252, and never raises: windows-1252 with
`errors="replace"` accepts every byte string. Bytes that are mostly valid UTF-8 are read
as UTF-8 with replacement characters where they are broken. A detector (charset-normalizer) was left
out on purpose: on short mail bodies it guesses wrong more often than the UTF-8 then
windows-1252 rule, and it costs more than parsing the whole message.
"""

from __future__ import annotations

import binascii
import codecs
import re
from email.header import Header, decode_header
from functools import lru_cache

# Labels found in real mail that name a superset Python knows under another name, or
# a Microsoft extension sent under the standard's label (WHATWG Encoding Standard does
# the same mapping for browsers).
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "euc-kr": "cp949",
    "x-windows-949": "cp949",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "iso-8859-1": "cp1252",  # browsers and mailers write windows-1252 under this label
    "latin1": "cp1252",
    "us-ascii": "utf-8",  # 8-bit bytes under a us-ascii label are UTF-8 far more often
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "cp-850": "cp850",
}

# Codecs whose encoded form is 7-bit: ASCII bytes are not the same text under them.
_SEVEN_BIT = {"utf-7", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_kr", "hz"}


@lru_cache(maxsize=256)
def codec_for(label: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None when Python has none."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    # RFC 2231 lets a language ride along: "us-ascii*en".
    name = name.split("*", 1)[0]
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode `data` declared as `charset`; falls back to UTF-8, then windows-1252. Never raises."""
    codec = codec_for(charset)
    if codec not in _SEVEN_BIT and data.isascii():
        return data.decode("ascii")
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            if codec.startswith("iso2022_jp"):
                text = _decode_cp50220(data)
                if text is not None:
                    return text
        except (LookupError, ValueError):  # codecs that fail oddly on odd input
            pass
    if codec != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if codec is not None and codec != "utf-8":
        return data.decode(codec, errors="replace")
    # Mostly UTF-8 with a few broken bytes (a truncated name, one stray byte) reads
    # better as UTF-8 with replacement characters than as windows-1252 mojibake.
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    if len(text) - len(text.encode("ascii", "ignore")) - broken > 4 * broken:
        return text
    return data.decode("cp1252", errors="replace")


_JIS_ESCAPE = re.compile(rb"\x1b(\$@|\$B|\$\(D|\(B|\(J|\(I)")


def _decode_cp50220(data: bytes) -> str | None:
    """ISO-2022-JP as Microsoft writes it (CP50220/CP50221): JIS X 0208 rows extended with
    NEC and IBM characters (e.g. "№", circled digits) that strict ISO-2022-JP decoders
    refuse. Each JIS pair maps arithmetically onto Shift_JIS, which cp932 decodes
    including those extensions."""
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in _JIS_ESCAPE.finditer(data):
        out += _jis_run(data[pos : match.start()], mode)
        mode = match.group(1)
        pos = match.end()
    out += _jis_run(data[pos:], mode)
    try:
        return bytes(out).decode("cp932")
    except UnicodeDecodeError:
        return None


def _jis_run(run: bytes, mode: bytes) -> bytes:
    if mode in (b"(B", b"(J"):
        return run
    if mode == b"(I":  # JIS X 0201 half-width katakana
        return bytes(b | 0x80 for b in run)
    out = bytearray()
    for i in range(0, len(run) - 1, 2):
        j1, j2 = run[i], run[i + 1]
        if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
            out += b"?"
            continue
        s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
        s2 = (j2 + (0x1F if j2 <= 0x5F else 0x20)) if j1 % 2 else j2 + 0x7E
        out += bytes((s1, s2))
    return bytes(out)


def unmangle(value: str) -> str:
    """Header text as the stdlib hands it (raw 8-bit bytes as surrogate escapes) made
    into real text: the bytes are decoded as UTF-8, else windows-1252."""
    if value.isascii():
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return decode_bytes(raw, None)


# RFC 2047 encoded word; the charset may carry an RFC 2231 language ("utf-8*en").
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]*")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words in a header value, tolerantly.

    The stdlib's `email.header.decode_header` raises on bad base64 padding, drops
    encoded words glued to other text, and gives up on unknown charsets, all common in
    real mail. Here: adjacent words (only whitespace between, which RFC 2047 says to
    drop) of one charset are joined before decoding, so a multi-byte character split
    across two words survives; bad padding is repaired; an unknown charset falls back
    like a body would; raw 8-bit bytes are decoded first (`unmangle`).
    """
    value = unmangle(value)
    if "=?" not in value:
        return value
    pieces: list[str] = []
    pos = 0
    pending: bytearray | None = None
    pending_charset = ""
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset, kind, payload = match.groups()
        charset = charset.lower()
        data = _word_bytes(kind, payload)
        adjacent = pending is not None and _BETWEEN_WORDS.fullmatch(between) is not None
        if pending is not None and adjacent and charset == pending_charset:
            pending += data
        else:
            if pending is not None:
                pieces.append(decode_bytes(bytes(pending), pending_charset))
            if not adjacent:
                pieces.append(between)
            pending = bytearray(data)
            pending_charset = charset
        pos = match.end()
    if pending is not None:
        pieces.append(decode_bytes(bytes(pending), pending_charset))
    pieces.append(value[pos:])
    return "".join(pieces)


def _word_bytes(kind: str, payload: str) -> bytes:
    raw = payload.encode("ascii", "replace")
    if kind in "bB":
        raw = raw.rstrip(b"=")
        raw += b"=" * (-len(raw) % 4)
        try:
            return binascii.a2b_base64(raw)
        except binascii.Error:
            # A length of 4n+1 is never valid base64: drop the stray character.
            try:
                return binascii.a2b_base64(raw.rstrip(b"=")[:-1] + b"==")
            except binascii.Error:
                return payload.encode("ascii", "replace")
    raw = raw.replace(b"_", b" ")
    return _QP_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FOLD = re.compile(r"\s*[\r\n]+\s*")


def header_text(value: str | Header | None) -> str | None:
    """A header value as one line of display text: unfolded, decoded, trimmed; None if empty."""
    if value is None:
        return None
    if isinstance(value, Header):
        # compat32 hands raw 8-bit header bytes over as a Header of unknown charset.
        value = "".join(
            part if isinstance(part, str) else decode_bytes(part, charset)
            for part, charset in decode_header(value)
        )
    text = decode_words(_FOLD.sub(" ", value) if "\n" in value or "\r" in value else value)
    if "\n" in text or "\r" in text:  # decoded words may carry line breaks of their own
        text = _FOLD.sub(" ", text)
    text = _CONTROL.sub("", text).strip()
    return text or None
