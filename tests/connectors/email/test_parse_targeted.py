"""Targeted checks of the parser on the corpus files that make each case, and on small
hand-written messages for cases the corpus lacks (cid: images, hostile HTML, .msg)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from connectors.email.parse import MAX_DEPTH, parse_email, to_inbound
from connectors.types import ChannelId
from tests.connectors.email.corpus import read

CHANNEL = ChannelId("00000000-0000-0000-0000-000000000001")


@pytest.mark.parametrize(
    ("name", "subject_has", "text_has"),
    [
        # iso-2022-jp label, CP50220 bytes ("№" is an NEC row-13 character)
        ("phpmimemailparser__issue116", "ЖД№41 от 28.09.2016", "toto"),
        ("thunderbird__sample04.eml", "Алфавит", "Вопрос"),  # koi8-r
        ("thunderbird__sample05.eml", "Алфавит", "Вопрос"),  # windows-1251
        ("rubymail__multi_charset__japanese_iso_2022.eml", "まみむめも", "すみません。"),
        ("rubymail__multi_charset__japanese_shift_jis.eml", "test", "あいうえお"),
        ("rubymail__multi_charset__ks_c_5601-1987.eml", "test", "스티해"),
        ("rubymail__plain_emails__raw_email_double_at_in_header.eml", "한국말로", "하나님을"),
        ("zbateson__m1011.txt", "Die Hasen und die Frösche", "Die Hasen klagten einst"),
        ("phpmimemailparser__m0021", "Путін", "mini plain body"),  # windows-1251 words
        ("phpmimemailparser__failure.eml", None, "配信に失敗しました"),  # gb2312 label
        ("zbateson__invalid-charset.txt", "Test invalid charset", "The Hare and the Tortoise"),
        ("helpdesk__all-special-chars.eml", "Testovácí email", "íářčšáíéřášč"),
        ("helpdesk__quoted_printable.eml", "Český test", "českých písmen"),
        ("flanker__bilingual-simple.eml", "Как ты поживаешь?", "А эта линия по-русски."),  # noqa: RUF001
        ("chatwoot__non_utf_encoded_mail.eml", "أهلين عميلنا الكريم", "أنظروا"),
        ("rubymail__rfc6532__utf8_headers.eml", "Säying Hello", ""),
        ("flanker__8bitmime.eml", "2 RCPT MIME", ""),
    ],
)
def test_charsets_decode_to_the_right_words(
    name: str, subject_has: str | None, text_has: str
) -> None:
    parsed = parse_email(read(name))
    if subject_has is not None:
        assert parsed.subject is not None and subject_has in parsed.subject
    assert text_has in parsed.text
    assert "\ufffd" not in parsed.text


def test_undeclared_8bit_bytes_in_headers() -> None:
    assert parse_email(read("flanker__from-encoding.eml")).from_ is not None
    assert parse_email(read("flanker__from-encoding.eml")).from_.name == "Ingo Lütkebohle"  # type: ignore[union-attr]
    parsed = parse_email(read("rubymail__error_emails__invalid_subject_characters.eml"))
    assert (
        parsed.subject == "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro"
    )
    spam = parse_email(read("flanker__spam__broken-headers.eml"))
    assert spam.subject == "Forget Asking For A Link Exchange…"  # a cp1252 byte 0x85


def test_mostly_utf8_with_a_broken_byte_stays_utf8() -> None:
    parsed = parse_email(read("helpdesk__utf-nondecodable.eml"))
    assert "Ahoj Johne" in parsed.text and "změnu" in parsed.text
    (image,) = parse_email(read("flanker__russian-attachment-yahoo.eml")).attachments
    assert image.filename is not None and image.filename.startswith("Картинка с очень")  # noqa: RUF001


def test_rfc2047_words_in_names_and_broken_words() -> None:
    parsed = parse_email(read("flanker__encoded-header.eml"))
    assert parsed.from_ is not None and parsed.from_.name == "Foo, Bar"
    assert parsed.from_.address == "foo.bar@example.com"
    broken = parse_email(read("rubymail__error_emails__bad_encoded_subject.eml"))
    assert broken.subject == "TEST"  # unknown charset "NONE", bad base64 padding
    moore = parse_email(read("phpmimemailparser__m0023"))
    assert moore.from_ is not None and moore.from_.name == "Keith Moore"
    quoted = parse_email(
        read("rubymail__plain_emails__raw_email_with_partially_quoted_subject.eml")
    )
    assert quoted.subject == 'Re: Test: "漢字" mid "漢字" tail'


def test_rfc2231_filename_continuations() -> None:
    parsed = parse_email(read("rubymail__multi_charset__japanese_attachment_long_name.eml"))
    (attachment,) = parsed.attachments
    assert attachment.filename == "かきくけこ" * 5 + ".txt"
    raw_name = parse_email(read("rubymail__attachment_emails__attachment_nonascii_filename.eml"))
    assert [a.filename for a in raw_name.attachments] == ["ciële.txt"]


def test_path_traversal_in_filename_is_made_harmless() -> None:
    parsed = parse_email(read("phpmimemailparser__m0124"))
    assert [a.filename for a in parsed.attachments] == ["1234.txt"]
    raw = (
        b"From: a@example.com\r\nSubject: names\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b'--b\r\nContent-Type: application/octet-stream; name="C:\\\\x\\\\y.exe"\r\n'
        b'Content-Disposition: attachment; filename="C:\\\\x\\\\y.exe"\r\n\r\nMZ\r\n'
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n\r\nroot\r\n'
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename=".."\r\n\r\nx\r\n'
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="a\\x01b\\u202e.txt"\r\n\r\nx\r\n'
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + b"n" * 400 + b'.pdf"\r\n\r\nx\r\n'
        b"--b--\r\n"
    )
    names = [a.filename for a in parse_email(raw).attachments]
    assert names[:3] == ["y.exe", "passwd", "attachment"]
    assert names[3] is not None and "/" not in names[3] and "\x01" not in names[3]
    assert names[4] is not None and len(names[4]) == 255 and names[4].endswith(".pdf")


def test_newline_in_encoded_filename_is_removed() -> None:
    (attachment,) = parse_email(read("phpmimemailparser__issue250")).attachments
    assert attachment.filename == "Kontoutskrift for 1506.14.90466 Bedriftskonto.pdf"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "Outlook .msg"),
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (bytes(range(256)) * 4, "not an RFC 822 message"),
        (b"Hi,\nthis is just text.\n", "not an RFC 822 message"),
    ],
)
def test_non_rfc822_input_is_refused_with_a_clear_error(raw: bytes, reason: str) -> None:
    parsed = parse_email(raw)
    assert parsed.error is not None and reason in parsed.error
    assert parsed.message_id_derived and parsed.message_id.startswith("<sha256.")
    inbound = to_inbound(CHANNEL, raw)
    assert inbound.sender is None
    assert inbound.text == f"[{parsed.error}]"
    assert inbound.external_id == parse_email(raw).message_id  # stable


def test_endless_enclosure_is_bounded() -> None:
    started = time.process_time()
    parsed = parse_email(read("flanker__enclosed-endless.eml"))
    assert time.process_time() - started < 10  # CPU seconds; a guard, not a target
    assert parsed.error is None
    assert parsed.from_ is not None and parsed.from_.address == "example@example.net"
    assert "[Only the first 500 parts of this message were imported.]" in parsed.text


def test_deep_nesting_is_cut_with_a_note() -> None:
    depth = 2000
    raw = b"From: a@example.com\nSubject: deep\nMIME-Version: 1.0\n"
    for i in range(depth):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
    raw += b"Content-Type: text/plain\n\nhello\n"
    started = time.process_time()
    parsed = parse_email(raw)
    assert time.process_time() - started < 10
    assert parsed.error is None and parsed.subject == "deep"
    assert "multiparts; the rest of it was not imported" in parsed.text
    assert f"nested deeper than {MAX_DEPTH} levels" in parsed.text


def test_long_header_parses() -> None:
    parsed = parse_email(read("flanker__long-header.eml"))
    assert parsed.subject is not None and len(parsed.subject) > 100_000
    assert parsed.subject.startswith("Die heiße Zypernsonne quälte Max")
    assert parsed.text == "test"


HOSTILE_HTML = (
    b"From: a@example.com\nSubject: html\nMIME-Version: 1.0\n"
    b"Content-Type: text/html; charset=utf-8\n\n"
    b"<html><head><style>body{background:url(http://t.example/s)}</style>"
    b"<script>alert(1)</script></head><body onload='x()'>"
    b'<p style="color:red;background-image:url(http://t.example/b)">Hello <b>there</b></p>'
    b'<img src="http://t.example/pixel.gif" onerror="alert(2)" width=1>'
    b'<img src="cid:logo@example.com" alt="logo">'
    b'<a href="javascript:alert(3)">bad</a> <a href="https://ok.example/">good</a>'
    b'<form action="http://t.example/"><input name="p"></form>'
    b'<iframe src="http://t.example/f"></iframe><object data="x.swf"></object>'
    b"<!-- secret --></body></html>\n"
)


def test_html_is_sanitized() -> None:
    parsed = parse_email(HOSTILE_HTML)
    html = parsed.html
    assert html is not None
    for forbidden in ("<script", "alert", "onerror", "onload", "<form", "<input", "<iframe",
                      "<object", "url(", "javascript:", "secret", "<style"):  # fmt: skip
        assert forbidden not in html, forbidden
    assert not re.search(r"""\ssrc=["']?(?:https?:)?//""", html)
    assert 'data-remote-src="http://t.example/pixel.gif"' in html
    assert 'src="cid:logo@example.com"' in html
    assert '<a href="https://ok.example/" rel="noopener noreferrer nofollow">good</a>' in html
    assert parsed.text.startswith("Hello there")  # derived from the HTML: no text part


