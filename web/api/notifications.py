"""Agent notifications (mentions) over the REST API (issue 9)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes("notifications")
