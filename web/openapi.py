"""API routes declared once with their pydantic models, and the OpenAPI 3.1 document from them.

A handler is registered with `@routes.route(method, path, body=..., query=..., response=...)`.
The same declaration validates requests (`parse_body`, `parse_query`), shapes answers
(`respond`) and generates the document: there is no hand-written schema to drift. The
helpers refuse, loudly, a model other than the declared one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from web.errors import ErrorResponse, bad_request, field_errors, validation_failed
from web.keys import OPENAPI_KEY

API_PREFIX = "/api/v1"
REF_TEMPLATE = "#/components/schemas/{model}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
M = TypeVar("M", bound=BaseModel)

_OPERATION_ATTR = "__api_operation__"
_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class Header:
    """A request header a route reads (documented as an OpenAPI header parameter)."""

    name: str
    description: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented route: what it takes and what it answers."""

    method: str
    path: str  # full path, e.g. /api/v1/channels/{id}
    handler: Handler
    summary: str
    tag: str
    status: int  # the success status
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None  # None: no content (or, for public routes, any JSON)
    errors: tuple[int, ...]  # error statuses beyond the ones implied by auth, body and query
    public: bool  # no bearer token needed
    headers: tuple[Header, ...] = ()
    # The media type of a success answer that is not JSON (a CSV or zip download); the
    # handler streams it itself.
    produces: str | None = None


class ApiRoutes:
    """The routes of one API module, under API_PREFIX."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        status: int = 200,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        errors: Sequence[int] = (),
        public: bool = False,
        headers: Sequence[Header] = (),
        produces: str | None = None,
    ) -> Callable[[H], H]:
        """Declare a handler's route. Path parameters named `id` or `*_id` are UUIDs."""

        def register(handler: H) -> H:
            operation = Operation(
                method=method.upper(),
                path=API_PREFIX + path,
                handler=handler,
                summary=summary,
                tag=self.tag,
                status=status,
                body=body,
                query=query,
                response=response,
                errors=tuple(errors),
                public=public,
                headers=tuple(headers),
                produces=produces,
            )
            setattr(handler, _OPERATION_ATTR, operation)
            self._operations.append(operation)
            return handler

        return register

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations)


def operation_for(handler: object) -> Operation | None:
    """The declaration of a handler, or None for a route not declared here."""
    operation = getattr(handler, _OPERATION_ATTR, None)
    return operation if isinstance(operation, Operation) else None


def add_routes(app: web.Application, route_sets: Iterable[ApiRoutes]) -> list[Operation]:
    """Register every declared route on the app; returns the operations for the document."""
    operations = [operation for routes in route_sets for operation in routes]
    for operation in operations:
        app.router.add_route(operation.method, operation.path, operation.handler)
    return operations


def _declared(request: web.Request) -> Operation:
    operation = operation_for(request.match_info.handler)
    if operation is None:
        raise RuntimeError(f"{request.path} is not a declared API route")
    return operation


def _check(declared: type[BaseModel] | None, used: type[BaseModel], what: str) -> None:
    # The document is built from the declaration: using another model would make it lie.
    if declared is not used:
        raise RuntimeError(f"handler uses {used.__name__} as {what} but declares {declared}")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated by `model`: 400 for unreadable JSON, 422 for invalid values."""
    _check(_declared(request).body, model, "body")
    raw = await request.read()  # over client_max_size: aiohttp raises 413
    try:
        data = json.loads(raw)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError alike
        raise bad_request("request body is not valid JSON") from err
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise validation_failed(field_errors(err, whole="body")) from err


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string validated by `model` (422 with the parameter names on failure)."""
    _check(_declared(request).query, model, "query")
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as err:
        raise validation_failed(field_errors(err, whole="query")) from err


def respond(request: web.Request, payload: BaseModel | None = None) -> web.Response:
    """The answer of a declared route: its success status, its response model as JSON."""
    operation = _declared(request)
    if payload is None:
        if operation.response is not None:
            raise RuntimeError(f"{operation.path} declares {operation.response.__name__}")
        return web.Response(status=operation.status)
    _check(operation.response, type(payload), "response")
    return web.json_response(text=payload.model_dump_json(), status=operation.status)


def build_document(
    operations: Sequence[Operation],
    *,
    title: str,
    version: str,
    extra_models: Sequence[type[BaseModel]] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`; `extra_models` join the components."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for operation in operations:
        wanted += [(m, "validation") for m in (operation.body, operation.query) if m]
        if operation.response is not None:
            wanted.append((operation.response, "serialization"))
    wanted += [(model, "validation") for model in extra_models]
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = defs.get("$defs", {})
    error_ref = refs[(ErrorResponse, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        item: dict[str, Any] = {
            "operationId": operation.handler.__name__,
            "summary": operation.summary,
            "tags": [operation.tag],
            "responses": {str(operation.status): _success(operation, refs)},
        }
        parameters = _path_parameters(operation.path) + _header_parameters(operation.headers)
        if operation.query is not None:
            query_ref = refs[(operation.query, "validation")]
            parameters += _query_parameters(schemas[_ref_name(query_ref)])
        if parameters:
            item["parameters"] = parameters
        if operation.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
            }
        if operation.public:
            item["security"] = []
        for status in _error_statuses(operation):
            item["responses"][str(status)] = {
                "description": HTTPStatus(status).phrase,
                "content": {"application/json": {"schema": error_ref}},
            }
        paths.setdefault(operation.path, {})[operation.method.lower()] = item

    # Query models only describe parameters; they are not schemas of anything sent.
    for operation in operations:
        if operation.query is not None:
            schemas.pop(_ref_name(refs[(operation.query, "validation")]), None)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _ref_name(ref: dict[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """Ids (`{id}`, `{user_id}`) are UUIDs; other names (`{key}`) plain strings."""
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"}
            if name == "id" or name.endswith("_id")
            else {"type": "string"},
        }
        for name in _PATH_PARAM.findall(path)
    ]


def _header_parameters(headers: Sequence[Header]) -> list[dict[str, Any]]:
    return [
        {
            "name": header.name,
            "in": "header",
            "required": header.required,
            "description": header.description,
            "schema": header.schema,
        }
        for header in headers
    ]


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _success(operation: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    description = HTTPStatus(operation.status).phrase
    if operation.produces is not None:
        binary = {"type": "string", "format": "binary"}
        return {"description": description, "content": {operation.produces: {"schema": binary}}}
    if operation.response is not None:
        schema: dict[str, Any] = refs[(operation.response, "serialization")]
    elif operation.public:
        schema = {"type": "object"}
    else:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error_statuses(operation: Operation) -> list[int]:
    statuses = set(operation.errors)
    if not operation.public:
        statuses.add(401)
    if operation.body is not None:
        statuses.update((400, 413, 422))
    if operation.query is not None:
        statuses.add(422)
    return sorted(statuses)


routes = ApiRoutes(tag="meta")


@routes.route("GET", "/openapi.json", summary="This OpenAPI document", public=True)
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the API (no token needed)."""
    return web.json_response(request.app[OPENAPI_KEY])