def test_html_only_message_gets_text() -> None:
    parsed = parse_email(read("chatwoot__only_html.eml"))
    assert parsed.text == "This is html only mail"
    assert parsed.html is not None and "<h1>" in parsed.html
    gmail = parse_email(read("chatwoot__mail_with_quote.eml"))
    assert gmail.html is not None and "gmail_quote" not in gmail.html  # class dropped
    assert gmail.text.startswith("Yes, I am providing you step how to reproduce this issue")


def test_cid_inline_images_are_marked_inline() -> None:
    raw = (
        b"From: a@example.com\nSubject: logo\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/related; boundary="r"\n\n'
        b'--r\nContent-Type: text/html\n\n<p>Our logo: <img src="cid:logo@x"></p>\n'
        b"--r\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\n"
        b"iVBORw0KGgo=\n"
        b"--r\nContent-Type: application/pdf; name=terms.pdf\nContent-ID: <terms@x>\n"
        b"Content-Disposition: attachment; filename=terms.pdf\n\n%PDF-1.4\n"
        b"--r--\n"
    )
    parsed = parse_email(raw)
    logo, terms = parsed.attachments
    assert (logo.inline, logo.content_id, logo.data) == (True, "logo@x", b"\x89PNG\r\n\x1a\n")
    assert (terms.inline, terms.filename) == (False, "terms.pdf")
    assert parsed.html is not None and 'src="cid:logo@x"' in parsed.html


