"""``create_app(settings, models)``: the whole app from its arguments, no module-level state.

Routers are chosen from each model's declared ``kind``: v1 + v2 for predictive models, the OpenAI
router (mounted at ``/openai/v1`` and ``/v1``) for generative ones; health and metrics always.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp

from server import health
from server.access_log import AccessLog
from server.deferred_imports import hidden
from server.errors import ModelLoadError
from server.fastpath import FastPredictPath
from server.metrics import Metrics
from server.middleware import RequestContextMiddleware
from server.registry import ModelRegistry
from server.runtime import Model
from server.settings import Settings

logger = logging.getLogger("kcr.server")


async def load_model(model: Model, metrics: Metrics) -> None:
    """Load one model, recording how long it took."""
    start = time.perf_counter()
    await model.load()
    elapsed = time.perf_counter() - start
    metrics.model_load.labels(model.name).set(elapsed)
    logger.info("model %s loaded in %.3fs", model.name, elapsed)


async def _load_or_stop(app: FastAPI, model: Model, metrics: Metrics) -> None:
    """Background load; a model that can never load ends the process rather than leaving a server
    that is live but never ready."""
    try:
        await load_model(model, metrics)
    except ModelLoadError as exc:
        logger.error("%s", exc)
        app.state.fatal = str(exc)
        app.state.request_shutdown()


def create_app(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> FastAPI:
    """``load_times``: seconds each model took when the CLI loaded it before binding."""
    registry = ModelRegistry(models)
    metrics = Metrics()
    for name, seconds in (load_times or {}).items():
        metrics.model_load.labels(name).set(seconds)
    background: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Fast loads normally happen in the CLI before binding; this covers in-process use.
        for model in registry:
            if model.load_before_serving and not model.ready:
                await load_model(model, metrics)
        for model in registry:
            if not model.load_before_serving:
                task = asyncio.create_task(_load_or_stop(app, model, metrics), name=f"load-{model.name}")
                background.add(task)
                task.add_done_callback(background.discard)
        for model in registry:
            metrics.model_ready.labels(model.name).set_function(lambda m=model: float(m.ready))
        # Everything imported and loaded so far lives as long as the process: move it out of the
        # collector's reach, so full collections stay short (they caused the p99 tail under load).
        # No gc.collect() first: over ~1M objects of numpy/scipy/sklearn it costs 60-90 ms of cold
        # start, to free well under 1 MB. The CLI keeps the collector off until here (see cli.main).
        gc.freeze()
        gc.enable()
        try:
            yield
        finally:
            app.state.draining = True
            if app.state.access_log is not None:
                app.state.access_log.flush()
            for task in list(background):
                task.cancel()
            for model in registry:
                try:
                    await model.unload()
                except Exception:
                    logger.exception("unloading model %s failed", model.name)

    app = KcrApp(
        title="kserve-custom-runtime",
        summary="KServe v1/v2 and OpenAI-compatible model server",
        version=_version(),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.draining = False
    app.state.access_log = AccessLog() if settings.access_log and AccessLog.wanted() else None
    app.state.fatal = None
    #: Replaced by the CLI with "tell uvicorn to exit"; in-process users get a no-op.
    app.state.request_shutdown = lambda: None

    # For every route, FastAPI imports pydantic.v1 to ask whether its types are v1 models (~15 ms of
    # cold start, ~1.5 MB that stays). Ours never are; with pydantic.v1 hidden the answer is the same.
    with hidden("pydantic.v1"):
        _include_routers(app, registry, settings, metrics)
        _resolve_included_routes(app.router.routes)
    return app


def _resolve_included_routes(routes: Sequence[Any]) -> None:
    """FastAPI (0.165) resolves an included router's routes when the first request reaches them,
    importing pydantic.v1 then to ask whether their types are v1 models (~15 ms and ~1.5 MB in
    that request; it was the readiness probe, before health, v1 and v2 were adopted instead of
    included). Resolved here, for the routers still included (the OpenAI routes, mounted under
    two prefixes), that happens before serving, with pydantic.v1 hidden. ``effective_candidates``
    is FastAPI's private API: if it goes away, routes resolve lazily as before."""
    for route in routes:
        resolve = getattr(route, "effective_candidates", None)
        if callable(resolve):
            _resolve_included_routes(resolve())
            low_priority = getattr(route, "effective_low_priority_routes", None)
            if callable(low_priority):
                low_priority()


def _adopt_routes(app: FastAPI, router: APIRouter) -> None:
    """What ``app.include_router(router)`` does for a router included without a prefix or other
    options and without event handlers or lifespan, as ours (health, v1, v2): its routes, built
    complete by the router (route class, tags, dependencies), join the app's own, as ``@app.get``
    routes do. FastAPI 0.165 would otherwise build each included route a second time, for the
    include: ~15 ms of cold start for our 16 routes."""
    if (
        router.on_startup
        or router.on_shutdown
        or type(router.lifespan_context).__name__ != "_DefaultLifespan"
    ):
        app.include_router(router)
        return
    app.router.routes.extend(router.routes)


def _include_routers(app: FastAPI, registry: ModelRegistry, settings: Settings, metrics: Metrics) -> None:
    _adopt_routes(app, health.build_router())
    kinds = {m.kind for m in registry}
    if "predictive" in kinds or not kinds:
        from server import v1, v2
        from server.dataplane import DataPlane

        app.state.dataplane = DataPlane(settings, registry, metrics)

        _adopt_routes(app, v1.build_router())
        v2_router = v2.build_router()
        _adopt_routes(app, v2_router)
        _add_openapi_models(app, v2_router.openapi_models)
    if "generative" in kinds:
        from server import openai

        openai.include(app)


class KcrApp(FastAPI):
    """FastAPI with our outermost layers in front of its own middleware stack: request context (ids,
    counters, access log), then the pure-ASGI fast paths for predict/infer and chat/completions."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        state = self.state
        if state.settings.fast_path and hasattr(state, "dataplane"):
            inner = FastPredictPath(inner, state)
        if state.settings.fast_path and hasattr(state, "openai_generate"):
            from server.openai_fastpath import FastChatPath

            inner = FastChatPath(inner, self)
        return RequestContextMiddleware(inner, metrics=state.metrics, access_log=state.access_log)


def _add_openapi_models(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Publish schemas of bodies that routes read raw (for speed and the binary extension)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in model_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components.setdefault(model.__name__, model_schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kserve-custom-runtime")
    except PackageNotFoundError:
        return "0.0.0"
