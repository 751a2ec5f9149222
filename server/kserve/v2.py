"""Open Inference Protocol (KServe v2) REST: metadata, ``/infer`` with the binary tensor extension,
and 501 for model versions (as KServe).

JSON responses keep KServe's key order and its always-present ``null`` fields so bodies are
byte-identical to KServe's. Requested outputs named ``predict``/``predict_proba`` pick the estimator
method per request (as MLServer does); ``output-0`` is the default method, as in KServe.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
from pydantic import ValidationError

from server.errors import InvalidInput, NotSupported
from server.kserve import codec, errors, inference
from server.kserve.dataplane import OFFLOAD_BYTES, DataPlane
from server.kserve.types import InferenceRequest, InferenceResponse
from server.model import PredictiveModel
from server.version import version
from server.web.http import Request, Response
from server.web.routing import Route, Table

HEADER_LENGTH = "inference-header-content-length"
DEFAULT_OUTPUT = inference.DEFAULT_OUTPUT


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "Invalid inference request: " + "; ".join(parts)


def parse_request(
    body: bytes, header_length: str | None, content_type: str
) -> tuple[InferenceRequest, bytes]:
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise InvalidInput(f"Invalid {HEADER_LENGTH} header: {header_length!r}") from None
        if not 0 <= n <= len(body):
            raise InvalidInput(f"{HEADER_LENGTH} is {n} but the body has {len(body)} bytes")
        head, raw = body[:n], body[n:]
    else:
        head, raw = body, b""
        if content_type.startswith("application/octet-stream"):
            # KServe's message, typo included, so clients matching on it keep working.
            raise InvalidInput(
                "received byte inputs, but the'inference-header-content-length' header is missing."
            )
    try:
        request = InferenceRequest.model_validate_json(head)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            codec.parse_json(head)  # raises KServe's "Unrecognized request format: ..." message
        raise InvalidInput(_validation_message(exc)) from None
    return request, raw


def decode_inputs(request: InferenceRequest, raw: bytes, max_elements: int) -> list[tuple[str, np.ndarray]]:
    decoded = []
    offset = 0
    for inp in request.inputs:
        params = inp.parameters or {}
        inference.check_input_parameters(inp.name, params, "rest")
        chunk = None
        size = params.get("binary_data_size")
        if inp.data is None:
            if size is None:
                raise InvalidInput(f"'data' field is missing for input '{inp.name}'")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(raw):
                raise InvalidInput(
                    f"Input '{inp.name}': binary_data_size {size!r} does not fit the {len(raw)} binary bytes"
                )
            chunk = raw[offset : offset + size]
            offset += size
        elif size is not None:
            raise InvalidInput(
                f"Input '{inp.name}' has both 'data' and parameters.binary_data_size: send one of them",
                param="binary_data_size",
            )
        array = codec.decode_tensor(inp.name, inp.datatype, inp.shape, inp.data, chunk, max_elements)
        decoded.append((inp.name, array))
    return decoded


def encode_response(
    model_name: str, request_id: str, outputs: list[tuple[str, np.ndarray, bool]]
) -> tuple[bytes, int | None]:
    """JSON body, or JSON header + raw tensors when any output is binary (with the header length)."""
    if not any(binary for _, _, binary in outputs):
        body = {
            "model_name": model_name,
            "model_version": None,
            "id": request_id,
            "parameters": None,
            "outputs": [
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": codec.datatype_of(array),
                    "parameters": None,
                    "data": codec.tensor_data(array),
                }
                for name, array, _ in outputs
            ],
        }
        return codec.dumps(body), None
    entries, raws = [], []
    for name, array, binary in outputs:
        entry: dict[str, Any] = {
            "name": name,
            "shape": list(array.shape),
            "datatype": codec.datatype_of(array),
        }
        if binary:
            raw = codec.tensor_raw(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            raws.append(raw)
        else:
            entry["data"] = codec.tensor_data(array)
        entries.append(entry)
    head = codec.dumps(
        {"id": request_id, "model_name": model_name, "model_version": None, "outputs": entries}
    )
    return head + b"".join(raws), len(head)


def _decode(
    body: bytes, header_length: str | None, content_type: str, max_elements: int
) -> tuple[InferenceRequest, bool | None, Any]:
    """Parse and decode a body (off the event loop when large: ``DataPlane.codec``)."""
    infer_request, raw = parse_request(body, header_length, content_type)
    frame, binary_output = inference.request_options(infer_request.parameters)
    tensors = decode_inputs(infer_request, raw, max_elements)
    return infer_request, binary_output, inference.model_input(tensors, frame)


async def infer_v2(
    dataplane: DataPlane, model: PredictiveModel, body: bytes, header_length: str | None, content_type: str
) -> tuple[bytes, int | None]:
    """v2 body in; JSON body, or binary body + JSON header length, out (``None`` for JSON)."""
    metrics, model_name = dataplane.metrics, model.name
    start = time.perf_counter()
    try:
        max_elements = dataplane.settings.max_elements
        args = (body, header_length, content_type, max_elements)
        small = len(body) <= OFFLOAD_BYTES  # on the loop: a thread hop costs more than the work
        decoded = _decode(*args) if small else await dataplane.codec(len(body), _decode, *args)
        infer_request, binary_output, x = decoded
        requested = [(o.name, o.parameters) for o in infer_request.outputs or ()]
        wanted = inference.requested_outputs(model, requested)
    finally:
        metrics.child(metrics.preprocess, model_name).observe(time.perf_counter() - start)
    results = await inference.infer(dataplane, model, x, wanted)
    default_binary = bool(binary_output)
    outputs = [(n, a, default_binary if w.binary is None else w.binary) for n, a, w in results]
    start = time.perf_counter()
    request_id = infer_request.id or str(uuid.uuid4())
    out = (model_name, request_id, outputs)
    payload = encode_response(*out) if small else await dataplane.codec(len(body), encode_response, *out)
    metrics.child(metrics.postprocess, model_name).observe(time.perf_counter() - start)
    del x, results, outputs, out
    dataplane.release(len(body))
    return payload


_VERSIONS = "Model versioning not supported yet."
_BINARY = b"application/octet-stream"
_HEADER_LENGTH = HEADER_LENGTH.encode()


def table(dataplane: DataPlane) -> Table:
    registry = dataplane.registry

    async def infer(request: Request) -> Response:
        name = request.params["model_name"]
        model = dataplane.model(name)
        request.name_model(name)
        body = await request.body()
        payload, json_len = await infer_v2(
            dataplane,
            model,
            body,
            request.header(HEADER_LENGTH.encode()),
            request.header(b"content-type") or "",
        )
        if json_len is None:
            return Response(payload)
        return Response(
            payload, content_type=_BINARY, headers=[(HEADER_LENGTH.encode(), str(json_len).encode())]
        )

    async def server_metadata(request: Request) -> Response:
        return Response.json(
            {
                "name": "kserve-custom-runtime",
                "version": version(),
                "extensions": ["model_repository_extension"],
            }
        )

    async def list_models(request: Request) -> Response:
        return Response.json({"models": registry.names()})

    async def model_metadata(request: Request) -> Response:
        model = registry.get(request.params["model_name"])
        meta = model.metadata()
        return Response.json(
            {
                "name": model.name,
                "versions": None,
                "platform": meta.platform,
                "inputs": [vars(t) for t in meta.inputs],
                "outputs": [vars(t) for t in meta.outputs],
            }
        )

    async def versioned(request: Request) -> Response:
        raise NotSupported(_VERSIONS)

    infer_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}},
    }
    hidden = {"include_in_schema": False}
    routes = [
        Route("GET", "/v2", server_metadata, "Server metadata", auth=False),
        Route("GET", "/v2/models", list_models, "List models (KServe extension)", auth=False),
        Route("GET", "/v2/models/{model_name}", model_metadata, "Model metadata", auth=False,
              docs={"responses": errors.error_responses(404)}),
        Route("POST", "/v2/models/{model_name}/infer", infer, "Inference (JSON or binary tensor extension)",
              docs={"openapi_extra": {"requestBody": infer_body},
                    "responses": {200: {"model": InferenceResponse},
                                  **errors.error_responses(400, 401, 404, 413, 503)}},
              schemas=(InferenceRequest,)),
        Route("GET", "/v2/models/{model_name}/versions/{model_version}", versioned, auth=False, docs=hidden),
        Route("GET", "/v2/models/{model_name}/versions/{model_version}/ready", versioned, auth=False,
              docs=hidden),
        Route("POST", "/v2/models/{model_name}/versions/{model_version}/infer", versioned, auth=False,
              docs=hidden),
    ]  # fmt: skip
    return Table("v2", routes, errors.render, tags=("Open Inference Protocol (v2)",))
