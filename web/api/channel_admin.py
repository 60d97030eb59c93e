"""Channel administration beyond CRUD: pause and resume, the webhook URLs to paste into a
provider, the identity a token belongs to (issue 11, the channels screen)."""

from __future__ import annotations

from web.openapi import ApiRoutes

routes = ApiRoutes(tag="channels")
