"""Twilio's REST API through the twilio library's client and its async HTTP client: sending,
and the "test connection" check.

`api_base_url` points the client's API and Messaging domains elsewhere (a local stand-in in
tests); the library's `Domain.base_url` is the hook its generated resources build URLs from.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from connectors.errors import AuthError, ConnectorError, PermanentError, TransientError
from connectors.sms.config import SmsConfig
from connectors.sms.errors import from_api_error, transient_response
from connectors.types import Outbound, ProviderMessageId, SendResult

log = logging.getLogger(__name__)


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The library's async client with a request timeout by default, answering 429 and 5xx
    with TransientError while the response (and its Retry-After header) is at hand."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            # As a header: aiohttp deprecates the BasicAuth object the library would build.
            headers = {**(headers or {}), "Authorization": aiohttp.encode_basic_auth(*auth)}
        response = await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            # The library passes None, which aiohttp reads as "no timeout at all".
            timeout=timeout or self.timeout,
            allow_redirects=allow_redirects,
        )
        transient = transient_response(response.status_code, response.headers, response.text)
        if transient is not None:
            raise transient
        return response


def _translate(err: Exception) -> ConnectorError:
    """The connector error for anything the client raised."""
    if isinstance(err, ConnectorError):
        return err
    if isinstance(err, TwilioRestException):
        return from_api_error(err.status, err.code, str(err.msg))
    if isinstance(err, TwilioServiceException):
        return from_api_error(err.status, err.code, err.detail or err.title)
    if isinstance(err, TimeoutError):
        return TransientError("Twilio did not answer in time")
    if isinstance(err, aiohttp.ClientError):
        return TransientError(f"cannot reach Twilio: {err}")
    return PermanentError(f"Twilio client error: {err}")


class TwilioApi:
    """One account's REST client, created on first use (its HTTP session needs the loop)."""

    def __init__(self, config: SmsConfig) -> None:
        self._config = config
        self._client: Any = None
        self._http: Any = None

    def _get(self) -> Any:
        if self._client is None:
            self._http = _HttpClient(timeout=self._config.api_timeout_seconds)
            client = Client(
                self._config.account_sid, self._config.auth_token, http_client=self._http
            )
            if self._config.api_base_url:
                base = self._config.api_base_url.rstrip("/")
                client.api.base_url = base
                client.messaging.base_url = base
            self._client = client
        return self._client

    async def send(self, message: Outbound, status_callback: str) -> SendResult:
        """Creates the message; Twilio calls `status_callback` as its delivery state changes."""
        if message.attachments:
            # Twilio fetches MMS media from public URLs; we hold only bytes (CAPABILITIES).
            raise PermanentError("attachments cannot be sent by SMS yet")
        sender: dict[str, str] = (
            {"from_": self._config.phone_number}
            if self._config.phone_number
            else {"messaging_service_sid": str(self._config.messaging_service_sid)}
        )
        try:
            created = await self._get().messages.create_async(
                to=message.recipient,
                body=message.text,
                status_callback=status_callback,
                **sender,
            )
        except (TwilioException, aiohttp.ClientError, TimeoutError, ConnectorError) as err:
            raise _translate(err) from err
        return SendResult(provider_message_id=ProviderMessageId(str(created.sid)))

    async def check(self) -> dict[str, str]:
        """Field errors for the configuration (empty when the account and sender check out)."""
        config = self._config
        try:
            client = self._get()
            await client.api.v2010.accounts(config.account_sid).fetch_async()
            if config.phone_number:
                numbers = await client.incoming_phone_numbers.list_async(
                    phone_number=config.phone_number, limit=20
                )
                if not any(n.phone_number == config.phone_number for n in numbers):
                    return {"phone_number": "this number is not in the account"}
            elif config.messaging_service_sid:
                try:
                    await client.messaging.v1.services(config.messaging_service_sid).fetch_async()
                except TwilioRestException as err:
                    if err.status != 404:
                        raise
                    return {"messaging_service_sid": "this messaging service is not in the account"}
        except (TwilioException, aiohttp.ClientError, TimeoutError, ConnectorError) as err:
            failure = _translate(err)
            if isinstance(failure, AuthError):
                return {"auth_token": str(failure)}
            if isinstance(failure, TransientError):
                return {"api_base_url": f"cannot connect: {failure}"}
            return {"account_sid": str(failure)}
        return {}

    async def close(self) -> None:
        """Closes the HTTP session, if one was opened."""
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None
