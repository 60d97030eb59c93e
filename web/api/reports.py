"""Reports: volumes, response times and SLA attainment over a date range (issue 9)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="reports")
