"""Configuration of an email channel (an IMAP/SMTP mailbox)."""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field, model_validator

from connectors.config import ChannelConfig

Security = Literal["tls", "starttls", "none"]

MIB = 1024 * 1024


class EmailConfig(ChannelConfig):
    """IMAP to receive, SMTP to send. Ports default from the security mode."""

    secret_fields = frozenset({"imap_password", "smtp_password"})

    imap_host: str = Field(min_length=1, max_length=255)
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_security: Security = "tls"
    imap_username: str = Field(min_length=1, max_length=320)
    imap_password: str = Field(min_length=1, max_length=1024)
    imap_folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str | None = Field(default=None, max_length=320)
    smtp_password: str | None = Field(default=None, max_length=1024)
    from_address: EmailStr
    from_name: str | None = Field(default=None, max_length=200)
    # Sent once to a person who opens a conversation (never to auto-replies or bounces,
    # at most one an hour per contact); None: no acknowledgement.
    acknowledgement: str | None = Field(default=None, max_length=10_000)
    # IMAP behaviour. By default the mailbox is left untouched; with `imap_move_to` each
    # message is moved there once it is stored.
    imap_move_to: str | None = Field(default=None, min_length=1, max_length=255)
    # A larger message is recorded from its header alone, so it never blocks the mailbox.
    imap_max_message_bytes: int = Field(default=25 * MIB, ge=64 * 1024, le=1024 * MIB)
    # Messages fetched and stored per round trip (a batch is also capped at 20 MB).
    imap_batch_size: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _default_ports(self) -> EmailConfig:
        if self.imap_port is None:
            self.imap_port = 993 if self.imap_security == "tls" else 143
        if self.smtp_port is None:
            self.smtp_port = {"tls": 465, "starttls": 587, "none": 25}[self.smtp_security]
        if self.imap_move_to is not None and self.imap_move_to in self.imap_folders:
            raise ValueError("imap_move_to must not be one of the imap_folders it imports from")
        return self
