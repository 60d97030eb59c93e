"""The OpenAPI document is generated from the routes' own models and covers every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from tests.web.conftest import Client
from web.errors import error_middleware
from web.openapi import ApiRoutes, add_routes, parse_body

METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


async def document(client: Client) -> Any:
    response = await client.get("/api/v1/openapi.json")  # no token needed
    assert response.status == 200
    return await response.json()


def refs(value: Any) -> list[str]:
    """Every $ref in a JSON value."""
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs(item)]
    return []


async def test_every_api_route_is_documented(client: Client) -> None:
    spec = await document(client)
    assert spec["openapi"] == "3.1.0"
    registered = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method in METHODS
    }
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert len(registered) >= 11
    assert registered == documented


async def test_every_reference_resolves(client: Client) -> None:
    spec = await document(client)
    schemas = spec["components"]["schemas"]
    found = refs(spec)
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref


async def test_channel_create_lists_the_four_kinds(client: Client) -> None:
    spec = await document(client)
    schemas = spec["components"]["schemas"]
    operation = spec["paths"]["/api/v1/channels"]["post"]
    request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    create = schemas[request_ref.rsplit("/", 1)[1]]
    kind = create["properties"]["kind"]
    kind = schemas[kind["$ref"].rsplit("/", 1)[1]] if "$ref" in kind else kind
    assert sorted(kind["enum"]) == ["email", "sms", "telegram", "webform"]
    assert {"kind", "name"} <= set(create["required"])
    # Each kind's configuration model is documented from the connector registry.
    config_refs = {ref.rsplit("/", 1)[1] for ref in refs(create["properties"]["config"])}
    assert config_refs == {"EmailConfig", "SmsConfig", "TelegramConfig", "WebformConfig"}
    assert "imap_password" in schemas["EmailConfig"]["properties"]
    assert set(operation["responses"]) >= {"201", "401", "403", "422"}


async def test_security_and_parameters(client: Client) -> None:
    spec = await document(client)
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    listing = spec["paths"]["/api/v1/conversations"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {
        "cursor",
        "limit",
        "status",
        "assignee",
        "team_id",
        "channel_id",
        "contact_id",
        "label",
        "priority",
        "unread",
        "participant",
        "sort",
    }
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 200 and limit["schema"]["default"] == 50
    timeline = spec["paths"]["/api/v1/contacts/{id}/timeline"]["get"]
    assert {"name": "id", "in": "path", "required": True}.items() <= timeline["parameters"][
        0
    ].items()


class Declared(BaseModel):
    name: str


class Other(BaseModel):
    name: str


async def test_a_handler_cannot_drift_from_its_declaration(aiohttp_client: Any) -> None:
    routes = ApiRoutes(tag="test")

    @routes.route("POST", "/drift", summary="parses another model than it declares", body=Declared)
    async def drift(request: web.Request) -> web.Response:
        await parse_body(request, Other)
        return web.Response()

    app = web.Application(middlewares=[error_middleware])
    add_routes(app, [routes])
    client: Client = await aiohttp_client(app)
    response = await client.post("/api/v1/drift", json={"name": "x"})
    assert response.status == 500
    assert (await response.json())["error"]["code"] == "internal_error"


async def test_reply_documents_idempotency_key_and_refusals(client: Client) -> None:
    spec = await document(client)
    operation = spec["paths"]["/api/v1/conversations/{id}/messages"]["post"]
    [header] = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert header["required"] is False
    assert header["schema"]["maxLength"] == 255
    assert "409" in header["description"]
    assert set(operation["responses"]) >= {"201", "404", "409", "422"}
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"text", "private", "channel_id", "attachments"} <= set(body["properties"])


async def test_downloads_declare_their_media_type(client: Client, admin: Any) -> None:
    spec = await document(client)
    downloads = {
        path: operation["responses"]["200"]["content"]
        for path, item in spec["paths"].items()
        for operation in item.values()
        if path.endswith(".csv") or path.endswith("/export")
    }
    assert set(downloads) == {
        "/api/v1/contacts/export.csv",
        "/api/v1/contacts/{id}/export",
        "/api/v1/segments/{id}/export.csv",
        "/api/v1/reports/summary/export.csv",
        "/api/v1/reports/volume/export.csv",
        "/api/v1/reports/series/export.csv",
    }
    for path, content in downloads.items():
        expected = "application/zip" if path.endswith("/export") else "text/csv"
        assert list(content) == [expected], path
    # What the document says is what the route answers.
    answer = await client.get(
        "/api/v1/reports/volume/export.csv?from=2026-11-01&to=2026-11-30&timezone=UTC",
        headers=admin.headers,
    )
    assert answer.status == 200, await answer.text()
    assert answer.content_type == "text/csv"


async def test_path_parameters_are_uuids_only_when_they_are_ids(client: Client) -> None:
    spec = await document(client)
    types = {
        (path, parameter["name"]): parameter["schema"]
        for path, item in spec["paths"].items()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }
    assert types[("/api/v1/attributes/{key}", "key")] == {"type": "string"}
    assert types[("/api/v1/conversations/{id}/participants/{user_id}", "user_id")] == {
        "type": "string",
        "format": "uuid",
    }


async def test_no_two_models_share_a_schema_name(client: Client) -> None:
    # Two models of one name get module-qualified names ("inbox__x__Name"): a client
    # generator would then see unstable, internal names.
    names = list((await document(client))["components"]["schemas"])
    assert len(names) > 100
    assert [name for name in names if "__" in name] == []
