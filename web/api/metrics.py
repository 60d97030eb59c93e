"""Business hours, SLA policies and response-time metrics (issue 9)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="metrics")
