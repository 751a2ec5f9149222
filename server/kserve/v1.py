"""KServe v1 REST: ``/v1/models``, readiness, ``:predict`` and ``:explain``.

A prediction is bytes in, bytes out: the body is decoded by ``server.kserve.codec``, predicted by
the dataplane (micro-batched, off the event loop when slow), and encoded back.
"""

from __future__ import annotations

import time
from typing import Any

from server.errors import NotSupported
from server.kserve import chunked, codec, errors
from server.kserve.dataplane import OFFLOAD_BYTES, DataPlane
from server.web.http import Request, Response
from server.web.routing import Route, Table

PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {
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


def decode(body: bytes, max_elements: int) -> Any:
    """A v1 body as the model's input. Only a body with quotes besides its key's can hold strings."""
    array = chunked.numeric_instances(body, max_elements)
    if array is not None:
        return array
    instances = codec.v1_instances(codec.parse_json(body))
    return codec.decode_v1(instances, max_elements, strings=body.count(b'"') > 2)


def table(dataplane: DataPlane) -> Table:
    registry, metrics, max_elements = dataplane.registry, dataplane.metrics, dataplane.settings.max_elements

    async def predict(request: Request) -> Response:
        name = request.params["model_name"]
        model = dataplane.model(name)
        request.name_model(name)
        body = await request.body()
        start = time.perf_counter()
        try:
            if len(body) <= OFFLOAD_BYTES:
                x = decode(body, max_elements)
            else:
                x = await dataplane.codec(len(body), decode, body, max_elements)
        finally:
            metrics.child(metrics.preprocess, name).observe(time.perf_counter() - start)
        result = await dataplane.predict(model, x, model.default_output)
        start = time.perf_counter()
        if len(body) <= OFFLOAD_BYTES:
            payload = codec.encode_v1(result)
        else:
            payload = await dataplane.codec(len(body), codec.encode_v1, result)
        metrics.child(metrics.postprocess, name).observe(time.perf_counter() - start)
        del x, result
        dataplane.release(len(body))
        return Response(payload)

    async def list_models(request: Request) -> Response:
        return Response.json({"models": registry.names()})

    async def model_ready(request: Request) -> Response:
        model = registry.get_ready(request.params["model_name"])
        return Response.json({"name": model.name, "ready": True})

    async def explain(request: Request) -> Response:
        registry.get_ready(request.params["model_name"])
        raise NotSupported("Could not find explainer_host.")

    routes = [
        Route("GET", "/v1/models", list_models, "List models", auth=False,
              docs={"response_model": dict[str, list[str]]}),
        Route("GET", "/v1/models/{model_name}", model_ready, "Model readiness", auth=False,
              docs={"response_model": dict[str, object], "responses": errors.error_responses(404, 503)}),
        Route("POST", "/v1/models/{model_name}:predict", predict, "Predict",
              docs={"openapi_extra": {"requestBody": PREDICT_BODY},
                    "responses": errors.error_responses(400, 401, 404, 413, 503)}),
        Route("POST", "/v1/models/{model_name}:explain", explain, "Explain (no explainer: 501, as KServe)",
              docs={"responses": errors.error_responses(401, 404, 501, 503)}),
    ]  # fmt: skip
    return Table("v1", routes, errors.render, tags=("KServe v1",))
