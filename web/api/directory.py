"""Who works where, for assigning and mentioning (issue 10)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes("directory")
