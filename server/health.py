"""Liveness, readiness and metrics: always mounted, never behind an API key.

Readiness means every model is loaded and answering and the server is not draining for shutdown;
KServe's ``/v2/health/ready`` says true whenever the process answers, which lets traffic in too early.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from server import kserve_errors
from server.errors import ServerNotReady
from server.routing import make_route_class


def server_ready(request: Request) -> bool:
    state = request.app.state
    return not state.draining and state.registry.all_ready()


def json_response(payload: dict[str, object]) -> Response:
    """A probe's answer, serialised here: a returned dict would go through FastAPI's
    ``jsonable_encoder``, which imports pydantic.v1 (~1.5 MB) on its first call to check for v1 models."""
    return Response(orjson.dumps(payload), media_type="application/json")


def build_router() -> APIRouter:
    router = APIRouter(route_class=make_route_class(kserve_errors.render), tags=["health"])

    @router.get("/", summary="Liveness (KServe v1)", response_model=dict[str, str])
    async def live_v1() -> Response:
        return json_response({"status": "alive"})

    @router.get(
        "/v2/health/live", summary="Liveness (Open Inference Protocol)", response_model=dict[str, bool]
    )
    async def live_v2() -> Response:
        return json_response({"live": True})

    @router.get(
        "/v2/health/ready",
        summary="Readiness: 200 only when every model is loaded",
        responses={503: {"description": "Not ready"}},
        response_model=dict[str, bool],
    )
    async def ready_v2(request: Request) -> Response:
        if not server_ready(request):
            raise ServerNotReady()
        return json_response({"ready": True})

    @router.get(
        "/v2/models/{model_name}/ready",
        summary="Model readiness (any model kind)",
        responses=kserve_errors.error_responses(404, 503),
        response_model=dict[str, object],
    )
    async def model_ready_v2(model_name: str, request: Request) -> Response:
        model = request.app.state.registry.get_ready(model_name)
        return json_response({"name": model.name, "ready": True})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        body, content_type = request.app.state.metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return router
