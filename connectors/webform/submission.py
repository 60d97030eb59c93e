"""A parsed body checked against its form: typed values, or per-field error messages.

Field errors are collected for every field at once ({name: message}) so a visitor sees
all of them in one round. Unknown names are ignored here (the raw body keeps them).
Names starting with "_" are ours (token, page URL, referrer, UTM), never a form field's:
field names start with a letter.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from connectors.webform.body import ParsedBody, Unreadable, UploadedFile, parse_body
from connectors.webform.clean import clean_line, clean_text
from connectors.webform.definition import FieldType, FormDefinition, FormField, MapsTo
from connectors.webform.errors import InvalidSubmission
from connectors.webform.limits import DEFAULT_LIMITS, Limits
from connectors.webform.sniff import verify_upload

TOKEN_FIELD = "_token"
# Hidden fields the hosted page and the embed script post about where the visitor was.
HIDDEN_FIELDS = (
    "_page_url",
    "_referrer",
    "_utm_source",
    "_utm_medium",
    "_utm_campaign",
    "_utm_term",
    "_utm_content",
)
MAX_HIDDEN = 2_048

TRUE_WORDS = frozenset({"on", "1", "true", "yes", "y", "checked"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "n", "off"})

REQUIRED = "This field is required."


@dataclass(frozen=True, slots=True)
class Answer:
    """One field's accepted value: text (normalized for email and phone) or a checkbox."""

    field: FormField
    value: str | bool


@dataclass(frozen=True, slots=True)
class SubmittedFile:
    """An upload whose bytes matched an accepted content type."""

    field: FormField
    filename: str | None  # display only: path parts and control characters removed
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Submission:
    """A valid submission. Answers follow the form's field order; optional fields left
    empty are absent (checkboxes are always there)."""

    answers: tuple[Answer, ...]
    files: tuple[SubmittedFile, ...] = ()
    token: str | None = None
    hidden: tuple[tuple[str, str], ...] = ()  # ("_page_url", ...) as posted, bounded

    def value(self, mapping: MapsTo) -> str | None:
        """The text of the field mapped to a contact property, if given."""
        for answer in self.answers:
            if answer.field.mapping is mapping and isinstance(answer.value, str):
                return answer.value
        return None

    @property
    def email(self) -> str | None:
        return self.value(MapsTo.EMAIL)

    @property
    def phone(self) -> str | None:
        return self.value(MapsTo.PHONE)

    @property
    def name(self) -> str | None:
        return self.value(MapsTo.NAME)

    @property
    def message(self) -> str | None:
        return self.value(MapsTo.MESSAGE)

    @property
    def attributes(self) -> tuple[tuple[str, str | bool], ...]:
        """(key, value) for fields mapped to custom attributes."""
        return tuple(
            (a.field.attribute, a.value) for a in self.answers if a.field.attribute is not None
        )


def display_filename(filename: str | None) -> str | None:
    """A file name safe to show: the last path part (old browsers send C:\\dir\\name),
    without control characters, at most 255 characters."""
    if filename is None:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return clean_line(base, 255) or None


def _one(values: list[str | Unreadable]) -> str | Unreadable | None:
    if not values:
        return None
    if len(values) > 1:
        return Unreadable("must have one value only")
    return values[0]


def _text(field: FormField, raw: str) -> str:
    return clean_text(raw, multiline=field.type is FieldType.TEXTAREA)


def _typed(field: FormField, text: str, region: str | None) -> str:
    """The value normalized for its type; ValueError with the visitor's message."""
    if field.type is FieldType.EMAIL:
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as err:
            raise ValueError(f"Enter a valid email address. {err}") from err
    if field.type is FieldType.PHONE:
        hint = "Enter a valid phone number" + (
            f", with its country code (+...) if it is not a {region} number."
            if region
            else ", with its country code (+...)."
        )
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as err:
            raise ValueError(hint) from err
        if not phonenumbers.is_valid_number(number):
            raise ValueError(hint)
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if field.type is FieldType.SELECT and text not in {o.value for o in field.options}:
        raise ValueError("Choose one of the options.")
    return text


