"""Placeholder: the forms API is added here (issue 8)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="forms")
