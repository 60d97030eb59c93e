"""The interface languages of the agent app: each has a complete catalog under
web/ui/locale/<code>/. English is the source language."""

from __future__ import annotations

from typing import Literal

# The source language: templates and scripts are written in it.
SOURCE_LANGUAGE = "en"
# Every language a user may choose, in the order the account page lists them.
LANGUAGES: tuple[str, ...] = ("en", "fa")
# For the API schema (web/api/account_schemas.py): keep in step with LANGUAGES.
LanguageCode = Literal["en", "fa"]
