"""A web form's definition: what admins post to /api/v1/forms, validated before it is stored.

The shape DESIGN.md fixes is {"name", "channel_id", "fields": [{"name", "label", "type",
"required", "maps_to"}]}; everything else here is an addition with a default. Definitions are
checked once, here, so the submission parser, the renderer and the embed script can trust
every name, type and option they read.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_FIELDS = 50
MAX_OPTIONS = 200
MAX_LABEL = 200
MAX_TEXT_LIMIT = 20_000  # characters: the largest max_length a field may ask for
MAX_FILE_BYTES = 10 * 1024 * 1024  # per file field, whatever the definition asks
DEFAULT_FILE_BYTES = 5 * 1024 * 1024
MAX_ORIGINS = 50
MAX_URL = 2_000

# Browsers submit these names; ids in the hosted page derive from them, so they stay plain.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
# A BCP 47 tag in its common shape (language, script, region, variants); not a registry check.
LANGUAGE_PATTERN = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}$")
# type/subtype, or type/* ; parameters are never part of an accept entry.
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+\-]"
ACCEPT_PATTERN = re.compile(rf"^{_TOKEN}{{0,63}}/(?:\*|{_TOKEN}{{0,126}})$")

# Single-line and multi-line defaults: long enough for real people, short enough for bots.
DEFAULT_MAX_LENGTH: dict[str, int] = {
    "text": 500,
    "email": 254,  # RFC 5321 path limit
    "phone": 64,
    "textarea": 10_000,
    "select": 500,
    "checkbox": 20,
    "file": 255,  # the file name
}


class FieldType(enum.StrEnum):
    """What a form field collects."""

    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    TEXTAREA = "textarea"
    SELECT = "select"
    CHECKBOX = "checkbox"
    FILE = "file"


class MapsTo(enum.StrEnum):
    """The contact properties a field can feed (`attribute:<key>` is the open-ended one)."""

    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    MESSAGE = "message"


# Which field types may feed which contact property: an email identity only from an email
# field (so it was syntax-checked), a phone only from a phone field, names and messages from
# free text.
_MAPPING_TYPES: dict[MapsTo, frozenset[FieldType]] = {
    MapsTo.NAME: frozenset({FieldType.TEXT}),
    MapsTo.EMAIL: frozenset({FieldType.EMAIL}),
    MapsTo.PHONE: frozenset({FieldType.PHONE}),
    MapsTo.MESSAGE: frozenset({FieldType.TEXT, FieldType.TEXTAREA}),
}
ATTRIBUTE_PREFIX = "attribute:"

# Types a wildcard accept entry ("*/*", "text/*") never lets through: served back to an
# agent's browser they can run script. Listing one exactly is the admin's explicit choice.
SCRIPTABLE_TYPES = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml"})
DEFAULT_ACCEPT = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)


class FieldOption(BaseModel):
    """One choice of a select field; a bare string in the input means value == label."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    value: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1, max_length=MAX_LABEL)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"value": data, "label": data}
        if isinstance(data, dict) and "label" not in data and "value" in data:
            return {**data, "label": data["value"]}
        return data


class FormField(BaseModel):
    """One field of a form."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    name: str
    label: str = Field(min_length=1, max_length=MAX_LABEL)
    type: FieldType = FieldType.TEXT
    required: bool = False
    maps_to: str | None = None
    help_text: str | None = Field(default=None, max_length=500)
    placeholder: str | None = Field(default=None, max_length=MAX_LABEL)
    # Characters for text-like fields; None: the type's default (DEFAULT_MAX_LENGTH).
    max_length: int | None = Field(default=None, ge=1, le=MAX_TEXT_LIMIT)
    options: tuple[FieldOption, ...] = ()  # select only
    accept: tuple[str, ...] = ()  # file only: content types, "image/*" allowed; () = defaults
    max_bytes: int | None = Field(default=None, ge=1, le=MAX_FILE_BYTES)  # file only

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                "must start with a letter and use only letters, digits, '_' and '-' "
                "(at most 64 characters)"
            )
        return value

    @field_validator("maps_to")
    @classmethod
    def _known_mapping(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(ATTRIBUTE_PREFIX):
            key = value[len(ATTRIBUTE_PREFIX) :]
            if not NAME_PATTERN.fullmatch(key):
                raise ValueError(
                    "attribute keys start with a letter and use only letters, digits, "
                    "'_' and '-' (at most 64 characters)"
                )
            return value
        if value not in {m.value for m in MapsTo}:
            raise ValueError("must be name, email, phone, message, attribute:<key> or null")
        return value

    @field_validator("accept", mode="before")
    @classmethod
    def _lower_accept(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(v.strip().lower() if isinstance(v, str) else v for v in value)
        return value

    @field_validator("accept")
    @classmethod
    def _accept_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 50:
            raise ValueError("at most 50 content types")
        for entry in value:
            if not ACCEPT_PATTERN.fullmatch(entry) or entry.startswith("*"):
                raise ValueError(f"{entry!r} is not a content type such as image/png or image/*")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is FieldType.SELECT:
            if not self.options:
                raise ValueError("a select field needs options")
            if len(self.options) > MAX_OPTIONS:
                raise ValueError(f"at most {MAX_OPTIONS} options")
            values = [o.value for o in self.options]
            if len(set(values)) != len(values):
                raise ValueError("option values must be unique")
        elif self.options:
            raise ValueError("options apply to select fields only")
        if self.type is not FieldType.FILE and (self.accept or self.max_bytes is not None):
            raise ValueError("accept and max_bytes apply to file fields only")
        if self.maps_to is not None:
            mapping = self.mapping
            if mapping is not None and self.type not in _MAPPING_TYPES[mapping]:
                allowed = ", ".join(sorted(t.value for t in _MAPPING_TYPES[mapping]))
                raise ValueError(f"maps_to {mapping.value!r} needs a field of type {allowed}")
            if mapping is None and self.type is FieldType.FILE:
                raise ValueError("a file field cannot map to an attribute")
        return self

    @property
    def mapping(self) -> MapsTo | None:
        """The contact property this field feeds; None for attributes and unmapped fields."""
        if self.maps_to is None or self.maps_to.startswith(ATTRIBUTE_PREFIX):
            return None
        return MapsTo(self.maps_to)

    @property
    def attribute(self) -> str | None:
        """The custom attribute key this field feeds, if any."""
        if self.maps_to is not None and self.maps_to.startswith(ATTRIBUTE_PREFIX):
            return self.maps_to[len(ATTRIBUTE_PREFIX) :]
        return None

    @property
    def limit(self) -> int:
        """The most characters a value may have (for a file: its name)."""
        return self.max_length or DEFAULT_MAX_LENGTH[self.type.value]

    @property
    def file_limit(self) -> int:
        """The most bytes an uploaded file may have (file fields)."""
        return self.max_bytes or DEFAULT_FILE_BYTES

    @property
    def accepted_types(self) -> tuple[str, ...]:
        """The content types an upload may have (file fields)."""
        return self.accept or DEFAULT_ACCEPT


def normalize_origin(value: str) -> str:
    """An origin as browsers send it in `Origin`: lower-case scheme://host[:port], the
    default port dropped. Raises ValueError for anything with a path, query or credentials."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"{value!r} is not an origin: {err}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin: use scheme://host[:port] (http or https)")
    if parts.path or parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError(f"{value!r} is not an origin: no path, query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r} is not an origin: no credentials")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


