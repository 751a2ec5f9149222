"""Pure-ASGI shortcut for the two hot routes, ``POST /v1/models/{name}:predict`` and
``POST /v2/models/{name}/infer``.

Profiling showed FastAPI's middleware stack, router and dependency solving costing about 70% of a
small predict request; this layer answers those two routes directly with the same handlers the
FastAPI routes use (``v1.predict_v1``, ``v2.infer_v2``), and passes every other request on. The
FastAPI routes stay registered, so the OpenAPI document still describes them.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from server import v1_handlers, v2_handlers
from server.asgi_io import ClientGone, read_body, respond
from server.auth import check_api_key
from server.errors import KcrError
from server.kserve_errors import error_parts

logger = logging.getLogger("kcr.server")

_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastPredictPath:
    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/v1/models/") and path.endswith(":predict"):
                name = path[11:-8]
                if name and "/" not in name:
                    await self._serve(scope, receive, send, name, v2=False)
                    return
            elif path.startswith("/v2/models/") and path.endswith("/infer"):
                name = path[11:-6]
                if name and "/" not in name:
                    await self._serve(scope, receive, send, name, v2=True)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, name: str, v2: bool) -> None:
        state = self.state
        headers: dict[bytes, bytes] = dict(scope["headers"])
        try:
            auth = headers.get(b"authorization")
            check_api_key(state.settings.api_keys, auth.decode("latin-1") if auth is not None else None)
            model = state.dataplane.model(name)
            scope["state"]["model_name"] = name
            body = await read_body(receive, headers.get(b"content-length"), state.settings.max_body_bytes)
            if v2:
                header_len = headers.get(b"inference-header-content-length")
                payload, json_len = await v2_handlers.infer_v2(
                    state.dataplane,
                    model,
                    body,
                    header_len.decode("latin-1") if header_len is not None else None,
                    headers.get(b"content-type", b"").decode("latin-1"),
                )
                if json_len is not None:
                    await respond(
                        send,
                        200,
                        payload,
                        [
                            (b"content-type", b"application/octet-stream"),
                            (b"inference-header-content-length", str(json_len).encode()),
                        ],
                    )
                    return
            else:
                payload = await v1_handlers.predict_v1(state.dataplane, model, body)
            await respond(send, 200, payload, _JSON_HEADERS)
        except ClientGone:
            return
        except Exception as exc:
            if not isinstance(exc, KcrError):
                logger.exception(
                    "unhandled error on POST %s (request id %s)",
                    scope["path"],
                    scope["state"].get("request_id"),
                )
            status, message, extra = error_parts(exc)
            response_headers = list(_JSON_HEADERS)
            for key, value in (extra or {}).items():
                response_headers.append((key.encode(), value.encode()))
            await respond(send, status, orjson.dumps({"error": message}), response_headers)