def test_forwarded_message_is_an_attachment_and_never_the_sender() -> None:
    parsed = parse_email(read("flanker__enclosed.eml"))
    assert parsed.from_ is not None and parsed.from_.address == "bob@example.net"
    assert parsed.subject == "Wow" and parsed.text == "Hello"
    (forwarded,) = parsed.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "thanks.eml"
    inner = parse_email(forwarded.data)
    assert inner.error is None and inner.from_ is not None
    assert inner.from_.address != parsed.from_.address
    digest = parse_email(read("zbateson__m4007.txt"))
    assert digest.from_ is not None and digest.from_.address == "sender@email.test"
    assert [a.content_type for a in digest.attachments] == ["message/rfc822"]


def test_missing_final_boundary_keeps_the_text() -> None:
    parsed = parse_email(read("flanker__missing-final-boundary.eml"))
    assert parsed.text == "Some body"
    bare = parse_email(read("flanker__missing-boundaries.eml"))
    assert "Hi This is a broken message" in bare.text


def test_bodies_with_odd_structures() -> None:
    assert parse_email(read("flanker__false-multipart.eml")).text == ""
    outlook = parse_email(read("flanker__outlook-express.eml"))
    assert outlook.error is None and outlook.subject == "Sup?"
    only = parse_email(read("rubymail__attachment_emails__attachment_only_email.eml"))
    assert [a.content_type for a in only.attachments] == ["application/x-gzip"]
    blank = parse_email(read("helpdesk__blank-body-with-attachment.eml"))
    assert len(blank.attachments) == 1 and blank.attachments[0].data


