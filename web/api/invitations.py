"""Invitations: an admin invites an agent by email; the invitee sets a password through
a one-time link (issue 11, the team screen)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="accounts")
