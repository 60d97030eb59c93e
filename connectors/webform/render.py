"""The hosted form page (GET /forms/{key}) and its thank-you page, rendered with Jinja2.

Works without JavaScript and passes a strict Content-Security-Policy: the page has no
script at all and no style attributes; its few CSS rules sit in one <style> element that
carries a per-response nonce. The endpoint makes the nonce (`new_nonce()`), passes it to
`render_form`/`render_thanks`, and sends `content_security_policy(definition, nonce)` as the
header. Every value that came from an admin or a visitor goes through autoescaping.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from connectors.webform.definition import FieldType, FormDefinition, FormField, MapsTo
from connectors.webform.submission import TOKEN_FIELD

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

FORM_CSS = """
body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;padding:1rem;color:#1b1b1b}
main{max-width:36rem;margin:0 auto}
.sb-field{margin:0 0 1rem}
.sb-field label{display:block;font-weight:600}
.sb-field--check label{display:inline;font-weight:400}
input,select,textarea{font:inherit;box-sizing:border-box;max-width:100%}
input[type=text],input[type=email],input[type=tel],select,textarea{width:100%;padding:.4rem}
textarea{min-height:8rem}
.sb-help{color:#555;margin:.1rem 0}
.sb-error{color:#b00020;font-weight:600;margin:.1rem 0}
[aria-invalid=true]{border:2px solid #b00020}
.sb-error-summary{border:3px solid #b00020;padding:.5rem 1rem;margin:0 0 1rem}
.sb-error-summary:focus{outline:3px solid #ffbf47}
.sb-hp{position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
button{font:inherit;padding:.5rem 1.5rem}
""".strip()

_INPUT_TYPES = {
    FieldType.TEXT: "text",
    FieldType.EMAIL: "email",
    FieldType.PHONE: "tel",
    FieldType.FILE: "file",
    FieldType.CHECKBOX: "checkbox",
}
_AUTOCOMPLETE = {MapsTo.NAME: "name", MapsTo.EMAIL: "email", MapsTo.PHONE: "tel"}


@dataclass(frozen=True, slots=True)
class OptionView:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True, slots=True)
class FieldView:
    """What the template needs of one field, worked out here rather than in Jinja."""

    id: str
    name: str
    label: str
    kind: str  # "select", "textarea" or an <input> type
    required: bool
    value: str
    checked: bool
    error: str | None
    help_text: str | None
    placeholder: str | None
    maxlength: int | None
    autocomplete: str | None
    accept: str | None
    options: tuple[OptionView, ...]

    @property
    def help_id(self) -> str:
        return f"{self.id}-help"

    @property
    def error_id(self) -> str:
        return f"{self.id}-error"

    @property
    def described_by(self) -> str:
        ids = [self.help_id] if self.help_text else []
        if self.error:
            ids.append(self.error_id)
        return " ".join(ids)


def new_nonce() -> str:
    """A fresh CSP nonce for one response."""
    return secrets.token_urlsafe(16)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(definition: FormDefinition, nonce: str) -> str:
    """The Content-Security-Policy header for the hosted pages. `form-action` names the
    redirect target too, since browsers apply it to the redirect after the post; framing
    is allowed to the form's own origins only."""
    form_action = "'self'" + (
        f" {_origin(definition.redirect_url)}" if definition.redirect_url else ""
    )
    ancestors = " ".join(("'self'", *definition.allowed_origins))
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; "
        f"form-action {form_action}; base-uri 'none'; frame-ancestors {ancestors}"
    )


def _view(field: FormField, value: str, error: str | None) -> FieldView:
    kind = {FieldType.SELECT: "select", FieldType.TEXTAREA: "textarea"}.get(
        field.type, _INPUT_TYPES.get(field.type, "text")
    )
    text_like = field.type not in (FieldType.FILE, FieldType.CHECKBOX, FieldType.SELECT)
    return FieldView(
        id=f"f-{field.name}",
        name=field.name,
        label=field.label,
        kind=kind,
        required=field.required,
        value="" if field.type is FieldType.FILE else value,
        checked=field.type is FieldType.CHECKBOX and value.lower() in ("on", "true", "1", "yes"),
        error=error,
        help_text=field.help_text,
        placeholder=field.placeholder,
        maxlength=field.limit if text_like else None,
        autocomplete=_AUTOCOMPLETE.get(field.mapping) if field.mapping else None,
        accept=",".join(field.accepted_types) if field.type is FieldType.FILE else None,
        options=tuple(OptionView(o.value, o.label, o.value == value) for o in field.options),
    )


def render_form(
    definition: FormDefinition,
    *,
    action_url: str,
    nonce: str,
    token: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    page_url: str | None = None,
    referrer: str | None = None,
) -> str:
    """The hosted form page. `values` and `errors` show a refused submission again
    (InvalidSubmission.values and .fields); `notice` is a message for the whole form (a
    spam check's, say). `page_url`/`referrer` (the GET's own URL and Referer) are posted
    back as hidden fields for attribution."""
    values = values or {}
    errors = errors or {}
    fields = [_view(f, values.get(f.name, ""), errors.get(f.name)) for f in definition.fields]
    return _ENV.get_template("form.html").render(
        form=definition,
        fields=fields,
        action_url=action_url,
        nonce=nonce,
        css=FORM_CSS,
        token=token,
        token_field=TOKEN_FIELD,
        notice=notice,
        has_errors=any(f.error for f in fields),
        page_url=page_url,
        referrer=referrer,
        enctype="multipart/form-data" if definition.has_files else None,
        lang=definition.language or "en",
    )


def render_thanks(definition: FormDefinition, *, nonce: str, message: str | None = None) -> str:
    """The page shown after a successful post (without a redirect URL)."""
    return _ENV.get_template("thanks.html").render(
        form=definition,
        message=message or definition.success_message,
        nonce=nonce,
        css=FORM_CSS,
        lang=definition.language or "en",
    )