def test_bounces_give_original_message_id_and_reason() -> None:
    zed = parse_email(read("flanker__bounce__zed.eml")).bounce
    assert zed is not None and zed.permanent
    assert zed.original_message_ids == ("<20090708054735.GC7578@example.com>",)
    assert "5.1.1" in zed.reason and "does not exist" in zed.reason
    office = parse_email(read("flanker__bounce__office365.eml")).bounce
    assert office is not None and office.permanent
    assert office.original_message_ids == ("<20171013111011.20866.254C2F3A4D7AA526@ninomail.com>",)
    assert office.recipients == ("noname@example.com",)
    assert "RecipientNotFound" in office.reason
    full = parse_email(read("flanker__bounce__mailbox-full.eml")).bounce
    assert full is not None and full.original_message_ids == ("<4E326A95.3010907@example.com>",)
    gmail = parse_email(read("flanker__bounce__gmail-invalid-address.eml")).bounce
    assert gmail is not None and gmail.permanent
    assert gmail.original_message_ids == (
        "<CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com>",
    )
    assert "550 5.1.0" in gmail.reason
    many = parse_email(read("rubymail__multipart_report_emails__multi_address_bounce1.eml"))
    assert many.bounce is not None and len(many.bounce.recipients) == 5


@pytest.mark.parametrize(
    "name",
    [
        "flanker__bounce__no-mx.eml",
        "rubymail__multipart_report_emails__report_422.eml",
    ],
)
def test_delayed_notices_are_not_permanent(name: str) -> None:
    bounce = parse_email(read(name)).bounce
    assert bounce is not None and not bounce.permanent and bounce.original_message_ids


def test_things_that_look_like_bounces_but_are_not() -> None:
    parsed = parse_email(read("chatwoot__mail_with_invalid_to.eml"))
    assert parsed.bounce is None and not parsed.auto_submitted
    assert parsed.from_ is not None and parsed.from_.address == ""
    assert parsed.from_.name == "Mark Whatney"
    assert to_inbound(CHANNEL, read("chatwoot__mail_with_invalid_to.eml")).sender is None
    assert parse_email(read("flanker__complaints__aol.eml")).bounce is None
    assert parse_email(read("flanker__disposition-notification.eml")).bounce is None


def test_bounce_without_from_address_has_no_sender() -> None:
    raw = read("chatwoot__bounced_with_no_from.eml")
    parsed = parse_email(raw)
    assert parsed.bounce is not None and parsed.auto_submitted
    assert to_inbound(CHANNEL, raw).sender is None


@pytest.mark.parametrize(
    ("header", "auto"),
    [
        ("Auto-Submitted: auto-replied", True),
        ("Auto-Submitted: no", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: vacation", True),
        ("X-Auto-Response-Suppress: All", True),
        ("Precedence: bulk", True),
        ("Precedence: junk", True),
        ("Precedence: list", True),
        ("List-Id: <news.example.com>", True),
        ("List-Unsubscribe: <mailto:u@example.com>", True),
        ("Subject: Automatic reply: your question", True),
        ("Subject: Out of Office: back Monday", True),
        ("Subject: Abwesenheitsnotiz: Urlaub", True),
        ("Subject: Auto: away", True),
        ("Subject: Out of ideas", False),
        ("X-Mailer: Thunderbird", False),
    ],
)
def test_auto_submitted_signals(header: str, auto: bool) -> None:
    raw = f"From: ann@example.com\nTo: b@example.com\n{header}\n\nbody\n".encode()
    assert parse_email(raw).auto_submitted is auto


@pytest.mark.parametrize(
    ("sender", "auto"),
    [
        ("MAILER-DAEMON@mx.example.com", True),
        ("Mail Delivery System <MAILER-DAEMON@mx.example.com>", True),
        ("postmaster@example.com", True),
        ("ann@example.com", False),
    ],
)
def test_mail_system_senders_are_auto(sender: str, auto: bool) -> None:
    raw = f"From: {sender}\nSubject: hello\n\nbody\n".encode()
    assert parse_email(raw).auto_submitted is auto


def test_auto_reply_only_from_windows_1250_subject() -> None:
    parsed = parse_email(read("phpmimemailparser__issue212"))
    assert parsed.subject is not None and parsed.subject.startswith("Automatyczna odpowiedź")
    assert parsed.auto_submitted and parsed.from_ is None and parsed.bounce is None


def test_non_standard_bounces() -> None:
    qmail = (
        b"From: MAILER-DAEMON@mx.example.com\nSubject: failure notice\n"
        b"Date: Mon, 1 Jan 2024 10:00:00 +0000\n\n"
        b"Hi. This is the qmail-send program at mx.example.com.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        b"<nobody@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        b"Message-ID: <our-reply-1@switchboard.example>\nSubject: Re: help\n"
    )
    bounce = parse_email(qmail).bounce
    assert bounce is not None and bounce.permanent
    assert bounce.original_message_ids == ("<our-reply-1@switchboard.example>",)
    assert "qmail-send" in bounce.reason
    exim = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.com>\n"
        b"Subject: Mail delivery failed: returning message to sender\n"
        b"In-Reply-To: <our-reply-2@switchboard.example>\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"A message that you sent could not be delivered to one or more of its\n"
        b"recipients. This is a permanent error. The following address(es) failed:\n\n"
        b"  nobody@example.org\n    host mx.example.org [192.0.2.1]\n"
        b"    SMTP error from remote mail server after RCPT TO:<nobody@example.org>:\n"
        b"    550 5.1.1 User unknown\n"
    )
    bounce = parse_email(exim).bounce
    assert bounce is not None and bounce.permanent
    assert bounce.original_message_ids == ("<our-reply-2@switchboard.example>",)
    assert "550 5.1.1 User unknown" in bounce.reason


