"""The lead pipeline: contacts by lifecycle stage with counts and lifetime value per
stage (issue 11, the pipeline board)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="contacts")
