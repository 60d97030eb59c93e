"""The API's errors in the language of the page that called it (errors.ERROR_WORDING_KEY).

Only for the web app's own calls (a request signed in by the session cookie): a script
there shows `fields` next to the inputs, so a Persian page must not show pydantic's
English. A validation reason is worded from its error type and context; any other
message is looked up as it stands (the catalog has the common ones) and kept in English
when the catalog does not know it. Token clients always get the API's English.
"""

from __future__ import annotations

import logging

from aiohttp import web

from web.errors import ApiError, Reason
from web.sessions import SESSION_COOKIE_KEY
from web.ui.i18n import Translator
from web.ui.languages import SOURCE_LANGUAGE
from web.ui.render import translator_of

logger = logging.getLogger(__name__)


def t(message: str) -> str:
    """Marks a catalog string (tests/ui/test_catalogs.py finds it); translated later."""
    return message


_WHOLE_NUMBER = t("Enter a whole number.")
_NUMBER = t("Enter a number.")
_YES_NO = t("Choose yes or no.")
_CHOICE = t("Choose one of: {expected}.")
_ID = t("Not a valid id.")
_URL = t("Enter a full web address, e.g. https://example.com.")
_DATETIME = t("Enter a date and time.")
_DATE = t("Enter a date.")
_TIME = t("Enter a time.")
_KIND = t("Not the expected kind of value.")

# pydantic error type -> the message, with the error's context as parameters.
BY_TYPE: dict[str, str] = {
    "missing": t("Required."),
    "string_too_short": t("At least {min_length} characters."),
    "string_too_long": t("At most {max_length} characters."),
    "too_short": t("At least {min_length} items."),
    "too_long": t("At most {max_length} items."),
    "greater_than": t("Must be greater than {gt}."),
    "greater_than_equal": t("Must be {ge} or more."),
    "less_than": t("Must be less than {lt}."),
    "less_than_equal": t("Must be {le} or less."),
    "string_type": t("Enter text."),
    "string_pattern_mismatch": t("Not in the expected format."),
    "extra_forbidden": t("Not a known field."),
    "json_invalid": t("Not valid JSON."),
    "int_parsing": _WHOLE_NUMBER,
    "int_type": _WHOLE_NUMBER,
    "int_from_float": _WHOLE_NUMBER,
    "float_parsing": _NUMBER,
    "float_type": _NUMBER,
    "decimal_parsing": _NUMBER,
    "decimal_type": _NUMBER,
    "bool_parsing": _YES_NO,
    "bool_type": _YES_NO,
    "enum": _CHOICE,
    "literal_error": _CHOICE,
    "uuid_parsing": _ID,
    "uuid_type": _ID,
    "url_parsing": _URL,
    "url_scheme": _URL,
    "url_type": _URL,
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "datetime_type": _DATETIME,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_type": _DATE,
    "time_parsing": _TIME,
    "time_type": _TIME,
    "list_type": _KIND,
    "dict_type": _KIND,
    "model_type": _KIND,
    "model_attributes_type": _KIND,
}

_LENGTHS = frozenset({"too_long", "too_short"})

# Messages of the API's own (not pydantic's), looked up as they stand.
MESSAGES = (t("invalid input"), t("not found"))


def word_error(request: web.Request, err: ApiError) -> tuple[str, dict[str, str]]:
    """The error's message and fields as the calling page's user reads them."""
    if request.get(SESSION_COOKIE_KEY) is None:
        return err.message, err.fields
    translator = translator_of(request)
    if translator.language == SOURCE_LANGUAGE:
        return err.message, err.fields
    fields = {}
    for path, english in err.fields.items():
        reasons = err.reasons.get(path)
        if reasons:
            fields[path] = "; ".join(_reason(translator, reason) for reason in reasons)
        else:
            fields[path] = translator.gettext(english)
    return translator.gettext(err.message), fields


def _reason(translator: Translator, reason: Reason) -> str:
    # A length checked after a validator is reported as "too_long" even for a string.
    kind = f"string_{reason.type}" if reason.text and reason.type in _LENGTHS else reason.type
    wording = BY_TYPE.get(kind)
    if wording is None:
        # A validator's own sentence (value_error), or a type we do not word.
        return translator.gettext(reason.message)
    try:
        return translator.gettext(wording).format(**{k: str(v) for k, v in reason.ctx.items()})
    except (KeyError, IndexError, ValueError):
        logger.warning("no wording of %s with context %r", reason.type, reason.ctx)
        return reason.message