class FormDefinition(BaseModel):
    """A whole form: its fields and how it behaves. `key` is assigned by the API, not here."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    name: str = Field(min_length=1, max_length=MAX_LABEL)
    channel_id: str = Field(min_length=1, max_length=64)
    fields: Annotated[tuple[FormField, ...], Field(min_length=1, max_length=MAX_FIELDS)]
    team_id: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2_000)  # shown above the fields
    submit_label: str = Field(default="Send", min_length=1, max_length=100)
    # Success: the hosted form redirects here (303) and the embed script navigates here;
    # without it both show `success_message`, and JSON clients get it in the answer.
    redirect_url: str | None = Field(default=None, max_length=MAX_URL)
    success_message: str = Field(
        default="Thank you, we received your message.", min_length=1, max_length=2_000
    )
    allowed_origins: tuple[str, ...] = ()
    acknowledgement: bool = False  # send an acknowledgement email when an email was given
    require_token: bool = False  # refuse posts without a render token (plain API posts)
    honeypot_field: str = "website"
    language: str | None = None

    @field_validator("redirect_url")
    @classmethod
    def _http_redirect(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else _check_http_url(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _normalize_origins(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) > MAX_ORIGINS:
                raise ValueError(f"at most {MAX_ORIGINS} origins")
            origins = [normalize_origin(v) if isinstance(v, str) else v for v in value]
            return tuple(dict.fromkeys(origins))
        return value

    @field_validator("honeypot_field")
    @classmethod
    def _honeypot_name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError("must be a field name (a letter, then letters, digits, '_', '-')")
        return value

    @field_validator("language")
    @classmethod
    def _bcp47(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not LANGUAGE_PATTERN.fullmatch(value):
            raise ValueError("must be a BCP 47 language tag such as 'en' or 'pt-BR'")
        return value

    @model_validator(mode="after")
    def _fields_agree(self) -> Self:
        seen: set[str] = set()
        for field in self.fields:
            # Browsers treat names case-sensitively, but two names differing only in case are
            # an admin's mistake, and would collide as element ids in some tools.
            folded = field.name.lower()
            if folded in seen:
                raise ValueError(f"field name {field.name!r} is used twice")
            seen.add(folded)
        if self.honeypot_field.lower() in seen:
            raise ValueError(f"honeypot_field {self.honeypot_field!r} is also a real field's name")
        targets = [f.maps_to for f in self.fields if f.maps_to is not None]
        for target in set(targets):
            if targets.count(target) > 1:
                raise ValueError(f"only one field may map to {target!r}")
        return self

    @property
    def has_files(self) -> bool:
        """Whether the form uploads files (and so must be posted as multipart/form-data)."""
        return any(f.type is FieldType.FILE for f in self.fields)

    def field(self, name: str) -> FormField | None:
        """The field named `name`, if the form has one."""
        return next((f for f in self.fields if f.name == name), None)

    def mapped(self, mapping: MapsTo) -> FormField | None:
        """The field feeding a contact property, if any."""
        return next((f for f in self.fields if f.mapping is mapping), None)

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a browser request with this `Origin` header may read our answers (CORS)."""
        if not origin or origin == "null":
            return False
        try:
            return normalize_origin(origin) in self.allowed_origins
        except ValueError:
            return False
