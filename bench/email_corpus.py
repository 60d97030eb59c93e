"""A deterministic corpus of realistic email for the email benchmarks.

The mix is what a support mailbox receives: plain text, HTML with a text alternative,
multipart mail with base64 attachments, and replies carrying quoted history; about a
fifth of the messages use a legacy charset (windows-1251, koi8-r, iso-8859-1,
iso-2022-jp, shift_jis) and encoded words in Subject and From. Messages average about
17 KB, like the 2,000-message corpus of issue 6. Same arguments, same bytes.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime

_WORD_LIST = (
    "order invoice delivery account password reset refund shipping address payment card "
    "please thanks hello support question problem issue update status ticket number since "
    "yesterday today tomorrow week customer service product return exchange broken item "
    "package tracking late again still waiting help could would should when where why "
    "the a an of to in for on with at by from and or but not is are was were be been "
    "have has had do does did can will just also very really quite more most some any"
)
_WORDS = tuple(_WORD_LIST.split())
_NAMES = ("Ann Example", "Bob Müller", "Chloé Dubois", "Dmitri Ivanov", "Eve Adams", "Fumiko Sato")
_LEGACY = {
    # charset: (display name, a sentence) in that language
    "windows-1251": ("Дмитрий Иванов", "Здравствуйте, мой заказ ещё не доставлен."),
    "koi8-r": ("Ольга Петрова", "Добрый день, прошу вернуть деньги за товар."),
    "iso-8859-1": ("José Núñez", "¿Dónde está mi pedido? Gracias por su atención."),
    "iso-2022-jp": ("佐藤 文子", "注文した商品がまだ届いていません。"),
    "shift_jis": ("鈴木 一郎", "返品の手続きについて教えてください。"),
}
_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    return " ".join(words).capitalize() + rng.choice(".?!")


def _paragraphs(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        lines = [_sentence(rng) for _ in range(rng.randint(2, 5))]
        paragraph = "\n".join(lines)
        out.append(paragraph)
        length += len(paragraph) + 2
    return "\n\n".join(out)


def _b64(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _headers(rng: random.Random, i: int, name: str, charset: str, subject: str) -> list[str]:
    user = f"customer{rng.randint(1, 400)}@example.org"
    display = Header(name, charset).encode() if not name.isascii() else f'"{name}"'
    encoded_subject = Header(subject, charset).encode() if not subject.isascii() else subject
    sent = _START + timedelta(minutes=7 * i + rng.randint(0, 6))
    return [
        f"Return-Path: <{user}>",
        "Received: from mx.example.org (mx.example.org [192.0.2.10])\n"
        f"\tby mail.example.com with ESMTPS id {i:08x}; {format_datetime(sent)}",
        f"From: {display} <{user}>",
        "To: Support <support@example.com>",
        f"Subject: {encoded_subject}",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: <{i:06d}.{rng.randint(10**8, 10**9)}@mail.example.org>",
        "MIME-Version: 1.0",
    ]


def _html(text: str) -> str:
    paragraphs = "".join(
        f'<p style="margin:0 0 12px 0;font-family:Arial">{p.replace(chr(10), "<br>")}</p>'
        for p in text.split("\n\n")
    )
    return (
        "<html><head><style>p{color:#333}</style></head><body>"
        f'<div dir="ltr">{paragraphs}'
        '<img src="https://track.example.net/open.gif" width="1" height="1"></div>'
        "</body></html>"
    )


def _text_part(text: str, charset: str) -> list[str]:
    if charset == "utf-8":
        body = _b64(text.encode("utf-8")) if not text.isascii() else text
        encoding = "base64" if not text.isascii() else "7bit"
    elif charset == "iso-2022-jp":
        body, encoding = text.encode(charset).decode("ascii"), "7bit"
    else:
        body, encoding = _b64(text.encode(charset)), "base64"
    return [
        f'Content-Type: text/plain; charset="{charset}"',
        f"Content-Transfer-Encoding: {encoding}",
        "",
        body,
    ]


def build_corpus(count: int = 2000, seed: int = 1) -> list[bytes]:
    """`count` raw RFC 822 messages, deterministic for a given `seed`."""
    rng = random.Random(seed)
    corpus: list[bytes] = []
    for i in range(count):
        kind = rng.choices(["plain", "html", "attachment", "reply"], [30, 20, 25, 25])[0]
        charset = "utf-8"
        name = rng.choice(_NAMES)
        text = _paragraphs(rng, rng.randint(800, 4000))
        subject = f"Order {rng.randint(10000, 99999)}: {_sentence(rng)[:40]}"
        if rng.random() < 0.2:
            charset = rng.choice(sorted(_LEGACY))
            name, sentence = _LEGACY[charset]
            text = sentence + "\n\n" + text
            subject = sentence[:24]
        if kind == "reply":
            subject = "Re: " + subject
            quoted = "\n".join("> " + line for line in _paragraphs(rng, 6000).split("\n"))
            text = (
                f"{_sentence(rng)}\n{_sentence(rng)}\n\nOn Mon, 5 Jan 2026 at 10:{i % 60:02d}, "
                f"Support <support@example.com> wrote:\n{quoted}\n"
            )
        lines = _headers(rng, i, name, charset, subject)
        if kind == "reply":
            lines.append(f"In-Reply-To: <reply-{i - 1}@example.com>")
            lines.append(f"References: <root-{i // 10}@example.com> <reply-{i - 1}@example.com>")
        boundary = f"=_b{seed}_{i}_{rng.randint(10**6, 10**7)}"
        if kind in ("plain", "reply"):
            lines += _text_part(text, charset)
        elif kind == "html":
            html = _html(text)
            html_body = _b64(html.encode(charset)) if not html.isascii() else html
            lines += [
                f'Content-Type: multipart/alternative; boundary="{boundary}"',
                "",
                f"--{boundary}",
                *_text_part(text, charset),
                f"--{boundary}",
                f'Content-Type: text/html; charset="{charset}"',
                "Content-Transfer-Encoding: " + ("7bit" if html.isascii() else "base64"),
                "",
                html_body,
                f"--{boundary}--",
                "",
            ]
        else:
            size = rng.randint(16_000, 50_000)
            attachment = rng.randbytes(size)
            filename = rng.choice(["photo.jpg", "invoice.pdf", "scan 2026-01.png", "log.zip"])
            lines += [
                f'Content-Type: multipart/mixed; boundary="{boundary}"',
                "",
                f"--{boundary}",
                *_text_part(text, charset),
                f"--{boundary}",
                f'Content-Type: application/octet-stream; name="{filename}"',
                f'Content-Disposition: attachment; filename="{filename}"',
                "Content-Transfer-Encoding: base64",
                "",
                _b64(attachment),
                f"--{boundary}--",
                "",
            ]
        corpus.append("\r\n".join("\r\n".join(line.split("\n")) for line in lines).encode())
    return corpus
