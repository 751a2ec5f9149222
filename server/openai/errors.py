"""Every failure as OpenAI's ``{"error": {message, type, param, code}}`` with a meaningful status.

The one status table and renderer of the OpenAI wing: from ``server.errors`` types to (status, type,
code); request validation errors are 400 ``invalid_request_error`` (never 422), and overload or
unavailability carries ``Retry-After`` so the ``openai`` SDK's built-in retry waits the right amount.
The same error object is the last event of a stream that fails after its 200 (``server.openai.sse``).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from server import errors
from server.openai.types import ErrorResponse
from server.web.http import Headers, Request, Response

# type → (status, OpenAI error type, default code); the first match wins.
_TABLE: list[tuple[type[errors.KcrError], int, str, str | None]] = [
    (errors.Unauthorized, 401, "invalid_request_error", "invalid_api_key"),
    (errors.PayloadTooLarge, 413, "invalid_request_error", "payload_too_large"),
    (errors.UnsupportedEncoding, 415, "invalid_request_error", "unsupported_encoding"),
    (errors.InvalidInput, 400, "invalid_request_error", None),
    (errors.ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (errors.RouteNotFound, 404, "invalid_request_error", None),
    (errors.MethodNotAllowed, 405, "invalid_request_error", None),
    (errors.ModelNotReady, 503, "service_unavailable_error", "model_not_ready"),
    (errors.ServerNotReady, 503, "service_unavailable_error", "server_not_ready"),
    (errors.Overloaded, 503, "service_unavailable_error", "server_is_overloaded"),
    (errors.UpstreamUnavailable, 503, "service_unavailable_error", "upstream_unavailable"),
    (errors.UpstreamTimeout, 504, "timeout_error", "upstream_timeout"),
    (errors.UpstreamError, 502, "api_error", "upstream_error"),
    (errors.NotSupported, 501, "invalid_request_error", "not_supported"),
]

INTERNAL = "The server had an error while processing your request."


class UnsupportedParameter(errors.InvalidInput):
    """A parameter refused rather than silently ignored; rendered with ``code: unsupported_parameter``."""

    code = "unsupported_parameter"

    def __init__(self, param: str, why: str = "is not supported by this server") -> None:
        super().__init__(f"'{param}' {why}.", param=param)


class InvalidRequest(errors.InvalidInput):
    """A body that does not validate against the request model: the first problem names ``param``."""

    def __init__(self, exc: ValidationError) -> None:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        parts = []
        for err in problems[:5]:
            where = ".".join(str(p) for p in err["loc"])
            parts.append(f"{where}: {err['msg']}" if where else err["msg"])
        param = ".".join(str(p) for p in problems[0]["loc"]) if problems else None
        super().__init__("Invalid request: " + "; ".join(parts), param=param or None)


def error_object(exc: Exception) -> tuple[int, dict[str, Any], Headers]:
    """(status, error object, extra headers) for any exception; also the body of SSE error events."""
    if isinstance(exc, ValidationError):
        exc = InvalidRequest(exc)
    if not isinstance(exc, errors.KcrError):
        return 500, {"message": INTERNAL, "type": "server_error", "param": None, "code": None}, []
    status, etype, code = 500, "server_error", None
    for cls, s, t, c in _TABLE:
        if isinstance(exc, cls):
            status, etype, code = s, t, c
            break
    if isinstance(exc, errors.UpstreamError):
        status = exc.status
    message = exc.message
    if isinstance(exc, errors.ModelNotFound):
        message = f"The model `{exc.name}` does not exist or you do not have access to it."
    message = errors.bounded(message)  # messages may quote the request: a huge value stays out
    headers: Headers = []
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    elif isinstance(exc, errors.ModelNotReady):
        headers.append((b"retry-after", b"5"))
    body = {
        "message": message,
        "type": etype,
        "param": getattr(exc, "param", None),
        "code": getattr(exc, "code", code),
    }
    return status, body, headers


def render(request: Request | None, exc: Exception) -> Response:
    """The wing's renderer (the dispatcher has already logged an exception that is not a ``KcrError``)."""
    status, body, headers = error_object(exc)
    return Response(orjson.dumps({"error": body}), status, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the docs app."""
    return {c: {"model": ErrorResponse, "description": _DESCRIPTIONS[c]} for c in codes}


_DESCRIPTIONS = {
    400: "Invalid request, or a parameter this server refuses",
    401: "Missing or wrong API key",
    404: "Unknown model",
    413: "Request too large",
    502: "The backend failed",
    503: "Model not ready, overloaded (Retry-After), or backend unavailable",
    504: "The backend did not answer in time",
}
