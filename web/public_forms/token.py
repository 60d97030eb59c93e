"""The key render tokens are signed with: derived from the installation's secret, so the
secret's other uses (encrypting channel credentials) never share a key with this one."""

from __future__ import annotations

import hashlib
import hmac

_LABEL = b"switchboard webform token"


def token_secret(secret_key: str) -> bytes:
    """The render-token key for an installation secret."""
    return hmac.new(secret_key.encode("utf-8"), _LABEL, hashlib.sha256).digest()
