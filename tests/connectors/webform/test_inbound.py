"""Submissions as the one inbound shape: sender, identities, text, files, attribution."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from connectors.types import ChannelId, IdentityKind, RawPayload, SenderHandle
from connectors.webform.answers import RATE_LIMITED, error_answer, spam_answer, success_answer
from connectors.webform.attribution import RequestInfo, attribution_for, web_url
from connectors.webform.body import JSON, URLENCODED
from connectors.webform.definition import FormDefinition
from connectors.webform.errors import BodyTooLarge, InvalidSubmission
from connectors.webform.inbound import reparse, submission_text, to_inbound
from connectors.webform.spam import Verdict
from connectors.webform.submission import Submission, read_submission
from tests.connectors.webform.conftest import GOOD_FIELDS, MULTIPART, PDF, contact_form, multipart

CHANNEL = ChannelId("chan-1")
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REQUEST = RequestInfo(
    ip="203.0.113.9",
    user_agent="Mozilla/5.0\x00 (X11)",
    referer="https://shop.example/contact?utm_source=ref",
)
PAGE = "https://shop.example/contact?utm_source=news&utm_medium=email&utm_campaign=spring&x=1"


def _submit(
    form: FormDefinition, fields: list[tuple[str, str]], content_type: str = URLENCODED
) -> tuple[Submission, RawPayload]:
    body = urlencode(fields).encode()
    return read_submission(form, content_type, body, default_region="DE"), RawPayload(
        content_type, body
    )


def test_a_full_submission(form: FormDefinition) -> None:
    body = multipart(
        [
            *GOOD_FIELDS,
            ("_token", "tok-1"),
            ("_page_url", PAGE),
            ("_referrer", "https://search.example/"),
        ],
        [("attachment", "scan.pdf", "application/pdf", PDF)],
    )
    submission = read_submission(form, MULTIPART, body, default_region="DE")
    raw = RawPayload(MULTIPART, body)
    attribution = attribution_for("frm_1", REQUEST, submission)
    inbound = to_inbound(CHANNEL, form, submission, attribution, AT, raw, form_id="f-9")
    assert inbound.channel_id == CHANNEL
    assert inbound.sender == SenderHandle(IdentityKind.EMAIL, "ann@example.com", "Ann Lee")
    assert inbound.identities == (SenderHandle(IdentityKind.PHONE, "+4930901820", "Ann Lee"),)
    assert inbound.sent_at == AT
    assert inbound.thread.subject == "Form: Contact us"
    assert inbound.raw == raw
    assert inbound.external_id.startswith("form:")
    assert inbound.text == (
        "Hello,\nI need help.\n"
        "\n"
        "Your name: Ann Lee\n"
        "Email: ann@example.com\n"
        "Phone: +4930901820\n"
        "Topic: Customer support\n"
        "Company: Acme\n"
        "I agree to be contacted: Yes\n"
        f"Attachment: scan.pdf ({len(PDF)} bytes)"
    )
    (attachment,) = inbound.attachments
    assert (attachment.filename, attachment.content_type, attachment.data, attachment.size) == (
        "scan.pdf",
        "application/pdf",
        PDF,
        len(PDF),
    )
    assert dict(inbound.attribution) == {
        "form_key": "frm_1",
        "form_id": "f-9",
        "form_name": "Contact us",
        "page_url": PAGE,
        "referrer": "https://search.example/",
        "utm_source": "news",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "user_agent": "Mozilla/5.0 (X11)",
        "ip": "203.0.113.9",
    }
    assert inbound.attribution[0] == ("form_key", "frm_1")
    # A new contact is a lead; the pairs are recorded as the "form submitted" event.
    assert inbound.new_contact_stage == "lead"
    assert inbound.attribution_event == "form.submitted"
    assert inbound.language is None
    assert (
        to_inbound(
            CHANNEL, form.model_copy(update={"language": "pt-BR"}), submission, attribution, AT, raw
        ).language
        == "pt-BR"
    )


def test_phone_only_and_nobody(form: FormDefinition) -> None:
    fields = [(n, v) for n, v in GOOD_FIELDS if n != "email"]
    submission, raw = _submit(form, fields)
    inbound = to_inbound(
        CHANNEL, form, submission, attribution_for("k", RequestInfo(), submission), AT, raw
    )
    assert inbound.sender == SenderHandle(IdentityKind.PHONE, "+4930901820", "Ann Lee")
    assert inbound.identities == ()
    anonymous = [(n, v) for n, v in GOOD_FIELDS if n not in ("email", "phone")]
    submission, raw = _submit(form, anonymous)
    inbound = to_inbound(
        CHANNEL, form, submission, attribution_for("k", RequestInfo(), submission), AT, raw
    )
    # Neither: an opaque identity of this submission, so it still becomes a lead with a
    # conversation (not a flagged payload); a double submit has the same one.
    assert inbound.sender == SenderHandle(IdentityKind.WEBFORM, inbound.external_id, "Ann Lee")
    assert inbound.identities == ()
    assert dict(inbound.attribution) == {"form_key": "k", "form_name": "Contact us"}
    again = to_inbound(
        CHANNEL, form, submission, attribution_for("k", RequestInfo(), submission), AT, raw
    )
    assert again.sender == inbound.sender


def test_text_without_a_message_field_and_multiline_answers() -> None:
    form = contact_form(
        fields=[
            {"name": "a", "label": "Question", "type": "textarea"},
            {"name": "b", "label": "Other"},
            {"name": "c", "label": "Empty"},
        ]
    )
    submission, _ = _submit(form, [("a", "line 1\nline 2"), ("b", "x"), ("c", "")])
    assert submission_text(submission) == "Question: line 1\n  line 2\nOther: x"


def _id(
    form: FormDefinition,
    fields: list[tuple[str, str]],
    at: datetime = AT,
    fallback_id: str | None = None,
) -> str:
    submission, raw = _submit(form, fields)
    attribution = attribution_for("frm", RequestInfo(), submission)
    inbound = to_inbound(CHANNEL, form, submission, attribution, at, raw, fallback_id=fallback_id)
    return inbound.external_id


def test_idempotency_of_the_external_id(form: FormDefinition) -> None:
    with_token = [*GOOD_FIELDS, ("_token", "tok-1")]
    later = datetime(2026, 3, 2, tzinfo=UTC)
    # A double submit of the same rendering is one message, whenever it arrives...
    assert _id(form, with_token) == _id(form, with_token, at=later)
    # ... but the same rendering sent again with a correction is another.
    corrected = [(n, "Ann B. Lee" if n == "name" else v) for n, v in with_token]
    assert _id(form, corrected) != _id(form, with_token)
    # Another rendering (token) is another message, even with the same content.
    assert _id(form, [*GOOD_FIELDS, ("_token", "tok-2")]) != _id(form, with_token)
    # Without a token the caller's id decides; without either nothing is merged.
    assert _id(form, GOOD_FIELDS, fallback_id="idem-1") == _id(
        form, GOOD_FIELDS, fallback_id="idem-1", at=later
    )
    assert _id(form, GOOD_FIELDS, fallback_id="idem-1") != _id(
        form, GOOD_FIELDS, fallback_id="idem-2"
    )
    assert _id(form, GOOD_FIELDS) != _id(form, GOOD_FIELDS, at=later)


def test_the_same_content_in_another_encoding_is_the_same_message(form: FormDefinition) -> None:
    fields = [*GOOD_FIELDS, ("_token", "tok-1")]
    one = read_submission(form, MULTIPART, multipart(fields), default_region="DE")
    two = read_submission(
        form,
        MULTIPART.replace("7MA4", "ZZZZ"),
        multipart(fields, boundary="----WebKitFormBoundaryZZZZYWxkTrZu0gW"),
        default_region="DE",
    )
    attribution = attribution_for("frm", RequestInfo(), one)
    first = to_inbound(CHANNEL, form, one, attribution, AT, RawPayload(MULTIPART, b"1"))
    second = to_inbound(CHANNEL, form, two, attribution, AT, RawPayload(MULTIPART, b"2"))
    assert first.external_id == second.external_id


def test_attribution_sources_and_ip_retention(form: FormDefinition) -> None:
    submission, _ = _submit(
        form, [*GOOD_FIELDS, ("_utm_source", "posted"), ("_utm_term", "chairs")]
    )
    attribution = attribution_for("k", REQUEST, submission, keep_ip=False)
    assert attribution.ip is None
    # The Referer header stands in for the page; posted UTM values win over the page's.
    assert attribution.page_url == "https://shop.example/contact?utm_source=ref"
    assert attribution.utm == (("utm_source", "posted"), ("utm_term", "chairs"))
    assert "ip" not in dict(attribution.pairs())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://shop.example/a?b=1#c", "https://shop.example/a?b=1#c"),
        ("HTTP://shop.example", "http://shop.example"),
        ("https://user:pw@shop.example/x", "https://shop.example/x"),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("/relative", None),
        ("https://", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_web_url(value: str | None, expected: str | None) -> None:
    assert web_url(value) == expected


def test_hostile_attribution_is_bounded_and_cleaned(form: FormDefinition) -> None:
    long_page = "https://shop.example/?utm_campaign=" + "x" * 5000
    submission, _ = _submit(
        form, [*GOOD_FIELDS, ("_page_url", long_page), ("_referrer", "javascript:x")]
    )
    attribution = attribution_for("k", RequestInfo(user_agent="u" * 2000), submission)
    assert attribution.page_url is not None and len(attribution.page_url) <= 2048
    assert attribution.referrer is None
    assert attribution.user_agent == "u" * 512
    assert dict(attribution.utm)["utm_campaign"] == "x" * 200


def test_reparse_gives_the_same_submission(form: FormDefinition) -> None:
    submission, raw = _submit(form, GOOD_FIELDS)
    assert reparse(form, raw, default_region="DE") == submission
    json_raw = RawPayload(JSON, b'{"name": "Ann", "message": "Hi", "consent": true}')
    assert reparse(form, json_raw).message == "Hi"


def test_answers(form: FormDefinition) -> None:
    assert success_answer(form) == {
        "ok": True,
        "message": form.success_message,
        "redirect_url": None,
    }
    assert spam_answer(form, Verdict.HONEYPOT) == (200, success_answer(form))
    status, body = spam_answer(form, Verdict.TOO_FAST)
    assert status == 422 and body["error"]["code"] == "too_fast" and body["error"]["message"]
    assert spam_answer(form, Verdict.BAD_TOKEN)[0] == 403
    with pytest.raises(ValueError):
        spam_answer(form, Verdict.ACCEPTED)
    status, body = error_answer(InvalidSubmission({"email": "bad"}))
    assert (status, body) == (
        422,
        {
            "error": {
                "code": "invalid",
                "message": "Some fields need attention.",
                "fields": {"email": "bad"},
            }
        },
    )
    assert error_answer(BodyTooLarge("too big")) == (
        413,
        {"error": {"code": "too_large", "message": "too big", "fields": {}}},
    )
    assert RATE_LIMITED[0] == 429
