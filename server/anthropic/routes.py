"""The Anthropic wing's route table: ``POST /v1/messages`` (streamed or not, with tools), as Ollama
serves it, so the ``anthropic`` SDK and the tools built on it can use the same InferenceService.

``/v1/`` is the OpenAI table's for unknown paths, but a declared route matches first, and this
table owns ``/v1/messages/`` (its unknown sub-paths answer Anthropic errors). The key is checked here
rather than by the dispatcher: the ``anthropic`` SDK sends ``x-api-key`` (``api_key=``), or
``Authorization: Bearer`` with ``auth_token=``, and the dispatcher's check knows only the latter. It
runs before the body is read, as the dispatcher's does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from pydantic import ValidationError

from server.anthropic import errors, serving, translate
from server.anthropic import types as at
from server.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady, Unauthorized
from server.generation_metrics import GenerationMetrics
from server.model import GenerativeModel
from server.prefetch import first_event, prepend
from server.state import ServerState
from server.web.auth import check_request, key_matches
from server.web.http import EventStream, Reply, Request, Response
from server.web.routing import Route, Table

PATH = "/v1/messages"
_HINTS = {"thinking": "thinking", "tools": "tools"}
_SHUTDOWN = serving.error_frame(ServerNotReady("The server is shutting down; the answer was cut short."))
#: As the OpenAI wing's body limits (``server.openai.body``): bodies past OFFLOAD_BYTES are parsed in
#: a thread, and one holding more than MAX_OBJECTS JSON objects is refused before parsing.
OFFLOAD_BYTES = 64 * 1024
MAX_OBJECTS = 200_000


class AnthropicRoutes:
    def __init__(self, state: ServerState, shared: GenerationMetrics) -> None:
        self.keys = state.settings.api_keys
        self.limit = state.settings.max_body_bytes
        self.models = cast(list[GenerativeModel], state.registry.of_kind("generative"))
        self.metrics = shared
        self.index: dict[str, GenerativeModel] = {}
        for model in self.models:
            for served in model.served_models():
                self.index.setdefault(served.id, model)

    def _check_key(self, request: Request) -> None:
        if not self.keys:
            return
        values = [v for k, v in request.scope["headers"] if k == b"x-api-key"]
        if len(values) > 1:
            raise InvalidInput(f"Send one x-api-key header; this request has {len(values)}.")
        if values:
            if not key_matches(values[0].decode("latin-1"), self.keys):
                raise Unauthorized("Incorrect API key provided.")
            return
        if request.header(b"authorization") is None:
            raise Unauthorized("Missing API key: send it as 'x-api-key: <key>' (or 'Authorization: Bearer').")
        check_request(self.keys, request.scope)

    def resolve(self, request: Request, name: str) -> GenerativeModel:
        model = self.index.get(name)
        if model is None:
            raise ModelNotFound(name)
        request.name_model(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model

    async def messages(self, request: Request) -> Reply:
        self._check_key(request)
        body = await _read(request)
        start = time.perf_counter()
        model = self.resolve(request, body.model)
        plan = translate.plan(body)
        events = model.generate(plan.request)
        first = await first_event(events, _HINTS)
        self.metrics.ttft.labels(body.model).observe(time.perf_counter() - start)
        writer = serving.MessageWriter(body.model, plan.one_call, bool(body.stream))
        if body.stream:
            metrics = self.metrics

            def on_end() -> None:
                metrics.finished(body.model, writer.usage, time.perf_counter() - start)

            frames = serving.stream(first, events, writer, on_end, request.request_id)
            return EventStream(frames, on_cut=_SHUTDOWN)
        result = await serving.message_object(prepend(first, events), writer)
        self.metrics.finished(body.model, writer.usage, time.perf_counter() - start)
        return Response.json(result)

    def table(self) -> Table:
        docs: dict[str, Any] = {
            "responses": {
                200: {"description": "The message; with `stream: true`, server-sent events",
                      "content": {"application/json": {"schema": {"type": "object"}},
                                  "text/event-stream": {"schema": {"type": "string"}}}},
                **errors.error_responses(400, 401, 404, 413, 502, 503, 504),
            },
            "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/MessagesRequest"}}}}},
        }  # fmt: skip
        endpoint: Callable[[Request], Any] = self.messages
        routes = [
            Route("POST", PATH, endpoint, "Anthropic Messages (JSON or SSE stream)", auth=False, docs=docs,
                  schemas=(at.MessagesRequest,)),
        ]  # fmt: skip
        return Table("anthropic", routes, errors.render, tags=("anthropic",), owns=(PATH + "/",))


async def _read(request: Request) -> at.MessagesRequest:
    """The body, validated, off the event loop when it is large."""
    raw = await request.body()
    if len(raw) <= OFFLOAD_BYTES:
        return _decode(raw)
    return await asyncio.to_thread(_decode, raw)


def _decode(raw: bytes) -> at.MessagesRequest:
    if raw.count(b"{") > MAX_OBJECTS:
        raise InvalidInput(f"The body holds more than {MAX_OBJECTS} JSON objects.")
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise InvalidInput("The request body is not valid JSON.") from None
    try:
        return at.MessagesRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(errors.validation_message(exc)) from None


def table(state: ServerState, shared: GenerationMetrics) -> Table:
    return AnthropicRoutes(state, shared).table()
