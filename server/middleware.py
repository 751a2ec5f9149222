"""Pure-ASGI middleware: request ids, the request counter/in-flight gauge, and the access log.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched and the hot predict
path pays for one small wrapper, not a task per request.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics

access_logger = logging.getLogger("kcr.access")

REQUEST_ID_HEADER = b"x-request-id"
# Accept client ids that are safe to log and echo; anything else is replaced by a fresh one.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:/+=@-]{1,128}$")


def _protocol_of(path: str) -> str:
    if path.startswith("/v2"):
        return "v2"
    if path.startswith(("/openai/", "/v1/chat", "/v1/completions", "/v1/embeddings")):
        return "openai"
    if path.startswith("/v1"):
        return "v1"
    return "other"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                if _SAFE_ID.match(value):
                    request_id = value
                break
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
            await self.app(scope, receive, send_with_id)
        finally:
            in_flight.dec()
            path = scope["path"]
            model = state.get("model_name", "")
            self.metrics.requests.labels(model, _protocol_of(path), str(status)).inc()
            if self.access_log:
                access_logger.info(
                    '%s "%s %s" %d %.2fms rid=%s',
                    scope.get("client", ("-",))[0] if scope.get("client") else "-",
                    scope["method"],
                    path,
                    status,
                    (time.perf_counter() - start) * 1000,
                    rid,
                )
