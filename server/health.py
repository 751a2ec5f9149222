"""Liveness, readiness and metrics routes: always mounted, never behind an API key.

The answers come from ``server.probes``, which ``server.front`` also serves from before FastAPI is
imported; these routes document them and serve them when the front is not in use.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from server import kserve_errors, probes
from server.routing import make_route_class


def json_response(payload: dict[str, object]) -> Response:
    """A probe's answer, serialised here: a returned dict would go through FastAPI's
    ``jsonable_encoder``, which imports pydantic.v1 (~1.5 MB) on its first call to check for v1 models."""
    return Response(orjson.dumps(payload), media_type="application/json")


def build_router() -> APIRouter:
    router = APIRouter(route_class=make_route_class(kserve_errors.render), tags=["health"])

    @router.get("/", summary="Liveness (KServe v1)", response_model=dict[str, str])
    async def live_v1() -> Response:
        return json_response(probes.LIVE_V1)

    @router.get(
        "/v2/health/live", summary="Liveness (Open Inference Protocol)", response_model=dict[str, bool]
    )
    async def live_v2() -> Response:
        return json_response(probes.LIVE_V2)

    @router.get(
        "/v2/health/ready",
        summary="Readiness: 200 only when every model is loaded",
        responses={503: {"description": "Not ready"}},
        response_model=dict[str, bool],
    )
    async def ready_v2(request: Request) -> Response:
        return json_response(probes.server_ready(request.app.state))

    @router.get(
        "/v2/models/{model_name}/ready",
        summary="Model readiness (any model kind)",
        responses=kserve_errors.error_responses(404, 503),
        response_model=dict[str, object],
    )
    async def model_ready_v2(model_name: str, request: Request) -> Response:
        return json_response(probes.model_ready(request.app.state, model_name))

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        body, content_type = probes.metrics(request.app.state, request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return router
