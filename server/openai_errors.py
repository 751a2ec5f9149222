"""Every failure as OpenAI's ``{"error": {message, type, param, code}}`` with a meaningful status.

One table from ``server.errors`` types to (status, type, code); FastAPI validation errors become 400
``invalid_request_error`` (never 422), and overload/unavailability carries ``Retry-After`` so the
``openai`` SDK's built-in retry waits the right amount.
"""

from __future__ import annotations

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from server import errors
from server.openai_types import ErrorBody, ErrorResponse

# type → (status, OpenAI error type, default code)
_TABLE: list[tuple[type[errors.KcrError], int, str, str | None]] = [
    (errors.Unauthorized, 401, "invalid_request_error", "invalid_api_key"),
    (errors.PayloadTooLarge, 413, "invalid_request_error", "payload_too_large"),
    (errors.InvalidInput, 400, "invalid_request_error", None),
    (errors.ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (errors.ModelNotReady, 503, "service_unavailable_error", "model_not_ready"),
    (errors.ServerNotReady, 503, "service_unavailable_error", "server_not_ready"),
    (errors.Overloaded, 503, "service_unavailable_error", "server_is_overloaded"),
    (errors.UpstreamUnavailable, 503, "service_unavailable_error", "upstream_unavailable"),
    (errors.UpstreamTimeout, 504, "timeout_error", "upstream_timeout"),
    (errors.UpstreamError, 502, "api_error", "upstream_error"),
    (errors.NotSupported, 501, "invalid_request_error", "not_supported"),
]


def error_body(exc: Exception) -> tuple[int, ErrorBody, dict[str, str]]:
    """(status, error object, extra headers) for any exception; also used for SSE error events."""
    headers: dict[str, str] = {}
    if isinstance(exc, errors.KcrError):
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
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        elif isinstance(exc, errors.ModelNotReady):
            headers["retry-after"] = "5"
        body = ErrorBody(
            message=message, type=etype, param=getattr(exc, "param", None), code=getattr(exc, "code", code)
        )
        return status, body, headers
    if isinstance(exc, RequestValidationError):
        return 400, _validation_body(exc), headers
    if isinstance(exc, HTTPException):
        etype = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return exc.status_code, ErrorBody(message=str(exc.detail), type=etype), dict(exc.headers or {})
    return (
        500,
        ErrorBody(message="The server had an error while processing your request.", type="server_error"),
        {},
    )


def _validation_body(exc: RequestValidationError) -> ErrorBody:
    problems = exc.errors()
    first = problems[0] if problems else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    parts = []
    for err in problems[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    message = "Invalid request: " + "; ".join(parts)
    if first.get("type") == "json_invalid":
        message, param = "We could not parse the JSON body of your request.", None
    return ErrorBody(message=message, type="invalid_request_error", param=param, code=None)


def render(request: Request, exc: Exception) -> Response:
    """The ``make_route_class`` renderer (unknown exceptions are already logged there)."""
    status, body, headers = error_body(exc)
    return Response(
        orjson.dumps(ErrorResponse(error=body).model_dump(mode="json")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
