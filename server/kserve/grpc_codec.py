"""``ModelInferRequest`` ↔ numpy for the gRPC transport, with the REST v2 rules of ``server.kserve.codec``.

Raw tensors (``raw_input_contents``, what tritonclient sends) are decoded by the same function as
REST's binary tensor extension; typed ``contents`` become the datatype's numpy array, checked for
range, then take the same path, so both carry the same shape, size and element-count checks.

Responses are raw (``raw_output_contents``, what Triton answers and tritonclient reads) when the
request's inputs were raw, typed ``contents`` (what KServe answers) otherwise; the request parameter
``binary_data_output`` and the per-output ``binary_data`` choose explicitly. The protocol forbids
mixing the two in one response, so one raw output makes every output raw (FP16 is raw only).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from google.protobuf import unknown_fields

from server.errors import InvalidInput
from server.kserve import codec, inference
from server.kserve import grpc_predict_v2_pb2 as pb

#: datatype → (InferTensorContents field, numpy dtype the field holds).
_FIELDS: dict[str, tuple[str, Any]] = {
    "BOOL": ("bool_contents", np.bool_),
    "INT8": ("int_contents", np.int32),
    "INT16": ("int_contents", np.int32),
    "INT32": ("int_contents", np.int32),
    "INT64": ("int64_contents", np.int64),
    "UINT8": ("uint_contents", np.uint32),
    "UINT16": ("uint_contents", np.uint32),
    "UINT32": ("uint_contents", np.uint32),
    "UINT64": ("uint64_contents", np.uint64),
    "FP32": ("fp32_contents", np.float32),
    "FP64": ("fp64_contents", np.float64),
    "BYTES": ("bytes_contents", None),
}


def parameters(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """A protobuf parameter map as plain values. Triton's proto adds ``double_param`` (4) and
    ``uint64_param`` (5), which KServe's lacks: read from the unknown fields."""
    out: dict[str, Any] = {}
    for key, param in params.items():
        which = param.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(param, which)
            continue
        value: Any = None
        for field in unknown_fields.UnknownFieldSet(param):
            if field.field_number == 4 and field.wire_type == 1:
                value = struct.unpack("<d", struct.pack("<Q", field.data))[0]
            elif field.field_number == 5 and field.wire_type == 0:
                value = field.data
        out[key] = value
    return out


def unknown_string(message: Any, number: int) -> str:
    """A string field the message's type does not declare (Triton's repository requests)."""
    for field in unknown_fields.UnknownFieldSet(message):
        if field.field_number == number and field.wire_type == 2:
            return bytes(field.data).decode("utf-8", errors="replace")
    return ""


def _typed(inp: pb.ModelInferRequest.InferInputTensor, max_elements: int) -> np.ndarray:
    datatype, name, shape = inp.datatype, inp.name, list(inp.shape)
    if datatype == "FP16":
        raise InvalidInput(f"Input '{name}': FP16 has no typed contents; send it in raw_input_contents")
    entry = _FIELDS.get(datatype)
    if entry is None:
        return codec.decode_tensor(name, datatype, shape, [], None, max_elements)  # the datatype error
    field, holder = entry
    values = getattr(inp.contents, field)
    if holder is None:
        return codec.decode_tensor(name, datatype, shape, list(values), None, max_elements)
    array = np.array(values, dtype=holder)
    if all(d >= 0 for d in shape) and array.size != math.prod(shape):
        raise InvalidInput(
            f"Input '{name}': cannot reshape array of size {array.size} into shape {tuple(shape)}"
        )
    target = np.dtype(codec.V2_TO_NUMPY[datatype])
    if target != array.dtype and array.size:
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise InvalidInput(f"Input '{name}': {field} holds values outside the range of {datatype}")
    raw = array.astype(target.newbyteorder("<"), copy=False).tobytes()
    return codec.decode_tensor(name, datatype, shape, None, raw, max_elements)


def decode_inputs(request: pb.ModelInferRequest, max_elements: int) -> list[tuple[str, np.ndarray]]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        # KServe's messages, so clients that match on them keep working.
        raise InvalidInput(
            f"the number of inputs ({len(request.inputs)}) does not match the expected number of "
            f"raw input contents ({len(raw)}) for model '{request.model_name}'."
        )
    decoded = []
    for i, inp in enumerate(request.inputs):
        if inp.parameters:
            params = parameters(inp.parameters)
            inference.check_input_parameters(inp.name, params, "grpc")
            size = params.get("binary_data_size")
            if size is not None and (not raw or size != len(raw[i])):
                raise InvalidInput(
                    f"Input '{inp.name}': parameters.binary_data_size is {size!r} but its raw contents "
                    f"have {len(raw[i]) if raw else 0} bytes",
                    param="binary_data_size",
                )
        if raw:
            if inp.HasField("contents"):
                raise InvalidInput(
                    f"contents field must not be specified when using raw_input_contents for input "
                    f"'{inp.name}' for model '{request.model_name}'"
                )
            array = codec.decode_tensor(inp.name, inp.datatype, list(inp.shape), None, raw[i], max_elements)
        else:
            array = _typed(inp, max_elements)
        decoded.append((inp.name, array))
    return decoded


def _fill(contents: pb.InferTensorContents, datatype: str, array: np.ndarray) -> None:
    field, _ = _FIELDS[datatype]
    flat = array.reshape(-1)
    if datatype == "BYTES":
        items = [x if isinstance(x, bytes) else str(x).encode() for x in flat.tolist()]
        contents.bytes_contents.extend(items)
    else:
        getattr(contents, field).extend(flat.tolist())


def encode_response(
    model_name: str, request_id: str, outputs: list[tuple[str, np.ndarray, bool]]
) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=model_name, id=request_id)
    datatypes = [codec.datatype_of(array) for _, array, _ in outputs]
    raw = any(binary for _, _, binary in outputs) or "FP16" in datatypes
    for (name, array, _), datatype in zip(outputs, datatypes, strict=True):
        tensor = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        if raw:
            response.raw_output_contents.append(codec.tensor_raw(array))
        else:
            _fill(tensor.contents, datatype, array)
    return response
