"""The interface catalogs: every string the templates, pages and scripts use is in the
English and the Persian catalogs, Persian is complete, and the browser gets exactly the
strings its scripts use. Runs without a browser."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from web.ui.i18n import LOCALE_DIR, negotiate, read_catalog, translator
from web.ui.languages import LANGUAGES, SOURCE_LANGUAGE

UI = Path(__file__).resolve().parents[2] / "web" / "ui"
# t("…") or t('…') in templates, Python and JavaScript.
CALL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def used(*suffixes: str) -> set[str]:
    found = set()
    for path in UI.rglob("*"):
        if path.suffix in suffixes:
            found |= {a or b for a, b in CALL.findall(path.read_text(encoding="utf-8"))}
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_in_every_catalog(language: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="web.ui.i18n"):
        catalog = read_catalog(language)
    # Each string lives in one .po (shared ones in shell.po): a second copy is warned about.
    assert [r.getMessage() for r in caplog.records] == []
    ids = {m.id for m in catalog if m.id}
    assert used(".html", ".py", ".js") - ids == set()
    if language != SOURCE_LANGUAGE:
        assert [m.id for m in catalog if m.id and not m.string] == []
    assert (LOCALE_DIR / language).is_dir()


def test_the_browser_gets_the_scripts_strings() -> None:
    persian = translator("fa")
    assert set(persian.browser) == used(".js")
    assert persian.direction == "rtl" and translator("en").direction == "ltr"
    assert persian.gettext("Use at least {n} characters.", n=8) == "دست‌کم 8 نویسه به کار ببرید."


def test_accept_language() -> None:
    assert negotiate("fa-IR,fa;q=0.9,en;q=0.8") == "fa"
    assert negotiate("de-DE,en;q=0.5") == "en"
    assert negotiate("de;q=1,fa;q=0.2") == "fa"
    assert negotiate("") == SOURCE_LANGUAGE
