"""reply_text: the new part of a reply, on the reply-parser fixtures and on each client's style."""

from __future__ import annotations

import pytest

from connectors.email.parse import parse_email
from connectors.email.quotes import reply_text
from tests.connectors.email.corpus import read

# The zapier email-reply-parser body fixtures and the reply each must give.
FIXTURES = {
    "emailreplyparser__email_1_3.txt": "Oh thanks.\n\nHaving the function would be great.\n\n"
    "-Abhishek Kona",
    "emailreplyparser__email_2_1.txt": "Outlook with a reply",
    "emailreplyparser__email_BlackBerry.txt": "Here is another email",
    "emailreplyparser__email_iPhone.txt": "Here is another email",
    "emailreplyparser__email_gmail.txt": "This is a test for inbox replying to a github message.",
    "emailreplyparser__email_headers_no_delimiter.txt": "And another reply!",
    "emailreplyparser__email_one_is_not_on.txt": "Thank, this is really helpful.\n\n"
    "One outstanding question I had:\n\nLocally (on development), when I run...",
    "emailreplyparser__email_partial_quote_header.txt": "On your remote host you can run:\n\n"
    "telnet 127.0.0.1 52698\n\nThis should connect to TextMate (on your Mac, via the tunnel)."
    " If that\nfails, the tunnel is not working.",
    "emailreplyparser__greedy_on.txt": "On your remote host you can run:\n\n"
    "telnet 127.0.0.1 52698\n\nThis should connect to TextMate (on your Mac, via the tunnel)."
    " If that\nfails, the tunnel is not working.",
    "emailreplyparser__pathological.txt": "I think you're onto something. I will try to fix"
    " the problem as soon as I\nget back to a computer.",
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_reply_parser_fixtures(name: str) -> None:
    assert reply_text(read(name).decode("utf-8")) == FIXTURES[name]


def test_hyphen_list_is_not_a_signature() -> None:
    text = read("emailreplyparser__email_1_5.txt").decode("utf-8")
    reply = reply_text(text)
    assert reply is not None and reply.endswith("It goes on and on\nfor a while.")
    assert "- This is the fourth bullet point" in reply


def test_interleaved_reply_keeps_the_text_above_the_quote() -> None:
    # A known limit of the library (module docstring): answers between quoted lines
    # are cut; what is kept never contains the quoted history.
    reply = reply_text(read("emailreplyparser__email_1_2.txt").decode("utf-8"))
    assert reply is not None and reply.startswith("Hi,")
    assert "Abhishek Kona wrote" not in reply and ">" not in reply


STYLES = {
    "gmail": "Thanks, that works!\n\nOn Mon, Jan 8, 2024 at 10:02 AM Support Team "
    "<support@example.com> wrote:\n\n> Please try again.\n>\n> --\n> Support\n",
    "outlook": "Sounds good, thank you.\n\n________________________________\n"
    "From: Support Team <support@example.com>\nSent: Monday, January 8, 2024 10:02 AM\n"
    "To: Ann Example <ann@example.com>\nSubject: RE: Order 123\n\nPlease try again.\n",
    "outlook-original-message": "Sounds good, thank you.\n\n-----Original Message-----\n"
    "From: Support Team [mailto:support@example.com]\nSent: Monday, January 08, 2024 10:02\n"
    "To: Ann Example\nSubject: Order 123\n\nPlease try again.\n",
    "apple-mail": "Yes please.\n\nSent from my iPhone\n\n> On 8 Jan 2024, at 10:02, "
    "Support Team <support@example.com> wrote:\n>\n> Please try again.\n",
    "thunderbird": "Works now.\n\nOn 08.01.24 10:02, Support Team wrote:\n> Please try again.\n",
    "thunderbird-de": "Geht jetzt.\n\nAm 08.01.24 um 10:02 schrieb Support Team:\n"
    "> Bitte noch einmal versuchen.\n",
    "signature": "Works now.\n\n-- \nAnn Example\nACME Corp, +1 555 0100\n",
}
STYLE_REPLIES = {
    "gmail": "Thanks, that works!",
    "outlook": "Sounds good, thank you.",
    "outlook-original-message": "Sounds good, thank you.",
    "apple-mail": "Yes please.",
    "thunderbird": "Works now.",
    "thunderbird-de": "Geht jetzt.",
    "signature": "Works now.",
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_client_reply_styles(style: str) -> None:
    assert reply_text(STYLES[style]) == STYLE_REPLIES[style]


def test_plain_text_without_quotes_is_kept_whole() -> None:
    assert reply_text("  Hello,\nI need help with my order.\n") == (
        "Hello,\nI need help with my order."
    )
    assert reply_text(" \n ") is None


def test_real_replies_in_the_corpus() -> None:
    gmail = parse_email(read("chatwoot__mail_with_quote.eml"))
    assert gmail.reply_text == "Yes, I am providing you step how to reproduce this issue"
    assert "Any update on this?" in gmail.text
    forwarded = parse_email(read("helpdesk__forwarded-message.eml"))
    assert forwarded.reply_text == "This is email body"
    plain = parse_email(read("rubymail__plain_emails__raw_email_reply.eml"))
    assert plain.reply_text == "Message body"


def test_library_failure_falls_back_to_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.email.quotes as quotes

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("library bug")

    monkeypatch.setattr(quotes, "EmailMessage", broken)
    assert reply_text("Hi\n\nOn Mon, Ann wrote:\n> old\n") == "Hi\n\nOn Mon, Ann wrote:\n> old"
