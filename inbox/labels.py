"""Conversation labels: what a label may be, and its one normalized spelling."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_LABEL_LENGTH = 50
MAX_LABELS = 20  # per conversation


class LabelError(ValueError):
    """A label that cannot be stored; the message says why."""


def normalize_label(raw: str) -> str:
    """The label as stored: trimmed and lower-case, 1-50 characters, no control or
    format characters (they would make two labels look alike, or break a line)."""
    label = raw.strip().lower()
    if not label:
        raise LabelError("a label must not be empty")
    if len(label) > MAX_LABEL_LENGTH:
        raise LabelError(f"a label has at most {MAX_LABEL_LENGTH} characters")
    # Cc: control characters (NUL, newlines, tabs...); Cf: invisible format characters
    # (zero-width spaces, direction overrides); Zl/Zp: line and paragraph separators.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in label):
        raise LabelError("a label must not contain control or invisible characters")
    return label


def normalize_labels(raw: Iterable[str]) -> frozenset[str]:
    """A set of normalized labels (duplicates after normalizing are one)."""
    return frozenset(normalize_label(value) for value in raw)
