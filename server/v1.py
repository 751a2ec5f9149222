"""KServe v1 REST routes: ``/v1/models``, readiness, ``:predict`` and ``:explain`` (the prediction
itself is ``server.v1_handlers``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from server import kserve_errors, probes
from server.body import read_body
from server.errors import NotSupported
from server.health import json_response
from server.routing import make_route_class, require_api_key
from server.v1_handlers import predict_v1

_JSON = "application/json"

PREDICT_BODY = {
    "required": True,
    "content": {
        _JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "instances": {"type": "array", "items": {}},
                    "inputs": {"type": "array", "items": {}},
                },
                "example": {"instances": [[6.8, 2.8, 4.8, 1.4]]},
            }
        }
    },
}
ERROR_RESPONSES = kserve_errors.error_responses(400, 401, 404, 413, 503)


def build_router() -> APIRouter:
    router = APIRouter(route_class=make_route_class(kserve_errors.render), tags=["KServe v1"])

    @router.get("/v1/models", summary="List models")
    async def list_models(request: Request) -> dict[str, list[str]]:
        return {"models": request.app.state.registry.names()}

    @router.get(
        "/v1/models/{model_name}",
        summary="Model readiness",
        responses=kserve_errors.error_responses(404, 503),
        response_model=dict[str, object],
    )
    async def model_ready(model_name: str, request: Request) -> Response:
        return json_response(probes.model_ready(request.app.state, model_name))

    @router.post(
        "/v1/models/{model_name}:predict",
        summary="Predict",
        openapi_extra={"requestBody": PREDICT_BODY},
        responses=ERROR_RESPONSES,
        dependencies=[Depends(require_api_key)],
        response_class=Response,
    )
    async def predict(model_name: str, request: Request) -> Response:
        # Normally answered by server.fastpath before FastAPI; this route documents it and serves
        # when the fast path is off.
        state = request.app.state
        model = state.dataplane.model(model_name)
        request.scope["state"]["model_name"] = model_name
        body = await read_body(request, state.settings.max_body_bytes)
        return Response(await predict_v1(state.dataplane, model, body), media_type=_JSON)

    @router.post(
        "/v1/models/{model_name}:explain",
        summary="Explain (no explainer: 501, as KServe)",
        responses=kserve_errors.error_responses(401, 404, 501, 503),
        dependencies=[Depends(require_api_key)],
    )
    async def explain(model_name: str, request: Request) -> Response:
        request.app.state.registry.get_ready(model_name)
        raise NotSupported("Could not find explainer_host.")

    return router
