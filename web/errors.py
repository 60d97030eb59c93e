"""The one JSON error shape, and the one middleware that produces it.

Every error answer looks like
`{"error": {"code": "not_found", "message": "...", "fields": {"config.imap_host": "..."}}}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import ErrorDetails

logger = logging.getLogger(__name__)

# Codes for the HTTP errors aiohttp raises itself (routing, body size).
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine-readable code, a message, and per-field reasons."""

    code: str = Field(examples=["not_found", "validation_error"])
    message: str
    fields: dict[str, str] = Field(
        default_factory=dict, description="dotted field path -> what is wrong with it"
    )


class ErrorResponse(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a field failed validation, as pydantic said it: its error type and context
    (what a translation needs) and the English message."""

    type: str
    ctx: Mapping[str, Any]
    message: str
    text: bool = False  # the value was a string ("too_long" then counts characters)


class FieldErrors(dict[str, str]):
    """field_errors' answer: the messages by field path, and the reasons behind them."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[str, list[Reason]] = {}


class ApiError(Exception):
    """An error meant for the client: it becomes the JSON error shape with its status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.reasons: dict[str, list[Reason]] = dict(getattr(fields, "reasons", None) or {})


# How the web app's own pages read an error of the API they call: the message and the
# fields in the user's language (web/ui sets it). The API's other clients get English.
ErrorWording = Callable[[web.Request, ApiError], tuple[str, dict[str, str]]]
ERROR_WORDING_KEY: web.AppKey[ErrorWording] = web.AppKey("error_wording")


def not_found(message: str = "not found") -> ApiError:
    """404: the resource does not exist (or is not visible to this user)."""
    return ApiError(404, "not_found", message)


def unauthorized(message: str) -> ApiError:
    """401: no usable credentials."""
    return ApiError(401, "unauthorized", message)


def forbidden(message: str) -> ApiError:
    """403: authenticated, but not allowed."""
    return ApiError(403, "forbidden", message)


def bad_request(message: str) -> ApiError:
    """400: the request cannot be read at all (e.g. malformed JSON)."""
    return ApiError(400, "bad_request", message)


def validation_failed(fields: Mapping[str, str], message: str = "invalid input") -> ApiError:
    """422: the request was read but its values are invalid; `fields` says which and why."""
    return ApiError(422, "validation_error", message, fields)


def field_errors(err: ValidationError, prefix: str = "", whole: str = "body") -> FieldErrors:
    """Pydantic errors as dotted field paths mapped to readable messages.

    Paths are put under `prefix` (e.g. "config"); an error about the whole value, with
    no prefix, is reported under `whole` ("body", "query").
    """
    fields = FieldErrors()
    for item in err.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "") or whole
        message = _message(item)
        fields[path] = _join(fields.get(path), message)
        fields.reasons.setdefault(path, []).append(
            Reason(item["type"], item.get("ctx") or {}, message, isinstance(item["input"], str))
        )
    return fields


def _message(item: ErrorDetails) -> str:
    ctx = item.get("ctx") or {}
    if item["type"] == "value_error" and "error" in ctx:
        # A validator's own ValueError reads better without pydantic's "Value error, " prefix.
        return str(ctx["error"])
    if item["type"] == "extra_forbidden":
        return "not a known field"
    return item["msg"]


def _join(previous: str | None, message: str) -> str:
    return message if previous is None else f"{previous}; {message}"


def _answer(
    status: int, code: str, message: str, fields: Mapping[str, str] | None = None
) -> web.Response:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, fields=dict(fields or {})))
    return web.json_response(text=body.model_dump_json(), status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every error into the JSON error shape; unknown exceptions become a logged 500."""
    try:
        return await handler(request)
    except ApiError as err:
        message, fields = err.message, err.fields
        if (wording := request.config_dict.get(ERROR_WORDING_KEY)) is not None:
            try:
                message, fields = wording(request, err)
            except Exception:  # a translation must never cost the answer
                logger.exception("wording the error %s failed", err.code)
        return _answer(err.status, err.code, message, fields)
    except web.HTTPException as err:
        if err.status < 400:
            raise  # redirects and other non-errors pass through untouched
        code = _HTTP_CODES.get(err.status, "internal_error" if err.status >= 500 else "error")
        message = err.reason.lower() if err.status != 413 else "request body is too large"
        response = _answer(err.status, code, message)
        if allow := err.headers.get("Allow"):
            response.headers["Allow"] = allow
        return response
    except Exception:
        # The one catch-all: log the details for us, say nothing of them to the client.
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return _answer(500, "internal_error", "internal server error")
