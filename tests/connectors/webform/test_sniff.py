"""Upload content types: the claim, the magic bytes, and the accept list."""

from __future__ import annotations

import pytest

from connectors.webform.sniff import accepted, sniff, verify_upload
from tests.connectors.webform.conftest import PDF, PE, PNG, ZIP

WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (WEBP, "image/webp"),
        (HEIC, "image/heic"),
        (PDF, "application/pdf"),
        (ZIP, "application/zip"),
        (PE, "application/x-msdownload"),
        (ELF, "application/x-executable"),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_sniff(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


def test_accept_wildcards_never_admit_scriptable_types() -> None:
    assert accepted("image/png", ("image/*",))
    assert accepted("text/csv", ("*/*",))
    assert not accepted("image/svg+xml", ("image/*",))
    assert not accepted("text/html", ("*/*", "text/*"))
    assert accepted("image/svg+xml", ("image/svg+xml",))
    assert not accepted("image/png", ("image/jpeg", "application/pdf"))
    assert not accepted("imagex/png", ("image/*",))


def test_containers_match_their_archive_bytes() -> None:
    assert verify_upload(DOCX, ZIP, (DOCX,)) == DOCX
    assert verify_upload("application/zip", ZIP, ("application/*",)) == "application/zip"
    with pytest.raises(ValueError, match="not application/pdf"):
        verify_upload("application/pdf", ZIP, ("application/*",))


def test_claims_are_normalized_and_unknown_bytes_trusted_only_for_unsniffable_types() -> None:
    assert verify_upload("Image/PNG; charset=x", PNG, ("image/png",)) == "image/png"
    assert verify_upload("text/csv", b"a,b\n1,2\n", ("text/csv",)) == "text/csv"
    with pytest.raises(ValueError, match="not text/csv"):
        verify_upload("text/csv", b"a,b\x00", ("text/csv",))
    with pytest.raises(ValueError, match="not image/webp"):
        verify_upload("image/webp", b"RIFF....AVI ", ("image/*",))
    with pytest.raises(ValueError, match="application/octet-stream are not accepted"):
        verify_upload("", b"\x00\x01unknown", ("image/*",))
    with pytest.raises(ValueError, match="Programs cannot be uploaded"):
        verify_upload("text/plain", ELF, ("*/*",))
