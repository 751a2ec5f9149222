"""``create_app(settings, models)``: the whole app from its arguments, no module-level state.

Routers are chosen from each model's declared ``kind``: v1 + v2 for predictive models, the OpenAI
router (mounted at ``/openai/v1`` and ``/v1``) for generative ones; health and metrics always.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp

from server import health
from server.deferred_imports import hidden
from server.lifecycle import lifespan
from server.middleware import RequestContextMiddleware
from server.runtime import Model
from server.settings import Settings
from server.state import ServerState, build_state

logger = logging.getLogger("kcr.server")


def create_app(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> FastAPI:
    """The whole app, lifespan and outer layers included, for in-process use (tests, ``--no-fast-path``,
    the OpenAI facade). ``load_times``: seconds each model took when the CLI loaded it before binding."""
    return create_fastapi(build_state(settings, models, load_times))


def create_fastapi(state: ServerState, *, behind_front: bool = False) -> FastAPI:
    """FastAPI over ``state``. ``behind_front``: built by ``server.front``, which already runs the
    lifespan and the outer layers (request context, fast paths) and answers the probes itself."""
    app = KcrApp(
        title="kserve-custom-runtime",
        summary="KServe v1/v2 and OpenAI-compatible model server",
        version=_version(),
        lifespan=None if behind_front else (lambda app: lifespan(state)),
        redoc_url=None,
    )
    app.state = state  # type: ignore[assignment]
    app.outer_layers = not behind_front

    # For every route, FastAPI imports pydantic.v1 to ask whether its types are v1 models (~15 ms of
    # cold start, ~1.5 MB that stays). Ours never are; with pydantic.v1 hidden the answer is the same.
    with hidden("pydantic.v1"):
        _include_routers(app, state)
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


def _include_routers(app: FastAPI, state: ServerState) -> None:
    _adopt_routes(app, health.build_router())
    if state.dataplane is not None:
        from server import v1, v2

        _adopt_routes(app, v1.build_router())
        v2_router = v2.build_router()
        _adopt_routes(app, v2_router)
        _add_openapi_models(app, v2_router.openapi_models)
    if state.registry.of_kind("generative"):
        from server import openai

        openai.include(app)


class KcrApp(FastAPI):
    """FastAPI with our outermost layers in front of its own middleware stack: request context (ids,
    counters, access log), then the pure-ASGI fast paths for predict/infer and chat/completions.
    Without ``outer_layers`` (behind ``server.front``, which has its own) FastAPI's stack alone."""

    outer_layers = True

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        if not self.outer_layers:
            return inner
        state = self.state
        if state.settings.fast_path and state.dataplane is not None:
            from server.fastpath import FastPredictPath  # needs numpy: predictive runtimes only

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
