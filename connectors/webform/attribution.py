"""Where a form submission came from: page, referrer, UTM parameters, browser, address.

Two sources, the request's headers (which the endpoint passes as RequestInfo) and hidden
fields the hosted page and the embed script post (`_page_url`, `_referrer`, `_utm_*`):
the page a form is embedded in is only known to the script running in it, since browsers
often cut the Referer header down to the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from connectors.webform.clean import clean_line
from connectors.webform.submission import Submission

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_URL = 2_048
MAX_USER_AGENT = 512
MAX_UTM = 200


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the endpoint knows of the HTTP request besides its body."""

    ip: str | None = None  # the client address (after trusted proxy handling)
    user_agent: str | None = None
    referer: str | None = None  # the Referer header
    origin: str | None = None  # the Origin header


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where one submission came from; `pairs()` is what Inbound.attribution carries."""

    form_key: str
    page_url: str | None = None
    referrer: str | None = None
    utm: tuple[tuple[str, str], ...] = ()
    user_agent: str | None = None
    ip: str | None = None

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(key, value) pairs, absent values left out, in a stable order."""
        items: list[tuple[str, str | None]] = [
            ("form_key", self.form_key),
            ("page_url", self.page_url),
            ("referrer", self.referrer),
            *self.utm,
            ("user_agent", self.user_agent),
            ("ip", self.ip),
        ]
        return tuple((key, value) for key, value in items if value)


def web_url(value: str | None) -> str | None:
    """An http(s) URL fit to record: bounded, without credentials; None for anything else
    (javascript:, data:, garbage)."""
    if not value:
        return None
    text = clean_line(value, MAX_URL)
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]  # user:password@ never belongs in a record
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


def _utm(page_url: str | None, hidden: dict[str, str]) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    if page_url:
        for key, value in parse_qsl(urlsplit(page_url).query, keep_blank_values=False):
            if key in UTM_KEYS and key not in found:
                found[key] = value
    for key in UTM_KEYS:  # posted explicitly: the page's script knows best
        if hidden.get(f"_{key}"):
            found[key] = hidden[f"_{key}"]
    return tuple(
        (key, clean_line(found[key], MAX_UTM))
        for key in UTM_KEYS
        if key in found and clean_line(found[key], MAX_UTM)
    )


def attribution_for(
    form_key: str, request: RequestInfo, submission: Submission, *, keep_ip: bool = True
) -> Attribution:
    """The attribution of a submission. The page is the posted `_page_url`, else the
    Referer header; `keep_ip=False` leaves the address out (the retention setting)."""
    hidden = dict(submission.hidden)
    page_url = web_url(hidden.get("_page_url")) or web_url(request.referer)
    user_agent = clean_line(request.user_agent or "", MAX_USER_AGENT)
    ip = clean_line(request.ip or "", 64) if keep_ip else ""
    return Attribution(
        form_key=form_key,
        page_url=page_url,
        referrer=web_url(hidden.get("_referrer")),
        utm=_utm(page_url, hidden),
        user_agent=user_agent or None,
        ip=ip or None,
    )
