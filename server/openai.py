"""OpenAI-compatible router, mounted twice: ``/openai/v1`` (KServe's convention) and ``/v1``.

Each route is three steps, as in vLLM: find the model, call the runtime with the validated request,
render the result (JSON, or SSE from an async iterator). Errors of any kind, FastAPI's validation
errors included, come out in OpenAI's shape through ``make_route_class``.

``GET /v1/models`` is shared with KServe. For generative servers the KServe v1 router is not mounted,
so this one body answers both clients: ``{"object": "list", "data": [<OpenAI model objects>],
"models": [<names>]}`` (OpenAI reads ``data``, KServe's v1 list reads ``models``). Likewise
``GET /v1/models/{id}`` is the OpenAI model object plus KServe's ``"name"`` and ``"ready": true``;
when the model is not ready it answers 503 (KServe's readiness convention, which
``kserve.InferenceRESTClient.is_model_ready`` maps to ``False``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import Message

from server.errors import ModelNotFound, ModelNotReady, PayloadTooLarge, UpstreamError
from server.openai_errors import error_body, render
from server.openai_metrics import OpenAIMetrics
from server.openai_types import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from server.routing import make_route_class, require_api_key
from server.model import GenerativeModel
from server.sse import EventStreamResponse, sse_stream

PREFIXES = ("/openai/v1", "/v1")


def render_counted(request: Request, exc: Exception) -> Response:
    request.app.state.openai_metrics.record_error(_model_label(request), exc)
    return render(request, exc)


def _model_label(request: Request) -> str:
    return getattr(request.state, "model_name", "") or ""


class OpenAIRoute(make_route_class(render_counted)):  # type: ignore[misc]
    """Counts every response by route (as declared, e.g. ``/chat/completions``: one series for both
    mounts), model and status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counted(request: Request) -> Response:
            too_large = _limit_body(request, request.app.state.settings.max_body_bytes)
            response = render_counted(request, too_large) if too_large else await handler(request)
            route = str(getattr(request.scope.get("route"), "path_format", "")) or request.url.path
            count_response(request, route, response)
            return response

        return counted


def count_response(request: Request, route: str, response: Response) -> None:
    request.app.state.openai_metrics.requests.labels(
        route, _model_label(request), str(response.status_code)
    ).inc()


def _limit_body(request: Request, limit: int) -> PayloadTooLarge | None:
    """413 before buffering: at once from Content-Length, else while a chunked body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return PayloadTooLarge(f"Request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    receive, seen = request.receive, 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            # FastAPI re-raises HTTPException from body reading (anything else becomes a 400).
            raise HTTPException(413, f"Request body exceeds the limit of {limit} bytes")
        return message

    request._receive = limited
    return None


def include(app: FastAPI) -> None:
    models: list[GenerativeModel] = app.state.registry.of_kind("generative")
    app.state.openai_metrics = OpenAIMetrics(app.state.metrics.registry, models)
    router = build_router(models)
    #: The one chat/completions handler, also called by ``server.openai_fastpath``.
    app.state.openai_generate = router.generate  # type: ignore[attr-defined]
    for prefix in PREFIXES:
        app.include_router(router, prefix=prefix)


def _json(model: BaseModel | dict[str, Any], status: int = 200) -> Response:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def build_router(models: list[GenerativeModel]) -> APIRouter:
    index: dict[str, GenerativeModel] = {}
    for model in models:
        for card in model.served_models():
            index.setdefault(card.id, model)

    def resolve(request: Request, name: str) -> GenerativeModel:
        request.state.model_name = name
        model = index.get(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model

    router = APIRouter(route_class=OpenAIRoute, dependencies=[Depends(require_api_key)], tags=["openai"])

    async def generate(
        request: Request, body: ChatCompletionRequest | CompletionRequest, kind: str
    ) -> Response:
        """Chat and legacy completions: the same JSON-or-SSE path over the model's ``kind`` methods."""
        t0 = time.perf_counter()
        model = resolve(request, body.model)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return await _stream(request, getattr(model, f"{kind}_stream")(body), include_usage, t0)
        result = await getattr(model, kind)(body)
        request.app.state.openai_metrics.record_usage(body.model, result.usage, time.perf_counter() - t0)
        return _json(result)

    @router.post("/chat/completions", summary="Chat completion (JSON or SSE stream)")
    async def chat(body: ChatCompletionRequest, request: Request) -> Response:
        return await generate(request, body, "chat")

    @router.post("/completions", summary="Legacy text completion (JSON or SSE stream)")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await generate(request, body, "completion")

    @router.post("/embeddings", summary="Embeddings (float or base64)")
    async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
        model = resolve(request, body.model)
        result = await model.embed(body)
        request.app.state.openai_metrics.prompt_tokens.labels(body.model).inc(result.usage.prompt_tokens)
        return _json(result)

    @router.get("/models", summary="Models: OpenAI list (`data`) and KServe v1 list (`models`) in one body")
    async def list_models() -> Response:
        cards = [card for model in models for card in model.served_models()]
        data = [card.model_dump(mode="json") for card in cards]
        return _json({"object": "list", "data": data, "models": [card.id for card in cards]})

    @router.get("/models/{model_id:path}", summary="One model; 503 while it is not ready (KServe readiness)")
    async def get_model(model_id: str, request: Request) -> Response:
        model = resolve(request, model_id)
        card = next(c for c in model.served_models() if c.id == model_id)
        return _json({**card.model_dump(mode="json"), "name": model_id, "ready": True})

    router.generate = generate  # type: ignore[attr-defined]
    return router


async def _stream(request: Request, chunks: AsyncIterator[Any], include_usage: bool, t0: float) -> Response:
    """Await the first chunk (so early failures are real status codes), then stream the rest as SSE."""
    metrics = request.app.state.openai_metrics
    name = _model_label(request)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamError("The model produced an empty stream.") from None
    t_first = time.perf_counter()
    metrics.ttft.labels(name).observe(t_first - t0)
    seen: dict[str, Any] = {}

    def keep(chunk: Any) -> bool:
        if not chunk.choices and chunk.usage is not None:
            seen["usage"] = chunk.usage
            return include_usage
        return True

    def on_error(exc: BaseException) -> dict[str, Any]:
        metrics.record_error(name, exc)
        return error_body(exc if isinstance(exc, Exception) else RuntimeError())[1].model_dump(mode="json")

    def on_end() -> None:
        metrics.record_usage(name, seen.get("usage"), time.perf_counter() - t_first)

    return EventStreamResponse(sse_stream(first, chunks, keep=keep, on_error=on_error, on_end=on_end))