def test_headers_ids_and_dates() -> None:
    quote = parse_email(read("chatwoot__mail_with_quote.eml"))
    assert quote.in_reply_to == (
        "<0100017b5d8efc70-c7f18809-aa55-48f6-91fd-b626092ed8b3-000000@email.amazonses.com>"
    )
    assert quote.references[-1] == quote.in_reply_to
    assert quote.sent_at == datetime(2021, 8, 19, 8, 44, 31, tzinfo=UTC)
    far = parse_email(read("rubymail__plain_emails__raw_email_bad_time.eml"))
    assert far.sent_at == datetime(3609, 6, 30, 9, 33, 50, tzinfo=UTC)  # representable: kept
    assert parse_email(read("flanker__signed.eml")).sent_at is None  # no Date header
    arabic = parse_email(read("chatwoot__non_utf_encoded_mail.eml"))
    assert arabic.in_reply_to == "<4e6e35f5a38b4_479f13bb90078178@small-app-01.mail>"
    two_from = parse_email(read("rubymail__plain_emails__raw_email_multiple_from.eml"))
    assert two_from.from_ is not None and two_from.from_.address == "tim@powerupdev.com"
    bad_to = parse_email(read("chatwoot__mail_with_invalid_to.eml"))
    assert [a.address for a in bad_to.to] == ["vishnu@chatwoot.com", "vishnu@chatwoot.com"]
    assert parse_email(read("chatwoot__malformed_reply_to.eml")).reply_to == ()


def test_duplicate_and_broken_headers() -> None:
    raw = (
        b"From: \nFrom: Real Person <real@example.com>\nFrom: other@example.com\n"
        b"Message-ID: not an id\nDate: yesterday-ish\n"
        b"References: <a@x> <b@x> <a@x>\n junk <c@x>\nSubject: =?utf-8?B?w6k=?=\n\nbody\n"
    )
    parsed = parse_email(raw)
    assert parsed.from_ is not None and parsed.from_.address == "real@example.com"
    assert parsed.message_id_derived and parsed.message_id.endswith("@switchboard.invalid>")
    assert parsed.sent_at is None
    assert parsed.references == ("<a@x>", "<b@x>", "<c@x>")
    assert parsed.subject == "é"
    many = b"From: a@x.com\nReferences: " + b" ".join(b"<r%d@x>" % i for i in range(300))
    refs = parse_email(many + b"\n\nbody\n").references
    assert len(refs) == 100 and refs[0] == "<r0@x>" and refs[-1] == "<r299@x>"


def test_display_name_that_is_an_address() -> None:
    raw = b'From: "boss@example.com" <phisher@example.net>\nSubject: hi\n\nbody\n'
    parsed = parse_email(raw)
    assert parsed.from_ is not None
    assert (parsed.from_.address, parsed.from_.name) == ("phisher@example.net", "boss@example.com")


def test_a_bounce_whose_diagnostic_has_raw_8bit_bytes_keeps_its_reason() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: support@example.org\r\n"
        b"Subject: Undelivered Mail\r\nMessage-ID: <b1@mx.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; ann@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 Benutzer \xfcnbekannt\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <sb.1@example.org>\r\n"
        b"--B--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.error is None
    assert parsed.bounce is not None
    assert parsed.bounce.original_message_ids == ("<sb.1@example.org>",)
    assert "Benutzer ünbekannt" in parsed.bounce.reason
