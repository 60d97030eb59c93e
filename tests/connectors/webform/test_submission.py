"""Validation of parsed bodies against a form: typed values or per-field messages."""

from __future__ import annotations

import json

import pytest

from connectors.webform.body import JSON, URLENCODED, parse_body
from connectors.webform.definition import FormDefinition
from connectors.webform.errors import InvalidSubmission, SubmissionError
from connectors.webform.submission import display_filename, read_submission, validate
from tests.connectors.webform.conftest import (
    GOOD_FIELDS,
    MULTIPART,
    PDF,
    PE,
    PNG,
    ZIP,
    contact_form,
    multipart,
)


def _invalid(form: FormDefinition, body: bytes, content_type: str = MULTIPART) -> InvalidSubmission:
    with pytest.raises(InvalidSubmission) as caught:
        read_submission(form, content_type, body, default_region="DE")
    assert caught.value.status == 422 and caught.value.code == "invalid"
    return caught.value


def _with(**changes: str) -> list[tuple[str, str]]:
    return [(name, changes.get(name, value)) for name, value in GOOD_FIELDS]


def test_a_good_multipart_submission(form: FormDefinition) -> None:
    body = multipart(
        [
            *GOOD_FIELDS,
            ("_token", "tok"),
            ("_page_url", "https://shop.example/p?utm_source=x"),
            ("unknown", "kept only raw"),
        ],
        [("attachment", "scan.pdf", "application/pdf", PDF)],
    )
    submission = read_submission(form, MULTIPART, body, default_region="DE")
    assert submission.name == "Ann Lee"
    assert submission.email == "ann@example.com"
    assert submission.phone == "+4930901820"
    assert submission.message == "Hello,\nI need help."
    assert submission.attributes == (("company", "Acme"),)
    assert submission.token == "tok"
    assert submission.hidden == (("_page_url", "https://shop.example/p?utm_source=x"),)
    assert [a.field.name for a in submission.answers] == [
        "name",
        "email",
        "phone",
        "topic",
        "message",
        "company",
        "consent",
    ]
    assert dict((a.field.name, a.value) for a in submission.answers)["consent"] is True
    (upload,) = submission.files
    assert (upload.filename, upload.content_type, upload.data) == (
        "scan.pdf",
        "application/pdf",
        PDF,
    )


def test_urlencoded_and_json_give_the_same_submission(form: FormDefinition) -> None:
    from urllib.parse import urlencode

    encoded = read_submission(
        form, URLENCODED, urlencode(GOOD_FIELDS).encode(), default_region="DE"
    )
    document = dict(GOOD_FIELDS) | {"consent": True}
    posted = read_submission(form, JSON, json.dumps(document).encode(), default_region="DE")
    assert encoded == posted
    assert encoded.files == ()


def test_email_is_normalized_and_phone_is_e164(form: FormDefinition) -> None:
    body = multipart(_with(email="Ann@EXAMPLE.com", phone="+1 (415) 555-2671"))
    submission = read_submission(form, MULTIPART, body, default_region="DE")
    assert submission.email == "Ann@example.com"
    assert submission.phone == "+14155552671"


def test_every_field_error_at_once(form: FormDefinition) -> None:
    body = multipart(
        [
            ("name", "   "),
            ("email", "ann@"),
            ("phone", "12"),
            ("topic", "billing"),
            ("message", "x" * 10_001),
            ("company", b"\xff\xfe"),
            ("consent", "maybe"),
        ],
        [("attachment", "big.png", "image/png", PNG + b"\x00" * 2000)],
    )
    error = _invalid(form, body)
    assert error.fields == {
        "name": "This field is required.",
        "email": error.fields["email"],
        "phone": (
            "Enter a valid phone number, with its country code (+...) if it is not a DE number."
        ),
        "topic": "Choose one of the options.",
        "message": "Use at most 10000 characters (this has 10001).",
        "company": "This field is not valid UTF-8 text.",
        "consent": "This is not a valid checkbox value.",
        "attachment": "The file is too large (at most 1024 bytes).",
    }
    assert error.fields["email"].startswith("Enter a valid email address.")
    # What the visitor typed comes back to fill the form again (not the file).
    assert error.values["email"] == "ann@"
    assert error.values["topic"] == "billing"
    assert "attachment" not in error.values


def test_required_fields_missing(form: FormDefinition) -> None:
    error = _invalid(form, multipart([]))
    assert error.fields == {
        "name": "This field is required.",
        "message": "This field is required.",
        "consent": "Tick this box to continue.",
    }


def test_required_file() -> None:
    form = contact_form(fields=[{"name": "cv", "label": "CV", "type": "file", "required": True}])
    assert _invalid(form, multipart([])).fields == {"cv": "This field is required."}
    empty = multipart([], [("cv", "cv.pdf", "application/pdf", b"")])
    assert _invalid(form, empty).fields == {"cv": "The file is empty."}


