"""Every failure as Anthropic's ``{"type": "error", "error": {"type": ..., "message": ...}}``.

The Anthropic wing's one status table and renderer, from ``server.errors`` types, with the error
types of Anthropic's API (and of Ollama's ``anthropic.NewError``): 400 ``invalid_request_error``, 401
``authentication_error``, 404 ``not_found_error``, 413 ``request_too_large``, 503
``overloaded_error`` (with ``Retry-After``, which the SDK's retry honours), 504 ``timeout_error``,
else ``api_error``. After a stream has started the same object is its last event (``event: error``).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from server import errors
from server.web.http import Headers, Request, Response

_TABLE: list[tuple[type[errors.KcrError], int, str]] = [
    (errors.Unauthorized, 401, "authentication_error"),
    (errors.PayloadTooLarge, 413, "request_too_large"),
    (errors.UnsupportedEncoding, 415, "invalid_request_error"),
    (errors.InvalidInput, 400, "invalid_request_error"),
    (errors.ModelNotFound, 404, "not_found_error"),
    (errors.RouteNotFound, 404, "not_found_error"),
    (errors.MethodNotAllowed, 405, "invalid_request_error"),
    (errors.ModelNotReady, 503, "overloaded_error"),
    (errors.ServerNotReady, 503, "overloaded_error"),
    (errors.Overloaded, 503, "overloaded_error"),
    (errors.UpstreamUnavailable, 503, "overloaded_error"),
    (errors.UpstreamTimeout, 504, "timeout_error"),
    (errors.UpstreamError, 502, "api_error"),
    (errors.NotSupported, 501, "api_error"),
]

INTERNAL = "The server had an error while processing your request."


def validation_message(exc: ValidationError) -> str:
    problems = exc.errors(include_url=False, include_context=False, include_input=False)
    parts = []
    for err in problems[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "Invalid request: " + "; ".join(parts)


def error_object(exc: Exception) -> tuple[int, dict[str, Any], Headers]:
    """(status, the whole error body, extra headers) for any exception."""
    status, etype, message = 500, "api_error", INTERNAL
    if isinstance(exc, ValidationError):
        status, etype, message = 400, "invalid_request_error", validation_message(exc)
    elif isinstance(exc, errors.KcrError):
        for cls, s, t in _TABLE:
            if isinstance(exc, cls):
                status, etype = s, t
                break
        if isinstance(exc, errors.UpstreamError):
            status = exc.status
        message = exc.message
        param = getattr(exc, "param", None)
        if param and param not in message:  # Anthropic's error has no ``param``: name it in the text
            message = f"{param}: {message}"
    headers: Headers = []
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    elif isinstance(exc, errors.ModelNotReady):
        headers.append((b"retry-after", b"5"))
    body = {"type": "error", "error": {"type": etype, "message": errors.bounded(message)}}
    return status, body, headers


def render(request: Request | None, exc: Exception) -> Response:
    status, body, headers = error_object(exc)
    return Response(orjson.dumps(body), status, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the docs app."""
    schema = {"type": "object", "properties": {"type": {"const": "error"}, "error": {"type": "object"}}}
    return {
        c: {"description": "Anthropic error", "content": {"application/json": {"schema": schema}}}
        for c in codes
    }
