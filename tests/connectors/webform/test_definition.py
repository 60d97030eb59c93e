"""Form definitions: the DESIGN.md shape, and every rule with a clear error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.webform.definition import FieldType, FormDefinition, MapsTo, normalize_origin
from tests.connectors.webform.conftest import contact_form


def _field(**overrides: Any) -> dict[str, Any]:
    return {"name": "f", "label": "F", "type": "text", **overrides}


def _error(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        contact_form(**overrides)
    return str(caught.value)


def test_the_design_shape_is_accepted_with_defaults() -> None:
    definition = FormDefinition.model_validate(
        {
            "name": "Lead",
            "channel_id": "c1",
            "fields": [
                {
                    "name": "email",
                    "label": "Email",
                    "type": "email",
                    "required": True,
                    "maps_to": "email",
                },
                {
                    "name": "note",
                    "label": "Note",
                    "type": "textarea",
                    "required": False,
                    "maps_to": None,
                },
            ],
        }
    )
    assert definition.honeypot_field == "website"
    assert definition.require_token is False
    assert definition.acknowledgement is False
    assert definition.mapped(MapsTo.EMAIL) is definition.fields[0]
    assert definition.fields[1].limit == 10_000
    assert not definition.has_files


def test_select_options_from_strings_and_objects(form: FormDefinition) -> None:
    topic = form.field("topic")
    assert topic is not None and topic.type is FieldType.SELECT
    assert [(o.value, o.label) for o in topic.options] == [
        ("sales", "sales"),
        ("support", "Customer support"),
    ]
    assert form.has_files


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([_field(), _field()], "is used twice"),
        ([_field(), _field(name="F")], "is used twice"),
        ([_field(name="1abc")], "must start with a letter"),
        ([_field(name="a b")], "must start with a letter"),
        ([_field(name="a" * 65)], "at most 64 characters"),
        ([_field(name='x"><script>')], "must start with a letter"),
        ([_field(name=f"f{i}") for i in range(51)], "at most 50 items"),
        ([], "at least 1 item"),
        ([_field(type="select")], "a select field needs options"),
        ([_field(type="select", options=["a", "a"])], "option values must be unique"),
        ([_field(options=["a"])], "options apply to select fields only"),
        ([_field(accept=["image/png"])], "apply to file fields only"),
        ([_field(type="file", accept=["png"])], "is not a content type"),
        ([_field(type="file", max_bytes=50 * 1024 * 1024)], "less than or equal"),
        ([_field(label="")], "at least 1 character"),
        ([_field(label="x" * 201)], "at most 200 characters"),
        ([_field(type="colour")], "Input should be"),
        ([_field(maps_to="nickname")], "must be name, email, phone, message"),
        ([_field(maps_to="attribute:")], "attribute keys start with a letter"),
        ([_field(maps_to="email")], "needs a field of type email"),
        ([_field(type="email", maps_to="phone")], "needs a field of type phone"),
        ([_field(type="file", maps_to="attribute:cv")], "cannot map to an attribute"),
        (
            [
                _field(name="a", type="email", maps_to="email"),
                _field(name="b", type="email", maps_to="email"),
            ],
            "only one field may map to 'email'",
        ),
        (
            [_field(name="a", maps_to="name"), _field(name="b", maps_to="name")],
            "only one field may map to 'name'",
        ),
        (
            [
                _field(name="a", type="phone", maps_to="phone"),
                _field(name="b", type="phone", maps_to="phone"),
            ],
            "only one field may map to 'phone'",
        ),
        ([_field(name="website")], "is also a real field's name"),
        ([_field(unknown=1)], "Extra inputs are not permitted"),
    ],
)
def test_bad_fields_are_refused_clearly(fields: list[dict[str, Any]], message: str) -> None:
    assert message in _error(fields=fields)


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["https://shop.example/"], "no path"),
        (["https://shop.example/path"], "no path"),
        (["https://shop.example?x=1"], "no path, query"),
        (["shop.example"], "use scheme://host"),
        (["ftp://shop.example"], "use scheme://host"),
        (["https://user:pw@shop.example"], "no credentials"),
        (["https://shop.example:99999"], "is not an origin"),
    ],
)
def test_bad_origins_are_refused(origins: list[str], message: str) -> None:
    assert message in _error(allowed_origins=origins)


def test_origins_are_normalized_and_matched() -> None:
    definition = contact_form(
        allowed_origins=[
            "HTTPS://Shop.Example:443",
            "http://localhost:8000",
            "https://shop.example",
        ]
    )
    assert definition.allowed_origins == ("https://shop.example", "http://localhost:8000")
    assert definition.allows_origin("https://shop.example")
    assert definition.allows_origin("http://localhost:8000")
    assert not definition.allows_origin("https://evil.example")
    assert not definition.allows_origin("https://shop.example.evil.example")
    assert not definition.allows_origin("null")
    assert not definition.allows_origin(None)
    assert not definition.allows_origin("https://shop.example/x")
    assert normalize_origin("http://[::1]:8080") == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"redirect_url": "javascript:alert(1)"}, "http:// or https://"),
        ({"redirect_url": "/thanks"}, "http:// or https://"),
        ({"redirect_url": "https://shop.example/a b"}, "spaces or control"),
        ({"language": "english please"}, "BCP 47"),
        ({"language": "e"}, "BCP 47"),
        ({"honeypot_field": "_x"}, "must be a field name"),
        ({"name": ""}, "at least 1 character"),
        ({"success_message": "x" * 2001}, "at most 2000"),
        ({"allowed_origins": [f"https://s{i}.example" for i in range(51)]}, "at most 50"),
    ],
)
def test_bad_form_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    assert message in _error(**overrides)


def test_good_settings_are_kept() -> None:
    definition = contact_form(
        redirect_url="https://shop.example/thanks?from=form", language="pt-BR", require_token=True
    )
    assert definition.redirect_url == "https://shop.example/thanks?from=form"
    assert definition.language == "pt-BR"
    assert definition.require_token


def test_field_properties() -> None:
    definition = contact_form()
    company = definition.field("company")
    attachment = definition.field("attachment")
    assert company is not None and attachment is not None
    assert company.attribute == "company" and company.mapping is None
    assert attachment.file_limit == 1024
    assert attachment.accepted_types == ("image/png", "application/pdf")
    assert definition.field("missing") is None
