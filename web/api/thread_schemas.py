"""Query models of web/api/thread.py (message files and retries)."""

from __future__ import annotations

from pydantic import Field

from web.api.schemas import Input


class AttachmentQuery(Input):
    """`?inline=1` shows a safe image in the page (thumbnails) instead of downloading it."""

    inline: bool = Field(
        default=False,
        description="show a PNG, JPEG, GIF, WebP or AVIF image rather than download it",
    )
