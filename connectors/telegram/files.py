"""Downloading the files of inbound messages (getFile, then the file URL).

The Bot API hands out files of at most 20 MB to bots; a bigger one, or a download that
fails, becomes an attachment without data that says why and keeps the file id as its
`source`, so the message is stored anyway and the file can be fetched again later.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiohttp import ClientError

from connectors.telegram.updates import FileRef
from connectors.types import InboundAttachment

log = logging.getLogger(__name__)

DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024
TOO_BIG = "larger than the Bot API's 20 MB download limit"
_DOWNLOAD_TIMEOUT_SECONDS = 60


class _TooBig(Exception):
    pass


class _NoPath(Exception):
    pass


async def download(bot: Bot, ref: FileRef, limit: int = DOWNLOAD_LIMIT_BYTES) -> InboundAttachment:
    """The file as an attachment: with its data, or with `error` and `source` set."""
    if ref.size is not None and ref.size > limit:
        return _failed(ref, TOO_BIG, ref.size)
    try:
        data = await _fetch(bot, ref.file_id, limit)
    except _TooBig:
        return _failed(ref, TOO_BIG, ref.size)
    except _NoPath:
        return _failed(ref, "download failed: getFile gave no file path", ref.size, retry=True)
    except TelegramAPIError as err:
        # getFile answers 400 "file is too big" for files over the limit it serves.
        if "too big" in err.message.lower():
            return _failed(ref, TOO_BIG, ref.size)
        # Even a 400 may pass: Telegram answers "wrong file_id or the file is temporarily
        # unavailable" for both; the fetcher's attempts are bounded.
        return _failed(ref, f"download failed: {err.message}", ref.size, retry=True)
    except (ClientError, TimeoutError) as err:
        why = f"download failed: {type(err).__name__}: {err}"
        return _failed(ref, why, ref.size, retry=True)
    return InboundAttachment(
        filename=ref.filename, content_type=ref.content_type, data=data, size=len(data)
    )


async def refetch(bot: Bot, attachment: InboundAttachment) -> InboundAttachment:
    """Try again to download an attachment whose first download failed, by its file id."""
    if not attachment.source:
        return attachment
    ref = FileRef(
        file_id=attachment.source,
        filename=attachment.filename or "file",
        content_type=attachment.content_type,
        size=attachment.size,
    )
    return await download(bot, ref)


async def _fetch(bot: Bot, file_id: str, limit: int) -> bytes:
    file = await bot.get_file(file_id)
    if file.file_size is not None and file.file_size > limit:
        raise _TooBig
    if not file.file_path:
        raise _NoPath
    url = bot.session.api.file_url(bot.token, file.file_path)
    chunks: list[bytes] = []
    received = 0
    async for chunk in bot.session.stream_content(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS):
        received += len(chunk)
        if received > limit:
            raise _TooBig
        chunks.append(chunk)
    return b"".join(chunks)


def _failed(ref: FileRef, why: str, size: int | None, *, retry: bool = False) -> InboundAttachment:
    log.info("telegram file %s not downloaded: %s", ref.file_id, why)
    return InboundAttachment(
        filename=ref.filename,
        content_type=ref.content_type,
        data=b"",
        size=size,
        error=why,
        source=ref.file_id,
        retry=retry,
    )
