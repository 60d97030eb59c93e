"""Configuration of an email channel (an IMAP/SMTP mailbox)."""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field, model_validator

from connectors.config import ChannelConfig

Security = Literal["tls", "starttls", "none"]


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

    @model_validator(mode="after")
    def _default_ports(self) -> EmailConfig:
        if self.imap_port is None:
            self.imap_port = 993 if self.imap_security == "tls" else 143
        if self.smtp_port is None:
            self.smtp_port = {"tls": 465, "starttls": 587, "none": 25}[self.smtp_security]
        return self