def _checkbox(field: FormField, values: list[str | Unreadable]) -> bool:
    words = [clean_text(v, multiline=False).lower() for v in values if isinstance(v, str)]
    if len(words) != len(values) or any(w not in TRUE_WORDS | FALSE_WORDS for w in words):
        raise ValueError("This is not a valid checkbox value.")
    checked = any(w in TRUE_WORDS for w in words)
    if field.required and not checked:
        raise ValueError("Tick this box to continue.")
    return checked


def _file(field: FormField, body: ParsedBody) -> SubmittedFile | None:
    uploads: list[UploadedFile] = body.files_for(field.name)
    if not uploads:
        if any(isinstance(v, str) and v.strip() for v in body.get_all(field.name)):
            raise ValueError("Upload the file itself (the form must be sent as multipart).")
        if field.required:
            raise ValueError(REQUIRED)
        return None
    if len(uploads) > 1:
        raise ValueError("Attach one file only.")
    upload = uploads[0]
    if len(upload.data) > field.file_limit:
        raise ValueError(f"The file is too large (at most {field.file_limit} bytes).")
    if not upload.data and field.required:
        raise ValueError("The file is empty.")
    content_type = verify_upload(upload.content_type, upload.data, field.accepted_types)
    return SubmittedFile(field, display_filename(upload.filename), content_type, upload.data)


def validate(
    definition: FormDefinition, body: ParsedBody, *, default_region: str | None = None
) -> Submission:
    """The submission `body` makes for `definition`; InvalidSubmission with a message per
    failing field (and the cleaned values, to show again) otherwise. `default_region`
    (ISO 3166 code) reads phone numbers written without a country code."""
    errors: dict[str, str] = {}
    shown: dict[str, str] = {}
    answers: list[Answer] = []
    files: list[SubmittedFile] = []
    for field in definition.fields:
        values = body.get_all(field.name)
        try:
            if field.type is FieldType.FILE:
                submitted = _file(field, body)
                if submitted is not None:
                    files.append(submitted)
                continue
            if body.files_for(field.name):
                raise ValueError("This field takes text, not a file.")
            if field.type is FieldType.CHECKBOX:
                checked = _checkbox(field, values)
                shown[field.name] = "on" if checked else ""
                answers.append(Answer(field, checked))
                continue
            raw = _one(values)
            if isinstance(raw, Unreadable):
                raise ValueError(f"This field {raw.reason}.")
            text = _text(field, raw or "")
            shown[field.name] = text[: field.limit * 2]
            if not text:
                if field.required:
                    raise ValueError(REQUIRED)
                continue
            if len(text) > field.limit:
                raise ValueError(f"Use at most {field.limit} characters (this has {len(text)}).")
            answers.append(Answer(field, _typed(field, text, default_region)))
        except ValueError as err:
            errors[field.name] = str(err)
    if errors:
        raise InvalidSubmission(errors, shown)
    hidden = tuple(
        (name, clean_line(value, MAX_HIDDEN))
        for name in HIDDEN_FIELDS
        if (value := body.text(name)) is not None and clean_line(value, MAX_HIDDEN)
    )
    token = body.text(TOKEN_FIELD)
    return Submission(
        tuple(answers), tuple(files), clean_line(token, 512) if token else None, hidden
    )


def read_submission(
    definition: FormDefinition,
    content_type: str,
    body: bytes,
    *,
    default_region: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Submission:
    """Parse and validate in one step (re-parsing a stored RawPayload included). Raises
    only SubmissionError subclasses. The endpoint parses first (`parse_body`) when it runs
    the spam checks on the parsed body before validating."""
    parsed = parse_body(content_type, body, limits)
    return validate(definition, parsed, default_region=default_region)
