"""Changing conversations: status, snooze, assignment, priority, labels, bulk (issue 9)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="conversations")
