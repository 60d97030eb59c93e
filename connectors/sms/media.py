"""Downloads MMS media with the account's credentials, under a size limit.

Twilio media URLs are on its REST API host and redirect to a CDN; aiohttp follows the
redirect and drops the credentials when it leaves the API's origin. Only URLs on the API
host are fetched, so the auth token is never sent to a host a webhook merely names.
A failed or oversized download keeps the message: the attachment carries the reason and
the URL to try again with.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from urllib.parse import urlsplit

import aiohttp

from connectors.sms.events import Media
from connectors.types import InboundAttachment

log = logging.getLogger(__name__)

_GENERIC = "application/octet-stream"

TWILIO_API = "https://api.twilio.com"
_CHUNK = 64 * 1024


class MediaTooLarge(Exception):
    """The file is over the channel's limit (`size`: its declared size, when known)."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"{size} bytes" if size is not None else "too large")
        self.size = size


def media_filename(url: str, content_type: str, index: int) -> str:
    """A display name from the media SID in the URL and the type's usual extension."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    stem = last if last.startswith("ME") and last.isalnum() else f"media{index}"
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    return stem + extension


class MediaFetcher:
    """Fetches media files for one account; one HTTP session, opened on first use."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str | None,
        max_bytes: int,
        timeout: float,
    ) -> None:
        self._headers = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        base = urlsplit(api_base_url or TWILIO_API)
        self._origin = (base.scheme, base.netloc)
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def fetch_all(self, media: tuple[Media, ...]) -> tuple[InboundAttachment, ...]:
        """Every file of a message, fetched concurrently; failures noted, never raised."""
        return tuple(
            await asyncio.gather(
                *(
                    self.fetch(
                        item.url, item.content_type, media_filename(item.url, item.content_type, n)
                    )
                    for n, item in enumerate(media)
                )
            )
        )

    async def fetch(self, url: str, content_type: str, filename: str | None) -> InboundAttachment:
        """One file as an attachment: with its bytes, or with `error` and `source` set."""

        def failed(reason: str, size: int | None = None, retry: bool = False) -> InboundAttachment:
            log.warning("MMS media %s not stored: %s", url, reason)
            return InboundAttachment(
                filename, content_type, b"", size=size, error=reason, source=url, retry=retry
            )

        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            return failed("not fetched: the media URL is not on the Twilio API host")
        try:
            data, served_type = await self._download(url)
        except MediaTooLarge as err:
            return failed(f"over the {self._max_bytes} byte limit", err.size)
        except TimeoutError:
            return failed("download timed out", retry=True)
        except aiohttp.ClientResponseError as err:
            # Even a 404 may pass: media can lag the webhook that names it, and a refused
            # credential can be corrected; the fetcher's attempts are bounded.
            return failed(f"download failed: HTTP {err.status} {err.message}", retry=True)
        except aiohttp.ClientError as err:
            return failed(f"download failed: {err!r}", retry=True)
        except ValueError as err:
            return failed(f"download failed: {err!r}")
        # The webhook's MediaContentType wins; when it named none (or only the generic
        # octet-stream a re-fetch starts from), the type the media host serves.
        declared = content_type if content_type != _GENERIC else ""
        return InboundAttachment(
            filename, declared or served_type or _GENERIC, data, size=len(data), source=url
        )

    async def _download(self, url: str) -> tuple[bytes, str]:
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with session.get(url, headers=self._headers, raise_for_status=True) as response:
            declared = response.content_length
            if declared is not None and declared > self._max_bytes:
                raise MediaTooLarge(declared)
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.content.iter_chunked(_CHUNK):
                total += len(chunk)
                if total > self._max_bytes:
                    raise MediaTooLarge(None)
                chunks.append(chunk)
            return b"".join(chunks), response.content_type

    async def close(self) -> None:
        """Closes the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