@pytest.mark.parametrize(
    ("word", "checked"),
    [
        ("on", True),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("off", False),
    ],
)
def test_checkbox_truthiness(word: str, checked: bool) -> None:
    form = contact_form(fields=[{"name": "news", "label": "News", "type": "checkbox"}])
    submission = read_submission(form, URLENCODED, f"news={word}".encode())
    assert submission.answers[0].value is checked


def test_absent_checkbox_is_unchecked_and_required_one_must_be_ticked() -> None:
    form = contact_form(fields=[{"name": "news", "label": "News", "type": "checkbox"}])
    assert read_submission(form, URLENCODED, b"").answers[0].value is False
    required = contact_form(
        fields=[{"name": "ok", "label": "OK", "type": "checkbox", "required": True}]
    )
    assert _invalid(required, b"ok=off", URLENCODED).fields == {"ok": "Tick this box to continue."}
    assert _invalid(required, b'{"ok": false}', JSON).fields == {"ok": "Tick this box to continue."}


def test_nul_and_control_characters_are_stripped(form: FormDefinition) -> None:
    body = multipart(
        _with(name="A\x00n\x07n\x1b \u0085Lee\t\n", message="one\x00\r\ntwo\x0b\rthree\x7f")
    )
    submission = read_submission(form, MULTIPART, body, default_region="DE")
    assert submission.name == "Ann Lee"
    assert submission.message == "one\ntwo\nthree"


def test_single_line_fields_fold_line_breaks(form: FormDefinition) -> None:
    body = multipart(_with(company="Acme\r\nInc.\tLtd"))
    submission = read_submission(form, MULTIPART, body, default_region="DE")
    assert submission.attributes == (("company", "Acme Inc. Ltd"),)


def test_field_length_limits_use_the_definition() -> None:
    form = contact_form(fields=[{"name": "code", "label": "Code", "max_length": 5}])
    assert read_submission(form, URLENCODED, b"code=12345").answers[0].value == "12345"
    error = _invalid(form, b"code=123456", URLENCODED)
    assert error.fields == {"code": "Use at most 5 characters (this has 6)."}


def test_repeated_values_text_in_file_fields_and_files_in_text_fields(form: FormDefinition) -> None:
    body = multipart(
        [*_with(), ("name", "again")],
        [("company", "x.png", "image/png", PNG)],
    )
    error = _invalid(form, body)
    assert error.fields == {
        "name": "This field must have one value only.",
        "company": "This field takes text, not a file.",
    }
    encoded = _invalid(form, b"attachment=photo.png", URLENCODED)
    assert encoded.fields["attachment"] == (
        "Upload the file itself (the form must be sent as multipart)."
    )
    two = multipart(_with(), [("attachment", "a.png", "image/png", PNG)] * 2)
    assert _invalid(form, two).fields == {"attachment": "Attach one file only."}


def test_json_nested_values_are_field_errors(form: FormDefinition) -> None:
    document = dict(GOOD_FIELDS) | {"name": {"first": "Ann"}}
    error = _invalid(form, json.dumps(document).encode(), JSON)
    assert error.fields == {"name": "This field must be text."}


@pytest.mark.parametrize(
    ("filename", "claimed", "data", "message"),
    [
        ("x.png", "image/png", PE, "Programs cannot be uploaded."),
        ("x.png", "image/png", ZIP, "The file's content is not image/png."),
        ("x.png", "image/png", b"just text", "The file's content is not image/png."),
        ("x.pdf", "application/pdf", PNG, "The file's content is not application/pdf."),
        ("x.zip", "application/zip", ZIP, "Files of type application/zip are not accepted here."),
        ("x.exe", "application/octet-stream", PE, "Programs cannot be uploaded."),
        ("x.txt", "text/plain", b"hello", "Files of type text/plain are not accepted here."),
    ],
)
def test_file_content_checks(filename: str, claimed: str, data: bytes, message: str) -> None:
    form = contact_form()
    body = multipart(_with(), [("attachment", filename, claimed, data)])
    assert _invalid(form, body).fields == {"attachment": message}


def test_octet_stream_claims_are_decided_by_the_bytes(form: FormDefinition) -> None:
    body = multipart(_with(), [("attachment", "scan", "application/octet-stream", PDF)])
    (upload,) = read_submission(form, MULTIPART, body, default_region="DE").files
    assert upload.content_type == "application/pdf"


def test_display_filename() -> None:
    assert display_filename("C:\\Users\\ann\\cv.pdf") == "cv.pdf"
    assert display_filename("../../etc/passwd") == "passwd"
    assert display_filename("a\x00b\r\n.txt") == "ab .txt"
    assert display_filename("x" * 300) == "x" * 255
    assert display_filename("dir/") is None
    assert display_filename(None) is None


def test_errors_are_all_submission_errors(form: FormDefinition) -> None:
    with pytest.raises(SubmissionError):
        validate(form, parse_body(URLENCODED, b"name=%ff"))
