"""Static files of the web app, served at /static/<version>/<path>.

The version is a hash of every file under static/, computed at start-up: a deploy that
changes any file changes every URL, so browsers may keep what they fetched for a year
(`immutable`). Because the version is a path segment, ES modules import each other with
relative paths (`import { t } from "./i18n.js"`) and stay on the same version, and CSS
`url()`s work the same way. A request for another version (a page rendered before a
deploy) is still answered, with the current file, but not cached.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/static"
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_CACHED = "no-cache"
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Assets:
    """The static files and their version."""

    root: Path
    version: str

    def url(self, path: str) -> str:
        """The versioned URL of a file under static/ (e.g. "css/app.css")."""
        if not (self.root / path).is_file():
            raise FileNotFoundError(f"no static file {path!r}")
        return f"{PREFIX}/{self.version}/{path}"

    @property
    def base(self) -> str:
        """The versioned folder URL, with a trailing slash."""
        return f"{PREFIX}/{self.version}/"


def scan(root: Path = STATIC_DIR) -> Assets:
    """Hash every file (names and contents) into the version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return Assets(root, digest.hexdigest()[:12])


def static_handler(assets: Assets) -> Handler:
    """GET /static/{version}/{path}: the file, cached for good when the version is current."""
    root = assets.root.resolve()

    async def serve(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        path = (root / relative).resolve()
        # No way out of static/ (.., symlinks), and no directories.
        if not path.is_relative_to(root) or not path.is_file():
            raise web.HTTPNotFound()
        current = request.match_info["version"] == assets.version
        content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        response = web.FileResponse(
            path,
            headers={
                "Cache-Control": IMMUTABLE if current else NOT_CACHED,
                "X-Content-Type-Options": "nosniff",
                "Content-Type": content_type or "application/octet-stream",
            },
        )
        return response

    return serve
