"""Encryption of channel credentials at rest, keyed by SWITCHBOARD_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(Exception):
    """Stored credentials cannot be decrypted (the secret key changed?)."""


class SecretBox:
    """Authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) of JSON values."""

    def __init__(self, secret_key: str) -> None:
        # Fernet wants 32 url-safe base64 bytes; derive them so any passphrase works.
        digest = hashlib.sha256(b"switchboard-config-v1\x00" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, value: dict[str, Any]) -> str:
        """Encrypt a JSON-serializable mapping to an ASCII token."""
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """Decrypt a token made by `encrypt`."""
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as err:
            raise SecretBoxError(
                "cannot decrypt channel configuration: was SWITCHBOARD_SECRET_KEY changed?"
            ) from err
        if not isinstance(data, dict):
            raise SecretBoxError("channel configuration is not a JSON object")
        return data
