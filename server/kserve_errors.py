"""KServe's error rendering: ``{"error": "<message>"}`` with KServe's status codes.

Shared by the v1, v2 and health routers. Where KServe answers 500 or 422 for input the client got
wrong, we answer 400 (see "Differences from KServe" in the README); messages keep KServe's templates.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel

from server import errors

if TYPE_CHECKING:
    from fastapi import Request, Response

_STATUS: dict[type[errors.KcrError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.ModelNotFound: 404,
    errors.PayloadTooLarge: 413,
    errors.InferenceFailed: 500,
    errors.NotSupported: 501,
    errors.ModelNotReady: 503,
    errors.ServerNotReady: 503,
    errors.Overloaded: 503,
    errors.UpstreamUnavailable: 503,
    errors.UpstreamTimeout: 504,
}


def status_of(exc: errors.KcrError) -> int:
    if isinstance(exc, errors.UpstreamError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    from fastapi import Response

    return Response(
        orjson.dumps({"error": message}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _validation_message(exc: Any) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "Invalid request: " + "; ".join(parts)


def error_parts(exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    """(status, message, extra headers) for any exception, in KServe's terms."""
    if isinstance(exc, errors.KcrError):
        retry_after = getattr(exc, "retry_after", None)
        headers = {"retry-after": str(retry_after)} if retry_after is not None else None
        return status_of(exc), exc.message, headers
    # FastAPI's and Starlette's own exceptions, asked only once they are imported: the fast paths
    # call this before FastAPI is (see server.front), and then nothing can raise them.
    fastapi_exceptions = sys.modules.get("fastapi.exceptions")
    if fastapi_exceptions is not None and isinstance(exc, fastapi_exceptions.RequestValidationError):
        return 400, _validation_message(exc), None
    starlette_exceptions = sys.modules.get("starlette.exceptions")
    if starlette_exceptions is not None and isinstance(exc, starlette_exceptions.HTTPException):
        return exc.status_code, str(exc.detail), dict(exc.headers or {})
    # KServe's generic template, but without closing the connection.
    return 500, f"{type(exc).__name__} : {exc}", None


def render(request: Request, exc: Exception) -> Response:
    status, message, headers = error_parts(exc)
    return error_response(status, message, headers)


class KServeError(BaseModel):
    """``{"error": "<message>"}``: the body of every KServe-protocol error."""

    error: str


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    descriptions = {
        400: "Input the model cannot use",
        401: "Missing or wrong API key",
        404: "Unknown model",
        413: "Request too large",
        501: "Not supported (versions, explainers)",
        503: "Model not ready",
    }
    return {c: {"model": KServeError, "description": descriptions[c]} for c in codes}
