"""Checking an upload's content type: what the browser claims, what the bytes are, and
what the form accepts.

The claim comes from the visitor's machine and means nothing by itself; the magic bytes of
the common types decide when they are recognized. Executables are refused whatever the form
accepts.
"""

from __future__ import annotations

from connectors.webform.definition import SCRIPTABLE_TYPES

OCTET_STREAM = "application/octet-stream"

# Recognized by their first bytes; order matters only where prefixes overlap (none do).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),  # an empty archive
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"MZ", "application/x-msdownload"),  # DOS/Windows PE executables and DLLs
    (b"\x7fELF", "application/x-executable"),
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary"),  # fat Mach-O (or a Java class)
)
EXECUTABLE_TYPES = frozenset(
    {"application/x-msdownload", "application/x-executable", "application/x-mach-binary"}
)
# Claimed types whose bytes are a container of the sniffed type: Office and OpenDocument
# files, EPUB and JAR are ZIP archives.
_CONTAINERS: dict[str, tuple[str, ...]] = {
    "application/zip": (
        "application/zip",
        "application/x-zip-compressed",
        "application/vnd.openxmlformats-officedocument.",
        "application/vnd.oasis.opendocument.",
        "application/epub+zip",
    ),
    "application/gzip": ("application/gzip", "application/x-gzip"),
}
# Types whose claim can be believed only when the magic bytes agree.
SNIFFABLE = frozenset(t for _, t in _MAGIC) | {"image/webp", "image/heic", "image/avif"}


def sniff(data: bytes) -> str | None:
    """The content type the first bytes reveal, or None when they are not a known type."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if brand in (b"avif", b"avis"):
            return "image/avif"
    return None


def _claim_matches(claimed: str, sniffed: str) -> bool:
    if claimed == sniffed:
        return True
    return any(claimed.startswith(prefix) for prefix in _CONTAINERS.get(sniffed, ()))


def accepted(content_type: str, accept: tuple[str, ...]) -> bool:
    """Whether `content_type` is in the accept list; wildcards never admit scriptable types
    (HTML, SVG), which must be listed exactly."""
    for entry in accept:
        if entry == content_type:
            return True
        if content_type in SCRIPTABLE_TYPES:
            continue
        if entry == "*/*" or (entry.endswith("/*") and content_type.startswith(entry[:-1])):
            return True
    return False


def verify_upload(claimed: str, data: bytes, accept: tuple[str, ...]) -> str:
    """The content type to store the file under, or ValueError with a message for the
    visitor: the bytes must agree with the claim, and the type must be accepted."""
    claim = claimed.split(";", 1)[0].strip().lower() or OCTET_STREAM
    found = sniff(data)
    if found in EXECUTABLE_TYPES:
        raise ValueError("Programs cannot be uploaded.")
    if claim == OCTET_STREAM and found is not None:
        # Browsers send octet-stream for extensions they do not know: the bytes decide.
        claim = found
    if found is not None and not _claim_matches(claim, found):
        raise ValueError(f"The file's content is not {claim}.")
    if found is None and claim in SNIFFABLE:
        raise ValueError(f"The file's content is not {claim}.")
    if claim.startswith("text/") and b"\x00" in data[:8192]:
        raise ValueError(f"The file's content is not {claim}.")
    if not accepted(claim, accept):
        raise ValueError(f"Files of type {claim} are not accepted here.")
    return claim
