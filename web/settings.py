"""Settings from the environment (SWITCHBOARD_*), validated once at start."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from web.client_address import IPNetwork, parse_networks

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./switchboard.db"
# Values that show a secret was copied from an example and never changed.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "change_me", "secret", "dev"})


class SettingsError(Exception):
    """The configuration cannot be used; the message says which variable and why."""


class Settings(BaseSettings):
    """Everything configurable about one Switchboard process."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    # Reverse proxies in front of the app (comma-separated addresses or CIDR networks):
    # only from these is X-Forwarded-For believed (web/client_address.py).
    trusted_proxies: str = ""
    data_dir: Path = Path("./switchboard-data")
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    log_level: str = "INFO"
    # A message on a resolved conversation reopens it within this window; later ones start anew.
    reopen_window_hours: float = Field(default=168.0, ge=0)
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # Transient send failures retry with backoff for this long (a channel kind may declare
    # its own period: email keeps trying for 5 days); time parked waiting for a channel to
    # run again or for its credentials to be fixed does not count.
    outbox_retry_hours: float = Field(default=24.0, gt=0)
    outbox_send_timeout_seconds: float = Field(default=60.0, gt=0)
    # A worker's claim on a delivery job; must outlast the send timeout (validated below,
    # so it is declared after it).
    outbox_lease_seconds: float = Field(default=120.0, gt=0)
    # Sends in flight at once per worker process (one per channel at a time).
    outbox_concurrency: int = Field(default=16, ge=1)
    # How often an idle worker looks for due delivery jobs. A new reply wakes it at once
    # through the bus; this poll only catches retries falling due and lost bus messages.
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    # A worker's lease on a channel's receiving side (IMAP, long polling), renewed at a
    # third of this while it runs: how long a dead worker's channels wait to be taken over.
    connector_lease_seconds: float = Field(default=30.0, ge=1)
    # Channels are re-read on every channel event and at least this often (the safety net
    # for a missed event).
    channel_reload_seconds: float = Field(default=30.0, gt=0)
    # A crashed connector is restarted after 1 s, doubling up to this.
    connector_backoff_cap_seconds: float = Field(default=300.0, ge=1)
    # Inbound files whose download failed for a reason that may pass (a timeout, a 5xx)
    # are fetched again by the worker: looked for this often, first after a minute, then
    # with doubling delays up to an hour, at most this many times.
    attachment_fetch_interval_seconds: float = Field(default=30.0, gt=0)
    attachment_fetch_attempts: int = Field(default=12, ge=1)
    # How often a worker looks for follow-up tasks that have become due.
    task_due_interval_seconds: float = Field(default=15.0, gt=0)
    # How often a worker wakes snoozed conversations whose time has come (a snooze ends at
    # most this late).
    snooze_interval_seconds: float = Field(default=10.0, gt=0)
    # How often a worker records response times and looks for SLA breaches.
    sla_watch_interval_seconds: float = Field(default=30.0, gt=0)
    # Outgoing webhooks: new events are looked for this often (and at once on a bus
    # event); a receiver gets this long to answer; this many posts run at once per worker;
    # failures are retried with backoff for this long, at most this many times.
    webhook_poll_seconds: float = Field(default=2.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_concurrency: int = Field(default=8, ge=1, le=256)
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    webhook_max_attempts: int = Field(default=30, ge=1)
    # Cookie sessions of the agent app end after this long without a request, and in any
    # case this long after login.
    session_idle_minutes: float = Field(default=720.0, gt=0)
    session_max_hours: float = Field(default=168.0, gt=0)
    # The session cookie's Secure flag; unset: on in production or when PUBLIC_URL is https.
    session_cookie_secure: bool | None = None
    # Login rate limits: failures counted over this window, at most this many per client
    # address; an account is locked after this many, for a minute, doubling with each
    # further failure up to the maximum (a lock always expires).
    login_window_minutes: float = Field(default=15.0, gt=0)
    login_address_failures: int = Field(default=10, ge=1)
    login_account_failures: int = Field(default=5, ge=1)
    login_lockout_max_minutes: float = Field(default=15.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASS@HOST/DB"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def proxy_networks(self) -> tuple[IPNetwork, ...]:
        """The trusted proxies, parsed."""
        return parse_networks(self.trusted_proxies)

    @field_validator("redis_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("outbox_lease_seconds")
    @classmethod
    def _lease_outlasts_send(cls, value: float, info: ValidationInfo) -> float:
        # An expired lease means "the worker died mid-send": a send still running when its
        # lease expires would be settled as an unknown outcome although it may yet succeed.
        timeout = info.data.get("outbox_send_timeout_seconds")
        if timeout is not None and value <= timeout:
            raise ValueError(
                f"must be longer than SWITCHBOARD_OUTBOX_SEND_TIMEOUT_SECONDS ({timeout:g})"
            )
        return value

    @property
    def base_url(self) -> str:
        """Where the app is reached: SWITCHBOARD_PUBLIC_URL, else the listening address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def cookie_secure(self) -> bool:
        """Whether the session cookie is sent over HTTPS only."""
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.env == "production" or self.base_url.startswith("https://")

    def resolved_secret_key(self) -> str:
        """The secret key; in development one is generated once and kept in the data directory."""
        value = self.secret_key.get_secret_value() if self.secret_key else ""
        if value.strip().lower() not in PLACEHOLDER_SECRETS:
            if self.env == "production" and len(value) < 32:
                raise SettingsError("SWITCHBOARD_SECRET_KEY must be at least 32 characters")
            return value
        if self.env == "production":
            raise SettingsError(
                "SWITCHBOARD_SECRET_KEY is unset or a placeholder; production refuses to start. "
                'Generate one: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Written whole to a private temp file, then linked into place: the web and worker
        # processes may start together, and a reader must never see a half-written key.
        fd, temp = tempfile.mkstemp(dir=self.data_dir, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(key + "\n")
            os.link(temp, path)
        except FileExistsError:
            return path.read_text().strip()
        finally:
            os.unlink(temp)
        return key
