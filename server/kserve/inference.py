"""The Open Inference Protocol's request semantics, shared by the REST (``v2``) and gRPC transports.

Each transport decodes its wire format into named numpy tensors and plain parameter dicts; from
there one path decides the model input, the estimator methods to call, the binary/typed choice per
output and Triton's classification extension, and calls the dataplane. So REST and gRPC accept and
refuse exactly the same requests.

Parameters: every parameter the protocol (KServe's or Triton's) gives a meaning is either honoured
or refused with a 400 that names it; none is accepted and ignored. Names the protocols do not define
are the model's (KServe and Triton pass them to the model): they are accepted, and no scikit-learn
model reads any.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.errors import InvalidInput, UnsupportedOutput
from server.kserve import codec
from server.kserve.dataplane import DataPlane
from server.model import PredictiveModel

DEFAULT_OUTPUT = "output-0"
Params = Mapping[str, Any]

#: Triton parameters for features this server does not have: refused, by name.
_NOT_SUPPORTED = {
    "sequence_id": "sequence batching is not supported",
    "sequence_start": "sequence batching is not supported",
    "sequence_end": "sequence batching is not supported",
    "priority": "request priorities are not supported",
    "timeout": "server-side request timeouts are not supported (use the client's deadline)",
    "shared_memory_region": "shared memory is not supported: send the tensor in the request",
    "shared_memory_byte_size": "shared memory is not supported: send the tensor in the request",
    "shared_memory_offset": "shared memory is not supported: send the tensor in the request",
    "class_count": "Triton's classification extension is the output parameter 'classification'",
}
#: Per-input ``content_type`` values that mean what the server does anyway (MLServer's codecs send them).
_INPUT_CONTENT_TYPES = {"np", "str"}


def _refuse(name: str, where: str, why: str) -> InvalidInput:
    return InvalidInput(f"Parameter '{name}' {where}: {why}", param=name)


def _bool(name: str, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, where, f"expected a boolean, got {value!r}")
    return value


def request_options(params: Params | None) -> tuple[str | None, bool | None]:
    """(content_type, binary_data_output) of the request's parameters; refuses the rest."""
    content_type, binary = None, None
    for name, value in (params or {}).items():
        if name in _NOT_SUPPORTED:
            raise _refuse(name, "of the request", _NOT_SUPPORTED[name])
        if name == "content_type":
            if value != "pd":
                why = f"only 'pd' (one column per input) is supported, not {value!r}"
                raise _refuse(name, "of the request", why)
            content_type = value
        elif name == "binary_data_output":
            binary = _bool(name, value, "of the request")
        elif name in ("binary_data", "binary_data_size", "classification"):
            raise _refuse(name, "of the request", "it is a per-tensor parameter")
    return content_type, binary


def check_input_parameters(input_name: str, params: Params | None, transport: str) -> None:
    """Refuses what an input may not carry (``binary_data_size`` is checked by each transport's
    decoder: REST reads it, gRPC checks it against the raw contents, as the kserve SDK sends it)."""
    where = f"of input '{input_name}'"
    for name, value in (params or {}).items():
        if name in _NOT_SUPPORTED:
            raise _refuse(name, where, _NOT_SUPPORTED[name])
        if name == "content_type" and value not in _INPUT_CONTENT_TYPES:
            raise _refuse(name, where, f"only {sorted(_INPUT_CONTENT_TYPES)} are supported, not {value!r}")
        if name in ("binary_data", "binary_data_output", "classification"):
            raise _refuse(name, where, "it is not an input parameter")


@dataclass(frozen=True)
class Wanted:
    """One output the response carries: its name, the estimator method behind it, and how to send it."""

    name: str
    method: str
    binary: bool | None = None
    classification: int | None = None


def _output_options(name: str, params: Params | None) -> tuple[bool | None, int | None]:
    where = f"of output '{name}'"
    binary, top_k = None, None
    for key, value in (params or {}).items():
        if key in _NOT_SUPPORTED:
            raise _refuse(key, where, _NOT_SUPPORTED[key])
        if key == "binary_data":
            binary = _bool(key, value, where)
        elif key == "classification":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _refuse(key, where, f"expected the number of classes (an integer >= 1), got {value!r}")
            top_k = value
        elif key in ("binary_data_size", "binary_data_output", "content_type"):
            raise _refuse(key, where, "it is not an output parameter")
    return binary, top_k


