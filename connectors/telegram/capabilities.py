"""What a Telegram channel can carry (kept apart from the connector, which imports aiogram:
the registry needs this without paying for aiogram's import)."""

from __future__ import annotations

from connectors.base import Capabilities

MIB = 1024 * 1024

CAPABILITIES = Capabilities(
    # Replies are split into 4,096-unit messages (split.py); this only stops a runaway
    # reply from becoming dozens of messages.
    max_text_length=8 * 4096,
    supports_attachments=True,
    max_attachment_bytes=50 * MIB,  # the Bot API's upload limit
    sends_per_second=30,  # Bot API FAQ: about 30 messages a second per bot
    sends_per_second_per_recipient=1,  # ... and one a second per chat
)
