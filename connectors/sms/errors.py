"""Twilio's error codes translated, once, into the three connector errors and readable reasons.

Codes from Twilio's error dictionary (https://www.twilio.com/docs/api/errors).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from connectors.errors import AuthError, ConnectorError, PermanentError, TransientError

AUTHENTICATION_FAILED = 20003
UNSUBSCRIBED = 21610

# Refusals of a send that no retry can change.
PERMANENT_SEND_CODES: dict[int, str] = {
    21211: "the 'To' number is not a valid phone number",
    21408: "sending to this region is not enabled on the Twilio account",
    21606: "the 'From' number cannot send this message",
    21612: "Twilio cannot route a message from this number to the recipient",
    21614: "the 'To' number is not a mobile number",
    UNSUBSCRIBED: "the recipient has unsubscribed (replied STOP)",
}

# Why a sent message did not arrive (ErrorCode of an undelivered/failed status callback).
DELIVERY_ERRORS: dict[int, str] = {
    30003: "unreachable destination handset",
    30004: "message blocked by the recipient or their carrier",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
    UNSUBSCRIBED: "the recipient has unsubscribed (replied STOP)",
}


def delivery_error(code: str | None, message: str | None = None) -> str:
    """A readable reason for a failed delivery, naming Twilio's code."""
    number = int(code) if code and code.isdigit() else None
    reason = DELIVERY_ERRORS.get(number) if number is not None else None
    text = reason or message or "delivery failed"
    return f"{text} (Twilio {code})" if code else text


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transient_response(
    status: int, headers: Mapping[str, str] | None, text: str
) -> TransientError | None:
    """The TransientError for a rate-limited (429) or failing (5xx) API answer, else None.

    Decided from the HTTP answer because only it carries Retry-After; the twilio library's
    exception does not keep the headers."""
    if status != 429 and status < 500:
        return None
    detail = ""
    try:
        payload = json.loads(text)
        if isinstance(payload, dict) and payload.get("message"):
            detail = f": {payload['message']} (Twilio {payload.get('code', status)})"
    except ValueError:
        pass
    what = "rate limited" if status == 429 else "server error"
    return TransientError(f"Twilio {what}, HTTP {status}{detail}", retry_after(headers))


def from_api_error(status: int, code: int | None, message: str) -> ConnectorError:
    """The connector error for a refused API request (the twilio library's exception
    fields: HTTP status, Twilio error code, message)."""
    if code == AUTHENTICATION_FAILED or status == 401:
        return AuthError(f"Twilio refused the account SID or auth token ({code or status})")
    if status == 429 or status >= 500:
        return TransientError(f"Twilio HTTP {status}: {message}")
    reason = PERMANENT_SEND_CODES.get(code) if code is not None else None
    return PermanentError(f"{reason or message} (Twilio {code or status})")
