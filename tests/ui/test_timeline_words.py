"""Every kind of timeline event has words in the interface (static/js/timeline_text.js),
so the contact panel and the contact page never show a raw kind like
"conversation.reopened". Runs without a browser."""

from __future__ import annotations

import re
from pathlib import Path

from inbox.webhook_kinds import EVENT_KINDS
from web.ui.i18n import translator

SCRIPT = Path(__file__).resolve().parents[2] / "web" / "ui" / "static" / "js" / "timeline_text.js"
ENTRY = re.compile(r'^\s*"([a-z_.]+)": t\("([^"]+)"\),$', re.MULTILINE)


def test_every_timeline_kind_has_words_in_both_languages() -> None:
    words = dict(ENTRY.findall(SCRIPT.read_text(encoding="utf-8")))
    assert set(EVENT_KINDS) - set(words) == set()
    persian = translator("fa")
    # The browser gets each of them, translated.
    assert {kind: text for kind, text in words.items() if text not in persian.browser} == {}
    assert all(persian.browser[text] != text for text in words.values())
