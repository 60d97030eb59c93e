"""The three connector errors. Library errors are translated into these once, at the boundary."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of the errors a connector raises."""


class AuthError(ConnectorError):
    """The provider refused our credentials: a person must fix the channel."""


class TransientError(ConnectorError):
    """Network trouble, rate limits, provider 5xx: try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """The provider will never accept this (bad recipient, blocked, too large): do not retry."""
