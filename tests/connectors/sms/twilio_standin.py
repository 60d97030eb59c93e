"""A local stand-in of Twilio's REST API on 127.0.0.1, and signed webhook helpers.

It speaks the documented wire format of the 2010-04-01 API (form bodies in, JSON out,
HTTP basic auth with the account SID and auth token, error bodies
{"code", "message", "more_info", "status"}) for what the SMS connector uses: creating
messages, fetching the account, listing incoming numbers, fetching a messaging service,
and serving MMS media (optionally through a redirect to a "CDN" on another origin, as
Twilio does). Every request is recorded; failures are scriptable.

The webhook helpers sign requests the way Twilio does (RequestValidator.compute_signature
over the public URL and the form parameters) and post them to a connector's routes.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientResponse, web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from connectors.sms.events import parse_form

API = "/2010-04-01/Accounts"

# Error bodies as Twilio documents them, by code: (HTTP status, message).
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21408: (400, "Permission to send an SMS has not been enabled for the region"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
}


def error_body(code: int) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of a Twilio error."""
    status, message = ERRORS[code]
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    form: MultiDictProxy[str]
    authorization: str | None

    def basic_auth(self) -> tuple[str, str] | None:
        """The (user, password) of the Authorization header, if it is HTTP basic."""
        if not self.authorization or not self.authorization.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(self.authorization[6:]).decode().partition(":")
        return user, password


