"""Form definitions and request bodies shared by the web form tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from connectors.webform.definition import FormDefinition

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 54 + b"PE\x00\x00"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20


def contact_form(**overrides: Any) -> FormDefinition:
    """A form with one field of every type."""
    data: dict[str, Any] = {
        "name": "Contact us",
        "channel_id": "chan-1",
        "fields": [
            {
                "name": "name",
                "label": "Your name",
                "type": "text",
                "required": True,
                "maps_to": "name",
            },
            {"name": "email", "label": "Email", "type": "email", "maps_to": "email"},
            {"name": "phone", "label": "Phone", "type": "phone", "maps_to": "phone"},
            {
                "name": "topic",
                "label": "Topic",
                "type": "select",
                "options": ["sales", {"value": "support", "label": "Customer support"}],
            },
            {
                "name": "message",
                "label": "Message",
                "type": "textarea",
                "required": True,
                "maps_to": "message",
            },
            {"name": "company", "label": "Company", "type": "text", "maps_to": "attribute:company"},
            {
                "name": "consent",
                "label": "I agree to be contacted",
                "type": "checkbox",
                "required": True,
            },
            {
                "name": "attachment",
                "label": "Attachment",
                "type": "file",
                "accept": ["image/png", "application/pdf"],
                "max_bytes": 1024,
            },
        ],
        "allowed_origins": ["https://shop.example"],
    }
    data.update(overrides)
    return FormDefinition.model_validate(data)


@pytest.fixture
def form() -> FormDefinition:
    return contact_form()


BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(
    fields: Sequence[tuple[str, str | bytes]],
    files: Sequence[tuple[str, str, str, bytes]] = (),
    boundary: str = BOUNDARY,
) -> bytes:
    """A multipart/form-data body as a browser writes it: text fields, then files
    (name, filename, content type, data)."""
    out = b""
    for name, value in fields:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + raw
            + b"\r\n"
        )
    for name, filename, content_type, data in files:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


GOOD_FIELDS: list[tuple[str, str]] = [
    ("name", "Ann Lee"),
    ("email", "ann@example.com"),
    ("phone", "030 901820"),
    ("topic", "support"),
    ("message", "Hello,\r\nI need help."),
    ("company", "Acme"),
    ("consent", "on"),
]
