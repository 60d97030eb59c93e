"""Search over contacts and messages for the agent app (issue 10)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes("search")