@dataclass
class TwilioStandin:
    """The stand-in server; `async with TwilioStandin(...) as api:` runs it."""

    account_sid: str
    auth_token: str
    phone_numbers: set[str] = field(default_factory=set)
    messaging_services: set[str] = field(default_factory=set)
    # Scripted behaviour.
    failures: dict[str, int] = field(default_factory=dict)  # To number -> Twilio error code
    fail_all: int | None = None  # answer every API request with this error code (20429, 20500)
    retry_after: str | None = None  # Retry-After header sent with fail_all
    redirect_media: bool = False  # media answer 302 to a CDN URL on another origin
    # What it saw and made.
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """What the connector's `api_base_url` is set to."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> TwilioStandin:
        app = web.Application()
        app.add_routes(
            [
                web.post(API + "/{account}/Messages.json", self._create_message),
                web.get(API + "/{account}.json", self._fetch_account),
                web.get(API + "/{account}/IncomingPhoneNumbers.json", self._list_numbers),
                web.get(API + "/{account}/Messages/{message}/Media/{media}", self._media),
                web.get("/v1/Services/{service}", self._fetch_service),
                web.get("/cdn/{media}", self._cdn),
            ]
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # Scripting.

    def add_media(self, message_sid: str, data: bytes, content_type: str) -> str:
        """Stores a media file and answers its URL, as Twilio's MediaUrlN names it."""
        media_sid = sid("ME")
        self.media[media_sid] = (data, content_type)
        return f"{self.base_url}{API}/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    def api_requests(self, method: str, suffix: str) -> list[Recorded]:
        """The recorded requests with this method whose path ends with `suffix`."""
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # Handlers.

    async def _record(self, request: web.Request) -> Recorded:
        form = await request.post() if request.method == "POST" else MultiDict[str]()
        recorded = Recorded(
            request.method,
            request.path,
            dict(request.query),
            MultiDictProxy(MultiDict((k, str(v)) for k, v in form.items())),
            request.headers.get("Authorization"),
        )
        self.requests.append(recorded)
        return recorded

    def _refusal(self, request: web.Request, recorded: Recorded) -> web.Response | None:
        if self.fail_all is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return self._error(self.fail_all, headers)
        if recorded.basic_auth() != (self.account_sid, self.auth_token):
            return self._error(20003, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if request.match_info.get("account", self.account_sid) != self.account_sid:
            return self._error(20404)
        return None

    @staticmethod
    def _error(code: int, headers: dict[str, str] | None = None) -> web.Response:
        status, body = error_body(code)
        return web.json_response(body, status=status, headers=headers)

    async def _create_message(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        form = recorded.form
        to = form.get("To", "")
        if to in self.failures:
            return self._error(self.failures[to])
        if not to or not (form.get("Body") or form.get("MediaUrl")):
            return self._error(21211 if not to else 21614)
        now = format_datetime(datetime.now(UTC))
        message_sid = sid("SM")
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": str(len(form.getall("MediaUrl", []))),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {
                "media": f"{API}/{self.account_sid}/Messages/{message_sid}/Media.json"
            },
            "to": to,
            "uri": f"{API}/{self.account_sid}/Messages/{message_sid}.json",
        }
        self.messages.append(resource)
        return web.json_response(resource, status=201)

    async def _fetch_account(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        return web.json_response(
            {
                "sid": self.account_sid,
                "friendly_name": "Stand-in account",
                "status": "active",
                "type": "Full",
                "auth_token": self.auth_token,
                "owner_account_sid": self.account_sid,
                "date_created": format_datetime(datetime(2024, 1, 1, tzinfo=UTC)),
                "date_updated": format_datetime(datetime(2024, 1, 1, tzinfo=UTC)),
                "uri": f"{API}/{self.account_sid}.json",
                "subresource_uris": {},
            }
        )

    async def _list_numbers(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        wanted = recorded.query.get("PhoneNumber")
        numbers = [n for n in sorted(self.phone_numbers) if wanted in (None, n)]
        return web.json_response(
            {
                "incoming_phone_numbers": [
                    {
                        "account_sid": self.account_sid,
                        "phone_number": number,
                        "sid": "PN" + number.strip("+").rjust(32, "0"),
                        "capabilities": {"sms": True, "mms": True, "voice": True},
                    }
                    for number in numbers
                ],
                "end": max(len(numbers) - 1, 0),
                "first_page_uri": f"{API}/{self.account_sid}/IncomingPhoneNumbers.json?Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{API}/{self.account_sid}/IncomingPhoneNumbers.json",
            }
        )

    async def _fetch_service(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        service = request.match_info["service"]
        if service not in self.messaging_services:
            return self._error(20404)
        return web.json_response(
            {"sid": service, "account_sid": self.account_sid, "friendly_name": "Stand-in"}
        )

    async def _media(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refusal = self._refusal(request, recorded)
        if refusal is not None:
            return refusal
        media_sid = request.match_info["media"]
        if media_sid not in self.media:
            return self._error(20404)
        if self.redirect_media:
            # Another origin (localhost, not 127.0.0.1): the client must drop our credentials.
            raise web.HTTPFound(f"http://localhost:{self.port}/cdn/{media_sid}")
        data, content_type = self.media[media_sid]
        return web.Response(body=data, content_type=content_type)

    async def _cdn(self, request: web.Request) -> web.Response:
        await self._record(request)
        media_sid = request.match_info["media"]
        if media_sid not in self.media:
            raise web.HTTPNotFound()
        data, content_type = self.media[media_sid]
        return web.Response(body=data, content_type=content_type)


# Webhooks, as Twilio sends them.


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """X-Twilio-Signature for a form posted to `url`."""
    return str(RequestValidator(auth_token).compute_signature(url, MultiDict(list(params))))


def incoming_form(
    account_sid: str,
    from_: str,
    to: str,
    body: str,
    *,
    message_sid: str | None = None,
    media: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The parameters of an incoming SMS/MMS webhook (media: (url, content type) pairs)."""
    message_sid = message_sid or sid("MM" if media else "SM")
    params = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", message_sid),
        ("NumMedia", str(len(media))),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", message_sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", body),
        ("FromCountry", "US"),
        ("To", to),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", message_sid),
        ("AccountSid", account_sid),
        ("From", from_),
        ("ApiVersion", "2010-04-01"),
    ]
    for index, (url, content_type) in enumerate(media):
        params += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", url)]
    return params


def status_form(
    account_sid: str,
    message_sid: str,
    status: str,
    *,
    to: str = "+14155550199",
    from_: str = "+14155550100",
    error_code: str | None = None,
) -> list[tuple[str, str]]:
    """The parameters of a status callback for one of our messages."""
    params = [
        ("SmsSid", message_sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", to),
        ("MessageSid", message_sid),
        ("AccountSid", account_sid),
        ("From", from_),
        ("ApiVersion", "2010-04-01"),
    ]
    if error_code is not None:
        params.append(("ErrorCode", error_code))
    return params


async def post_webhook(
    session: Any,
    path: str,
    *,
    public_url: str,
    auth_token: str,
    params: Sequence[tuple[str, str]] | None = None,
    raw_body: str | None = None,
    signature: str | None = None,
    signed_params: Sequence[tuple[str, str]] | None = None,
    signed_url: str | None = None,
) -> ClientResponse:
    """POSTs a webhook signed as Twilio would sign it for `public_url + path`.

    `session` is an aiohttp test client (or a ClientSession with a base URL). The body is
    `raw_body` exactly, else `params` urlencoded. Tampering for tests: `signature` replaces
    the computed one ("" sends no header); `signed_params` / `signed_url` are what the
    signature is computed over instead of the real request."""
    body = raw_body if raw_body is not None else urlencode(list(params or ()))
    sent_params = list(parse_form(body.encode()).items())
    if signature is None:
        signature = sign(
            auth_token,
            signed_url or public_url.rstrip("/") + path,
            signed_params if signed_params is not None else sent_params,
        )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    response: ClientResponse = await session.post(path, data=body.encode(), headers=headers)
    return response
