"""Open Inference Protocol (KServe v2) REST routes: metadata, readiness, ``/infer``, and 501 for
model versions (as KServe). The inference itself is ``server.v2_handlers``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from server import kserve_errors
from server.body import read_body
from server.errors import NotSupported
from server.routing import make_route_class, require_api_key
from server.v2_handlers import HEADER_LENGTH, infer_v2
from server.v2_types import InferenceRequest, InferenceResponse

_VERSIONS = "Model versioning not supported yet."


def build_router() -> APIRouter:
    router = APIRouter(
        route_class=make_route_class(kserve_errors.render), tags=["Open Inference Protocol (v2)"]
    )

    @router.get("/v2", summary="Server metadata")
    async def server_metadata() -> dict[str, Any]:
        from server.app import _version

        return {
            "name": "kserve-custom-runtime",
            "version": _version(),
            "extensions": ["model_repository_extension"],
        }

    @router.get("/v2/models", summary="List models (KServe extension)")
    async def list_models(request: Request) -> dict[str, list[str]]:
        return {"models": request.app.state.registry.names()}

    @router.get(
        "/v2/models/{model_name}", summary="Model metadata", responses=kserve_errors.error_responses(404)
    )
    async def model_metadata(model_name: str, request: Request) -> dict[str, Any]:
        model = request.app.state.registry.get(model_name)
        meta = model.metadata()
        return {
            "name": model.name,
            "versions": None,
            "platform": meta.platform,
            "inputs": [vars(t) for t in meta.inputs],
            "outputs": [vars(t) for t in meta.outputs],
        }

    @router.post(
        "/v2/models/{model_name}/infer",
        summary="Inference (JSON or binary tensor extension)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
                },
            }
        },
        responses={
            200: {"model": InferenceResponse},
            **kserve_errors.error_responses(400, 401, 404, 413, 503),
        },
        dependencies=[Depends(require_api_key)],
        response_class=Response,
    )
    async def infer(model_name: str, request: Request) -> Response:
        # Normally answered by server.fastpath before FastAPI; this route documents it and serves
        # when the fast path is off.
        state = request.app.state
        model = state.dataplane.model(model_name)
        request.scope["state"]["model_name"] = model_name
        body = await read_body(request, state.settings.max_body_bytes)
        payload, header_len = await infer_v2(
            state.dataplane,
            model,
            body,
            request.headers.get(HEADER_LENGTH),
            request.headers.get("content-type", ""),
        )
        if header_len is None:
            return Response(payload, media_type="application/json")
        return Response(
            payload, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header_len)}
        )

    for path, method in (
        ("/v2/models/{model_name}/versions/{model_version}", "GET"),
        ("/v2/models/{model_name}/versions/{model_version}/ready", "GET"),
        ("/v2/models/{model_name}/versions/{model_version}/infer", "POST"),
    ):

        async def versioned(model_name: str, model_version: str) -> Response:
            raise NotSupported(_VERSIONS)

        router.add_api_route(
            path, versioned, methods=[method], include_in_schema=False, response_class=Response
        )
    router.openapi_models = [InferenceRequest]  # type: ignore[attr-defined]
    return router
