"""KServe's error rendering: ``{"error": "<message>"}`` with KServe's status codes.

The one status table and renderer of the KServe wing (probes, v1, v2). Where KServe answers 500 or
422 for input the client got wrong, we answer 400 (see docs/protocols.md); messages keep KServe's
templates.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from server import errors
from server.web.http import Request, Response, encode_headers

_STATUS: dict[type[errors.KcrError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.ModelNotFound: 404,
    errors.RouteNotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedEncoding: 415,
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


def error_parts(exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    """(status, message, extra headers) for any exception, in KServe's terms."""
    if isinstance(exc, errors.KcrError):
        retry_after = getattr(exc, "retry_after", None)
        headers = {"retry-after": str(retry_after)} if retry_after is not None else None
        return status_of(exc), errors.bounded(exc.message), headers
    # KServe's generic template, but without closing the connection.
    return 500, errors.bounded(f"{type(exc).__name__} : {exc}"), None


def render(request: Request | None, exc: Exception) -> Response:
    status, message, headers = error_parts(exc)
    return Response(orjson.dumps({"error": message}), status, headers=encode_headers(headers))


class KServeError(BaseModel):
    """``{"error": "<message>"}``: the body of every KServe-protocol error."""

    error: str


_DESCRIPTIONS = {
    400: "Input the model cannot use",
    401: "Missing or wrong API key",
    404: "Unknown model",
    413: "Request too large",
    501: "Not supported (versions, explainers)",
    503: "Model not ready",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the docs app."""
    return {c: {"model": KServeError, "description": _DESCRIPTIONS[c]} for c in codes}
