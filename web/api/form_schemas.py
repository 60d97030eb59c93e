"""Request and response models of the forms API; the definition itself is
`connectors.webform.definition.FormDefinition`, posted as it is."""

from __future__ import annotations

import html
import unicodedata
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from connectors.webform.definition import FormDefinition, FormField
from connectors.webform.embed import form_urls
from timeline.models import Form, FormSubmission
from web.api.schemas import Input, PageQuery

# Free text shown as paragraphs: line breaks are the admin's layout, not an attack.
_MULTILINE = frozenset({"description", "success_message", "help_text"})
_LINE_BREAKS = frozenset("\t\n\r")


class FormCreate(FormDefinition):
    """A form to create: its definition (the fields, where submissions go, how it behaves),
    and whether it takes submissions yet."""

    # Strict: "no" or 0 switching a form on or off would be a surprise.
    active: StrictBool = Field(default=True, description="false: the public endpoint refuses it")

    def definition(self) -> FormDefinition:
        """The definition alone, as stored."""
        return FormDefinition.model_validate(self.model_dump(exclude={"active"}))


class FormUpdate(Input):
    """Changes to a form: any part of its definition, and `active`. What is left out stays
    as it is; `fields` and `allowed_origins` are replaced whole; null clears an optional
    setting. The merged definition is validated again as a whole (see FormCreate)."""

    name: str | None = None
    channel_id: str | None = None
    fields: tuple[FormField, ...] | None = None
    team_id: str | None = None
    description: str | None = None
    submit_label: str | None = None
    redirect_url: str | None = None
    success_message: str | None = None
    allowed_origins: tuple[str, ...] | None = None
    acknowledgement: bool | None = None
    require_token: bool | None = None
    honeypot_field: str | None = None
    language: str | None = None
    active: StrictBool | None = Field(default=None, description="false: stop taking submissions")

    def merged(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored definition with these changes applied, still to be validated."""
        changes = self.model_dump(mode="json", exclude_unset=True, exclude={"active"})
        return {**stored, **changes}


class FormQuery(PageQuery):
    """Filters of the form list (all must match)."""

    channel_id: uuid.UUID | None = None
    active: bool | None = None


class FormUrls(BaseModel):
    """Where the form lives publicly, and the HTML an admin pastes into a page."""

    page: str = Field(description="the hosted form (GET) and where it is posted")
    submit: str = Field(description="POST submissions here (urlencoded, multipart or JSON)")
    description: str = Field(description="the form as JSON, as the embed script reads it")
    script: str = Field(description="the embed script")
    snippet: str = Field(description="HTML that embeds the form in any page")

    @classmethod
    def of(cls, base_url: str, key: str) -> FormUrls:
        urls = form_urls(base_url, key)
        # The attribute static/embed.js looks for; without the div the form lands after the
        # script tag, which `async` makes unpredictable, so the snippet always has both.
        snippet = (
            f'<div data-switchboard-form="{html.escape(key)}"></div>\n'
            f'<script src="{html.escape(urls["script"])}" async></script>'
        )
        return cls(**urls, snippet=snippet)


class FormOut(FormDefinition):
    """A form: its definition as stored (normalized), its public key and URLs."""

    id: uuid.UUID
    key: str = Field(description="the unguessable part of the public URLs")
    active: bool
    created_at: datetime
    updated_at: datetime
    urls: FormUrls

    @classmethod
    def of(cls, row: Form, base_url: str) -> FormOut:
        return cls(
            **row.definition,
            id=row.id,
            key=row.key,
            active=row.active,
            created_at=row.created_at,
            updated_at=row.updated_at,
            urls=FormUrls.of(base_url, row.key),
        )


class FormSubmissionOut(BaseModel):
    """One accepted submission: the message and contact it made, and where it came from."""

    id: uuid.UUID
    form_id: uuid.UUID
    created_at: datetime
    message_id: uuid.UUID | None = Field(description="null once the message was deleted")
    contact_id: uuid.UUID | None
    conversation_id: uuid.UUID | None = Field(description="the message's conversation")
    attribution: dict[str, Any] = Field(
        description="page URL, referrer, UTM parameters, user agent as captured"
    )
    ip: str | None = Field(description="the client address, if the channel keeps it")

    @classmethod
    def of(cls, row: FormSubmission, conversation_id: uuid.UUID | None) -> FormSubmissionOut:
        return cls(
            id=row.id,
            form_id=row.form_id,
            created_at=row.created_at,
            message_id=row.message_id,
            contact_id=row.contact_id,
            conversation_id=conversation_id,
            attribution=row.attribution,
            ip=row.ip,
        )


def text_problems(definition: FormDefinition) -> dict[str, str]:
    """Field path -> why, for text a form cannot show or store: NUL (PostgreSQL text cannot
    hold it) and control characters, which only line breaks in free text are spared from."""
    problems: dict[str, str] = {}

    def walk(value: object, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, (*path, str(name)))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, (*path, str(index)))
        elif isinstance(value, str):
            allowed = _LINE_BREAKS if path and path[-1] in _MULTILINE else frozenset()
            if "\x00" in value:
                problems[".".join(path)] = "must not contain NUL characters"
            elif any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
                problems[".".join(path)] = "must not contain control characters"

    walk(definition.model_dump(mode="json"), ())
    return problems
