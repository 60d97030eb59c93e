"""Cleaning of what a visitor typed: control characters out, line ends normalized."""

from __future__ import annotations

import re

# C0 controls except tab and line ends, DEL, and C1 controls: never typed by a person, and
# NUL in particular breaks PostgreSQL text columns.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\n\u2028\u2029]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(value: str, *, multiline: bool) -> str:
    """`value` without control characters and surrounding space; CR LF and CR become LF in
    multi-line text, and line breaks and tabs one space in single-line text."""
    text = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    if not multiline:
        text = _LINE_BREAKS.sub(" ", text)
    return text.strip()


def has_surrogates(value: str) -> bool:
    """Whether `value` holds lone surrogates (JSON "\\ud800"): not encodable as UTF-8."""
    return _SURROGATE.search(value) is not None


def clean_line(value: str, limit: int) -> str:
    """A single-line value from an untrusted header or hidden field, cut to `limit`
    characters; lone surrogates dropped."""
    return _SURROGATE.sub("", clean_text(value, multiline=False))[:limit]