def requested_outputs(
    model: PredictiveModel, outputs: Sequence[tuple[str, Params | None]] | None
) -> list[Wanted]:
    """``output-0`` is the default method (KServe's name); a method name picks that method (MLServer)."""
    if not outputs:
        return [Wanted(DEFAULT_OUTPUT, model.default_output)]
    wanted = []
    for name, params in outputs:
        if name == DEFAULT_OUTPUT:
            method = model.default_output
        elif name in model.outputs:
            method = name
        else:
            raise UnsupportedOutput(name, model.name)
        binary, top_k = _output_options(name, params)
        wanted.append(Wanted(name, method, binary, top_k))
    return wanted


def model_input(tensors: list[tuple[str, np.ndarray]], content_type: str | None) -> Any:
    if not tensors:
        raise InvalidInput("'inputs' is empty: send at least one input tensor")
    if content_type == "pd":
        return codec.frame_from_inputs(tensors)
    # KServe's sklearn rule: only the first input is the model input.
    name, array = tensors[0]
    if array.dtype == object:
        return codec.utf8_strings(name, array.reshape(-1))
    return array


def outputs_for(result: Any, name: str) -> list[tuple[str, np.ndarray]]:
    if type(result).__name__ == "DataFrame" and name == DEFAULT_OUTPUT:
        return [(str(col), result[col].to_numpy()) for col in result.columns]
    if isinstance(result, list):
        result = np.array(result, dtype=object if result and isinstance(result[0], str) else None)
    if not isinstance(result, np.ndarray):
        result = np.asarray(result)
    return [(name, result)]


# --- Triton's classification extension -----------------------------------------------------------


def _score_method(model: PredictiveModel, method: str) -> str:
    if method in ("predict_proba", "decision_function"):
        return method
    for candidate in ("predict_proba", "decision_function"):
        if candidate in model.outputs:
            return candidate
    raise InvalidInput(
        f"Parameter 'classification': model '{model.name}' has no class scores (no predict_proba or "
        "decision_function)",
        param="classification",
    )


def _score(value: float) -> str:
    # Triton formats scores with C++ std::to_string: six decimals.
    return f"{value:f}" if math.isfinite(value) else str(value)


def classify(scores: np.ndarray, top_k: int, labels: Sequence[str]) -> np.ndarray:
    """Top-k of the last axis as Triton returns it: BYTES ``"score:index:label"`` (``"score:index"``
    when the model has no labels), highest first, ``[rows, k]``."""
    if scores.ndim == 1:  # binary decision_function: the positive class's margin
        scores = np.stack([-scores, scores], axis=1)
    flat = scores.reshape(-1, scores.shape[-1]).astype(np.float64, copy=False)
    k = min(top_k, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    out = np.empty(order.shape, dtype=object)
    for r, row in enumerate(order):
        for c, index in enumerate(row):
            text = f"{_score(float(flat[r, index]))}:{int(index)}"
            if int(index) < len(labels):
                text += f":{labels[int(index)]}"
            out[r, c] = text.encode()
    return out.reshape((*scores.shape[:-1], k))


async def infer(
    dataplane: DataPlane, model: PredictiveModel, x: Any, wanted: list[Wanted]
) -> list[tuple[str, np.ndarray, Wanted]]:
    """Each wanted output's tensors; one predict call per estimator method."""
    results: dict[str, Any] = {}
    labels: Sequence[str] | None = None
    outputs: list[tuple[str, np.ndarray, Wanted]] = []
    for want in wanted:
        method = want.method if want.classification is None else _score_method(model, want.method)
        if method not in results:
            results[method] = await dataplane.predict(model, x, method)
        if want.classification is None:
            outputs.extend((n, a, want) for n, a in outputs_for(results[method], want.name))
            continue
        if labels is None:
            labels = model.metadata().labels
        ((_, scores),) = outputs_for(results[method], want.name)
        if scores.dtype.kind not in "fiub":
            raise InvalidInput(f"Output '{want.name}' holds no scores to classify", param="classification")
        outputs.append((want.name, classify(scores, want.classification, labels), want))
    return outputs
