"""The embeddable form: the script (GET /forms/{key}/embed.js) and the public description
of a form it renders from (GET /forms/{key}/form.json, sent with `Cache-Control: no-store`
since it carries a fresh render token, and with CORS for the form's allowed origins).

The description holds what a browser needs to draw and post the form and nothing internal:
no channel or team id, no allowed origins, no field mappings (only autocomplete hints).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from connectors.webform.definition import FieldType, FormDefinition, FormField, MapsTo
from connectors.webform.submission import TOKEN_FIELD

DESCRIPTION_VERSION = 1
_CONFIG_PLACEHOLDER = "/*SWITCHBOARD_CONFIG*/null"
_AUTOCOMPLETE = {MapsTo.NAME: "name", MapsTo.EMAIL: "email", MapsTo.PHONE: "tel"}


@cache
def _script_source() -> str:
    return (Path(__file__).parent / "static" / "embed.js").read_text(encoding="utf-8")


def script_json(value: object) -> str:
    """JSON that is also safe inside a <script> element and in any JavaScript context:
    no "</script>", no HTML comment openers, no raw line separators."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def form_urls(public_base_url: str, key: str) -> dict[str, str]:
    """The public URLs of a form under the installation's public URL."""
    base = f"{public_base_url.rstrip('/')}/forms/{quote(key, safe='')}"
    return {
        "page": base,
        "submit": base,
        "description": f"{base}/form.json",
        "script": f"{base}/embed.js",
    }


def embed_script(public_base_url: str, key: str) -> str:
    """The script for one form: static code with the form's key and description URL."""
    urls = form_urls(public_base_url, key)
    config = script_json({"key": key, "descriptionUrl": urls["description"]})
    return _script_source().replace(_CONFIG_PLACEHOLDER, config, 1)


def _field(field: FormField) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": field.name,
        "label": field.label,
        "type": field.type.value,
        "required": field.required,
        "help_text": field.help_text,
        "placeholder": field.placeholder,
        "autocomplete": _AUTOCOMPLETE.get(field.mapping) if field.mapping else None,
    }
    if field.type is FieldType.SELECT:
        described["options"] = [{"value": o.value, "label": o.label} for o in field.options]
    if field.type is FieldType.FILE:
        described["accept"] = list(field.accepted_types)
        described["max_bytes"] = field.file_limit
    elif field.type is not FieldType.CHECKBOX:
        described["max_length"] = field.limit
    return described


def public_description(
    definition: FormDefinition, token: str | None, *, submit_url: str
) -> dict[str, Any]:
    """The form as the embed script (or any client) sees it."""
    return {
        "version": DESCRIPTION_VERSION,
        "name": definition.name,
        "description": definition.description,
        "language": definition.language,
        "submit_url": submit_url,
        "submit_label": definition.submit_label,
        "encoding": "multipart" if definition.has_files else "json",
        "token": token,
        "token_field": TOKEN_FIELD,
        "honeypot_field": definition.honeypot_field,
        "fields": [_field(f) for f in definition.fields],
        "success": {
            "message": definition.success_message,
            "redirect_url": definition.redirect_url,
        },
    }
