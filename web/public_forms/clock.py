"""The clock of the public form endpoints: one function, so tests can move time
(render tokens are refused when sent too fast or too late)."""

from __future__ import annotations

from datetime import datetime

from timeline.models import utcnow


def now() -> datetime:
    """Now, timezone-aware. Callers look it up as `clock.now()` so a test's monkeypatch
    of this module attribute reaches them."""
    return utcnow()
