"""X-Twilio-Signature checking with the twilio library's RequestValidator.

Twilio signs the URL it called plus the sorted form parameters (HMAC-SHA1 with the auth
token). RequestValidator already tries the URL with and without the default port; what it
leaves to us: Twilio signs the URL as a WHATWG URL parser normalizes it (an apostrophe in
the query becomes %27), and a JSON body is signed through a bodySHA256 query parameter.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

SIGNATURE_HEADER = "X-Twilio-Signature"


def _url_variants(url: str) -> list[str]:
    variants = [url]
    normalized = url.replace("'", "%27")
    if normalized != url:
        variants.append(normalized)
    return variants


def signature_is_valid(
    auth_token: str, url: str, params: object, signature: str | None, body: str | None = None
) -> bool:
    """Whether `signature` is Twilio's for this request.

    `url` is the full URL Twilio called (public URL + path and query as received);
    `params` the form parameters (a multidict, so repeated keys count; ignored when `body`
    is given); `body` the text of a JSON webhook, which must be named by a bodySHA256
    query parameter."""
    if not signature:
        return False
    validator = RequestValidator(auth_token)
    payload: object = params
    if body is not None:
        # A body is covered only through its hash in the URL; without one it is unsigned.
        if "bodySHA256" not in parse_qs(urlsplit(url).query):
            return False
        payload = body
    return any(
        bool(validator.validate(candidate, payload, signature)) for candidate in _url_variants(url)
    )
