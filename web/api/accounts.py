"""Users, teams, channel membership, API tokens, and cookie sessions (issue 9)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="accounts")
