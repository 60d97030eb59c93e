"""Reports over time and by hour of week, and the live overview (issue 11, the report
screen)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="reports")
