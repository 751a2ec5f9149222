"""Pure-ASGI shortcut for ``POST {/v1,/openai/v1}/{chat/completions,completions}``.

Time to first token is the number a chat user feels. Measured with ``loadtests/bench_facade.py``,
FastAPI's middleware stack, router, dependency solving and body validation put about a millisecond
in front of every upstream call. This layer runs the same handler the FastAPI routes use
(``app.state.openai_generate``: resolve the model, call the runtime, JSON or SSE) with the same
metrics, and skips only FastAPI's own machinery.

Anything unusual is handed to the FastAPI route untouched (the body already read is replayed), so
error rendering stays in one place: a missing or wrong API key, a non-JSON content type, a body
that is not valid JSON or does not validate, an oversized body is answered here the same way the
route would (413 in OpenAI's shape).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.asgi_io import ClientGone, read_body
from server.auth import check_api_key
from server.errors import KcrError, PayloadTooLarge
from server.openai import PREFIXES, count_response, render_counted
from server.openai_types import ChatCompletionRequest, CompletionRequest

logger = logging.getLogger("kcr.server")

_ROUTES: dict[str, tuple[str, str, type[BaseModel]]] = {}
for _prefix in PREFIXES:
    _ROUTES[f"{_prefix}/chat/completions"] = ("/chat/completions", "chat", ChatCompletionRequest)
    _ROUTES[f"{_prefix}/completions"] = ("/completions", "completion", CompletionRequest)


class FastChatPath:
    def __init__(self, app: ASGIApp, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.state = fastapi_app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        await self._serve(scope, receive, send, *route)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, route: str, kind: str, schema: type[BaseModel]
    ) -> None:
        state = self.state
        headers: dict[bytes, bytes] = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"application/json").split(b";", 1)[0].strip()
        auth = headers.get(b"authorization")
        try:
            check_api_key(state.settings.api_keys, auth.decode("latin-1") if auth is not None else None)
        except KcrError:
            await self.app(scope, receive, send)
            return
        if content_type != b"application/json":
            await self.app(scope, receive, send)
            return
        scope["app"] = self.fastapi_app
        request = Request(scope, receive)
        try:
            raw = await read_body(receive, headers.get(b"content-length"), state.settings.max_body_bytes)
        except ClientGone:
            return
        except PayloadTooLarge as exc:
            response = render_counted(request, exc)
            count_response(request, route, response)
            await response(scope, receive, send)
            return
        try:
            body = schema.model_validate(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValidationError):
            await self.app(scope, _replay(raw, receive), send)
            return
        try:
            response = await state.openai_generate(request, body, kind)
        except Exception as exc:
            if not isinstance(exc, KcrError):
                request_id = scope["state"].get("request_id")
                logger.exception("unhandled error on POST %s (request id %s)", scope["path"], request_id)
            response = render_counted(request, exc)
        count_response(request, route, response)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the body already read once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
