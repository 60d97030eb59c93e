"""Content-addressed file storage under the data directory (attachments).

Files are named by their SHA-256, never by a name a customer chose, so no upload can
pick a path; the same file stored twice is kept once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def blob_path(data_dir: Path, sha256: str) -> Path:
    """Where the blob with this digest lives: `blobs/ab/cd/abcd…`."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a sha256 hex digest")
    return data_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256


def store_blob(data_dir: Path, data: bytes) -> tuple[str, int]:
    """Store bytes once (atomically: temp file then rename); returns (sha256, size)."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(data_dir, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest, len(data)
