"""Interface strings: Babel catalogs read at start-up, one translator per language.

Catalogs live in web/ui/locale/<lang>/LC_MESSAGES/<area>.po, one file per area of the app
(shell.po for the frame and the account pages; the inbox and the conversation add their
own). Every .po of a language is merged into one catalog, compiled in memory (no compile
step, nothing written to disk) and used through `Translator`.

Message ids are the English text. Parameters are written `{name}` and filled after
translation (`t("Use at least {n} characters.", n=8)`); the result is a plain string, so
Jinja's autoescaping escapes it like any other value, parameters included.

Strings the browser needs carry the `js` flag in the catalog (`#, js` above the msgid);
each page embeds those of its language as a JSON object in
`<script type="application/json" id="i18n">`, read by static/js/i18n.js.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from web.ui.languages import LANGUAGES, SOURCE_LANGUAGE

logger = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "locale"
# The flag that sends a message to the browser (static/js/i18n.js).
JS_FLAG = "js"


@dataclass(frozen=True, slots=True)
class Translator:
    """The interface strings of one language."""

    language: str
    direction: str  # "ltr" or "rtl"
    translations: Translations
    # msgid -> translated text of the messages flagged for the browser.
    browser: Mapping[str, str]

    def gettext(self, message: str, **params: object) -> str:
        """The translation of `message`, with `{name}` parameters filled in."""
        text = self.translations.gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: object) -> str:
        """The singular or plural form for `n` (available as `{n}`)."""
        return self.translations.ngettext(singular, plural, n).format(n=n, **params)


def read_catalog(language: str, directory: Path = LOCALE_DIR) -> Catalog:
    """Every .po file of a language merged into one catalog (sorted by file name)."""
    merged = Catalog(locale=language, domain="messages")
    folder = directory / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as file:
            part = read_po(file, locale=language)
        for message in part:
            if not message.id:
                continue  # the header
            if message.id in merged:
                logger.warning("%s: %r is also in another .po of %s", path, message.id, language)
            merged[message.id] = message
    return merged


def translator(language: str, directory: Path = LOCALE_DIR) -> Translator:
    """The translator of one language, from its catalogs."""
    catalog = read_catalog(language, directory)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    translations = Translations(fp=buffer)
    browser: dict[str, str] = {}
    for message in catalog:
        if message.id and JS_FLAG in message.flags and isinstance(message.id, str):
            text = message.string if isinstance(message.string, str) else ""
            browser[message.id] = text or message.id
    direction = Locale.parse(language).text_direction
    return Translator(language, direction, translations, browser)


def load_translators(languages: Iterable[str] = LANGUAGES) -> dict[str, Translator]:
    """A translator per interface language (read once, at start-up)."""
    return {language: translator(language) for language in languages}


def negotiate(accept_language: str, languages: Iterable[str] = LANGUAGES) -> str:
    """The best interface language for an Accept-Language header (else the source)."""
    wanted: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            # Sorted by quality, then by position: stable for equal qualities.
            wanted.append((-quality + position * 1e-6, tag))
    preferred = [tag for _, tag in sorted(wanted)]
    chosen = Locale.negotiate(preferred, list(languages), sep="-") if preferred else None
    return str(chosen) if chosen is not None else SOURCE_LANGUAGE
