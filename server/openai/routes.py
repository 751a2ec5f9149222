"""The OpenAI route table, every route declared once and served under ``/openai/v1`` (KServe's
convention) and ``/v1``.

Each route is three steps, as in vLLM: decode and validate the body, translate it
(``server.openai.translate``, ``server.openai.responses``) and call the model, answer JSON or an
event stream of the model's events (``server.openai.serving``, ``server.openai.responses_stream``).
The first event is awaited before answering (``server.prefetch``), so a backend's refusal is still a
status code. Errors are raised as ``server.errors`` types and rendered by ``server.openai.errors``,
through the dispatcher.

``GET /v1/models`` is shared with KServe. For generative servers the KServe v1 table is not served,
so this one body answers both clients: ``{"object": "list", "data": [<OpenAI model objects>],
"models": [<names>]}`` (OpenAI reads ``data``, KServe's v1 list reads ``models``). Likewise
``GET /v1/models/{id}`` is the OpenAI model object plus KServe's ``"name"`` and ``"ready": true``;
when the model is not ready it answers 503 (KServe's readiness convention, which
``kserve.InferenceRESTClient.is_model_ready`` maps to ``False``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from server.errors import ModelNotFound, ModelNotReady, ServerNotReady
from server.generation import Event
from server.generation_metrics import GenerationMetrics
from server.model import GenerativeModel
from server.openai import errors, responses, serving, sse, translate
from server.openai import responses_types as rt
from server.openai import types as t
from server.openai.body import read
from server.openai.metrics import OpenAIMetrics
from server.openai.responses_stream import ResponseWriter, response_object
from server.prefetch import first_event, prepend
from server.state import ServerState
from server.web.http import EventStream, Reply, Request, Response
from server.web.routing import Route, Table

PREFIXES = ("/openai/v1", "/v1")
#: Statuses the dispatcher answers before a route runs (a wrong method, oversized headers): the
#: OpenAI request counter counts what the routes answered, as it always has.
_NOT_COUNTED = frozenset({405, 431})


def _body(schema: type) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _docs(request: type | None, response: type | None, *codes: int, stream: bool = False) -> dict[str, Any]:
    """``response`` None: the body is documented by OpenAI's own schema (the Responses API's ``Response``)."""
    ok: dict[str, Any] = {"model": response, "description": "The result"}
    if response is None:
        ok = {"description": "The result: OpenAI's `Response` object",
              "content": {"application/json": {"schema": {"type": "object"}}}}  # fmt: skip
    if stream:
        ok["description"] += "; with `stream: true`, server-sent events"
        ok.setdefault("content", {})["text/event-stream"] = {"schema": {"type": "string"}}
    docs: dict[str, Any] = {"responses": {200: ok, **errors.error_responses(*codes)}}
    if request is not None:
        docs["openapi_extra"] = _body(request)
    return docs


class ResponsesEventStream(EventStream):
    """A Responses stream: when the server cuts it, its last words are numbered like every other
    event (``sequence_number``), so they are written at the moment of the cut, not in advance."""

    __slots__ = ("_writer",)

    def __init__(self, content: AsyncIterator[bytes], writer: ResponseWriter) -> None:
        self._writer = writer
        super().__init__(content)

    @property
    def on_cut(self) -> bytes:
        return self._writer.fail(ServerNotReady("The server is shutting down; the answer was cut short."))

    @on_cut.setter
    def on_cut(self, value: bytes) -> None:
        """``EventStream.__init__`` sets a fixed one; this stream writes its own."""


#: The parameter that asked for a capability, per endpoint (named in the 400 when the model lacks it).
_CHAT_HINTS = {"thinking": "reasoning_effort", "tools": "tools"}
_RESPONSES_HINTS = {"thinking": "reasoning.effort", "tools": "tools"}


class OpenAIRoutes:
    """The endpoints, over the generative models of one app (built once, at start-up)."""

    def __init__(self, state: ServerState, shared: GenerationMetrics | None = None) -> None:
        self.models = cast(list[GenerativeModel], state.registry.of_kind("generative"))
        shared = shared or GenerationMetrics(state.metrics.registry, self.models)
        self.metrics = OpenAIMetrics(state.metrics.registry, self.models, shared)
        self.index: dict[str, GenerativeModel] = {}
        self.fingerprints: dict[str, str] = {}
        for model in self.models:
            fingerprint = f"fp_kcr_{model.metadata().platform or 'kcr'}"
            for served in model.served_models():
                self.index.setdefault(served.id, model)
                self.fingerprints.setdefault(served.id, fingerprint)

    def resolve(self, request: Request, name: str) -> GenerativeModel:
        """The served model; only then is ``name`` a metrics label (client-sent names never are)."""
        model = self.index.get(name)
        if model is None:
            raise ModelNotFound(name)
        request.name_model(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model

    # --- endpoints ------------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Reply:
        body = await read(t.ChatCompletionRequest, request)
        start = time.perf_counter()
        model = self.resolve(request, body.model)
        generation = translate.chat_request(body)
        shape = serving.Shape(
            logprobs=generation.logprobs is not None,
            one_call=body.parallel_tool_calls is False or body.functions is not None,
            legacy=body.functions is not None,
        )
        first, events = await self._first(
            body.model, model.generate(generation), start, _CHAT_HINTS, body.stream
        )
        fingerprint = self.fingerprints[body.model]
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = serving.ChatChunks(body.model, fingerprint, include_usage, shape)
            return self._stream(request, body.model, first, events, chunks, start)
        result, usage = await serving.chat_response(prepend(first, events), body.model, fingerprint, shape)
        self._finished(body.model, usage, start)
        return Response.json(result)

    async def completions(self, request: Request) -> Reply:
        body = await read(t.CompletionRequest, request)
        start = time.perf_counter()
        model = self.resolve(request, body.model)
        generation = translate.completion_request(body)
        first, events = await self._first(body.model, model.generate(generation), start, {}, body.stream)
        fingerprint = self.fingerprints[body.model]
        echo = generation.prompts if body.echo else ()
        logprobs = generation.logprobs is not None
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = serving.CompletionChunks(
                body.model, fingerprint, include_usage, echo, generation.n, logprobs
            )
            return self._stream(request, body.model, first, events, chunks, start)
        result, usage = await serving.completion_response(
            prepend(first, events), body.model, fingerprint, echo, generation.n, logprobs
        )
        self._finished(body.model, usage, start)
        return Response.json(result)

    async def responses(self, request: Request) -> Reply:
        body = await read(rt.ResponsesRequest, request)
        start = time.perf_counter()
        model = self.resolve(request, body.model)
        plan = responses.plan(body)
        first, events = await self._first(body.model, model.generate(plan.request), start, _RESPONSES_HINTS,
                                          bool(body.stream))  # fmt: skip
        if body.stream:
            writer = ResponseWriter(body.model, plan, stream=True)
            frames = self._frames(
                request, body.model, first, events, writer, start, done=b"", fail=writer.fail
            )
            return ResponsesEventStream(frames, writer)
        result, usage = await response_object(prepend(first, events), body.model, plan)
        self._finished(body.model, usage, start)
        return Response.json(result)

    async def embeddings(self, request: Request) -> Reply:
        body = await read(t.EmbeddingRequest, request)
        model = self.resolve(request, body.model)
        result = await model.embed(translate.embedding_request(body))
        self.metrics.prompt_tokens.labels(body.model).inc(result.prompt_tokens)
        return Response.json(serving.embedding_response(result, body.model, body.encoding_format))

    async def list_models(self, request: Request) -> Reply:
        data = [serving.model_object(s) for model in self.models for s in model.served_models()]
        return Response.json({"object": "list", "data": data, "models": [d["id"] for d in data]})

    async def get_model(self, request: Request) -> Reply:
        model_id = request.params["model_id"]
        model = self.resolve(request, model_id)
        served = next(s for s in model.served_models() if s.id == model_id)
        return Response.json({**serving.model_object(served), "name": model_id, "ready": True})

    async def _first(
        self,
        name: str,
        events: AsyncIterator[Event],
        start: float,
        hints: dict[str, str],
        streamed: bool | None,
    ) -> tuple[Event, AsyncIterator[Event]]:
        """The first event (early failures are real status codes), timed as the first token."""
        first = await first_event(events, hints)
        self.metrics.first_token(name, time.perf_counter() - start, bool(streamed))
        return first, events

    def _finished(self, name: str, usage: Any, start: float) -> None:
        seconds = time.perf_counter() - start
        self.metrics.record_usage(name, usage, seconds, seconds)

    def _frames(
        self,
        request: Request,
        name: str,
        first: Event,
        events: AsyncIterator[Event],
        encode: Any,
        start: float,
        **framing: Any,
    ) -> AsyncIterator[bytes]:
        """The SSE bytes of a stream whose first event has arrived; metrics recorded at its end."""
        first_at = time.perf_counter()
        metrics = self.metrics

        def on_error(exc: Exception) -> None:
            metrics.record_error(name, exc)

        def on_end() -> None:
            now = time.perf_counter()
            metrics.record_usage(name, encode.usage, now - first_at, now - start)

        return sse.stream(
            first, events, encode, on_error=on_error, on_end=on_end, request_id=request.request_id, **framing
        )

    def _stream(
        self,
        request: Request,
        name: str,
        first: Event,
        events: AsyncIterator[Event],
        encode: serving.ChatChunks | serving.CompletionChunks,
        start: float,
    ) -> EventStream:
        return EventStream(self._frames(request, name, first, events, encode, start), on_cut=sse.SHUTDOWN)

    # --- the table ------------------------------------------------------------------------------------

    def render(self, request: Request | None, exc: Exception) -> Response:
        """The wing's renderer, counting backend failures and overloads by kind."""
        model = str(request.state.get("model_name", "")) if request is not None else ""
        self.metrics.record_error(model, exc)
        return errors.render(request, exc)

    def table(self) -> Table:
        declared: list[tuple[str, str, Callable[[Request], Any], str, dict[str, Any], tuple[type, ...]]] = [
            ("POST", "/chat/completions", self.chat, "Chat completion (JSON or SSE stream)",
             _docs(t.ChatCompletionRequest, t.ChatCompletionResponse, 400, 401, 404, 413, 502, 503, 504,
                   stream=True), (t.ChatCompletionRequest,)),
            ("POST", "/completions", self.completions, "Legacy text completion (JSON or SSE stream)",
             _docs(t.CompletionRequest, t.CompletionResponse, 400, 401, 404, 413, 502, 503, 504, stream=True),
             (t.CompletionRequest,)),
            ("POST", "/responses", self.responses,
             "Responses API, stateless (JSON, or SSE events from response.created to response.completed)",
             _docs(rt.ResponsesRequest, None, 400, 401, 404, 413, 502, 503, 504, stream=True),
             (rt.ResponsesRequest,)),
            ("POST", "/embeddings", self.embeddings, "Embeddings (float or base64)",
             _docs(t.EmbeddingRequest, t.EmbeddingResponse, 400, 401, 404, 413, 502, 503, 504),
             (t.EmbeddingRequest,)),
            ("GET", "/models", self.list_models,
             "Models: OpenAI list (`data`) and KServe v1 list (`models`) in one body",
             _docs(None, t.ModelList, 401), ()),
            ("GET", "/models/{model_id:path}", self.get_model,
             "One model; 503 while it is not ready (KServe readiness)",
             _docs(None, t.ModelEntry, 401, 404, 503), ()),
        ]  # fmt: skip
        routes: list[Route] = []
        labels: dict[str, str] = {}
        for prefix in PREFIXES:
            for method, path, endpoint, summary, docs, schemas in declared:
                routes.append(Route(method, prefix + path, endpoint, summary, docs=docs, schemas=schemas))
                labels[prefix + path] = path.replace(":path}", "}")  # as FastAPI labelled them
        requests = self.metrics.requests

        def count(route: str | None, model: str, status: int) -> None:
            """One series per route as declared (``/chat/completions``, ``/models/{model_id}``), for
            both prefixes."""
            if route is not None and status not in _NOT_COUNTED:
                requests.labels(labels.get(route, route), model, str(status)).inc()

        # Every path under the prefixes answers OpenAI errors, after the key check.
        owns = tuple(prefix + "/" for prefix in PREFIXES)
        return Table("openai", routes, self.render, tags=("openai",), owns=owns, count=count)


def table(state: ServerState, shared: GenerationMetrics | None = None) -> Table:
    return OpenAIRoutes(state, shared).table()
