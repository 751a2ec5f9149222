"""Pure-ASGI middleware: request ids, the request counter/in-flight gauge, and the access log.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched and the hot predict
path pays for one small wrapper, not a task per request.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.access_log import AccessLog
from server.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
# Accept client ids that are safe to log and echo; anything else is replaced by a fresh one.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:/+=@-]{1,128}$")
#: httptools (uvicorn's default parser) has no limit of its own on header size; 64 KiB is what
#: Envoy (Knative's queue-proxy path) allows by default.
MAX_HEADER_BYTES = 64 * 1024


def _protocol_of(path: str) -> str:
    if path.startswith("/v2"):
        return "v2"
    if path.startswith(("/openai/", "/v1/chat", "/v1/completions", "/v1/embeddings")):
        return "openai"
    if path.startswith("/v1"):
        return "v1"
    return "other"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        header_bytes, seen_id = 0, False
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == REQUEST_ID_HEADER and not seen_id:
                seen_id = True
                if _SAFE_ID.match(value):
                    request_id = value
        if request_id is None:
            request_id = os.urandom(16).hex().encode()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid = request_id.decode()
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        in_flight = self.metrics.in_flight
        in_flight.inc()
        try:
            if header_bytes > MAX_HEADER_BYTES:
                await _too_large_headers(scope["path"], header_bytes, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            in_flight.dec()
            path = scope["path"]
            model = state.get("model_name", "")
            self.metrics.requests.labels(model, _protocol_of(path), str(status)).inc()
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.record(
                    client[0] if client else "-",
                    scope["method"],
                    path,
                    status,
                    (time.perf_counter() - start) * 1000,
                    rid,
                )


async def _too_large_headers(path: str, size: int, send: Send) -> None:
    """431 in the route family's error shape; the connection stays usable."""
    message = f"Request headers of {size} bytes exceed the limit of {MAX_HEADER_BYTES} bytes"
    if _protocol_of(path) == "openai":
        error: Any = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    else:
        error = message
    body = orjson.dumps({"error": error})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": body})
