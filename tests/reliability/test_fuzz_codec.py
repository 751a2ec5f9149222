"""Property tests of the v2 tensor codec (hypothesis): datatype x shape x JSON/binary, both directions.

An echo model (returns its input) behind the real app turns every request into a round trip through
decode → dataplane → encode. Valid tensors must come back equal (NaN/Infinity as ``null`` in JSON
output, as KServe via orjson); corrupted ones (shape vs data length, truncated binary, unknown
datatype, non-UTF-8 BYTES) must be a 400 in KServe's shape, never a 5xx. Plus ``decode_tensor``
itself on arbitrary garbage.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from starlette.testclient import TestClient

from server.app import create_app
from server.errors import InvalidInput, PayloadTooLarge
from server.kserve import codec
from server.model import ModelMetadata
from server.settings import Settings
from tests.reliability.shapes import FUZZ_COUNTS, kserve_error_problem

SCALE = float(os.environ.get("KCR_FUZZ_SCALE", "1"))
NUMERIC = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
           "FP16", "FP32", "FP64"]  # fmt: skip
HEADER = "inference-header-content-length"


class EchoModel:
    name = "echo"
    kind: ClassVar[str] = "predictive"
    load_before_serving: ClassVar[bool] = True
    outputs: Sequence[str] = ("predict",)
    default_output = "predict"
    ready = True

    async def load(self) -> None: ...

    async def unload(self) -> None: ...

    def metadata(self) -> ModelMetadata:
        return ModelMetadata()

    def predict(self, x: Any, output: str) -> Any:
        return x


@pytest.fixture(scope="module")
def client() -> Any:
    # Batching off: a round trip must not depend on what else is queued.
    with TestClient(create_app(Settings(access_log=False, max_batch_size=1), [EchoModel()])) as client:
        yield client


@st.composite
def tensors(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    datatype = draw(st.sampled_from([*NUMERIC, "BYTES"]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
    if datatype == "BYTES":
        # Valid UTF-8 only here (the model gets str); the non-UTF-8 case is its own test.
        items = draw(st.lists(st.text(max_size=8), min_size=math.prod(shape), max_size=math.prod(shape)))
        array = np.empty(len(items), dtype=object)
        array[:] = [s.encode() for s in items]
        return datatype, array.reshape(shape)
    dtype = np.dtype(codec.V2_TO_NUMPY[datatype])
    return datatype, draw(hnp.arrays(dtype, shape))


def _request(datatype: str, array: np.ndarray, binary_in: bool, binary_out: bool, nested: bool) -> tuple:
    inp: dict[str, Any] = {"name": "x", "shape": list(array.shape), "datatype": datatype}
    body: dict[str, Any] = {"inputs": [inp]}
    if binary_out:
        body["parameters"] = {"binary_data_output": True}
    if not binary_in:
        if datatype == "BYTES":
            data: Any = [b.decode() for b in array.reshape(-1)]
        else:
            data = array.tolist() if nested else array.reshape(-1).tolist()
        inp["data"] = data
        return json.dumps(body).encode(), {"content-type": "application/json"}
    raw = codec.tensor_raw(array)
    inp["parameters"] = {"binary_data_size": len(raw)}
    head = json.dumps(body).encode()
    return head + raw, {HEADER: str(len(head)), "content-type": "application/octet-stream"}


def _decode_response(response: Any) -> dict[str, Any]:
    if HEADER in response.headers:
        n = int(response.headers[HEADER])
        head = json.loads(response.content[:n])
        raw = response.content[n:]
        out = head["outputs"][0]
        size = out["parameters"]["binary_data_size"]
        out["raw"] = raw[:size]
        return out
    return response.json()["outputs"][0]


def _json_equal(expected: np.ndarray, got: list[Any]) -> bool:
    flat = expected.reshape(-1)
    if len(flat) != len(got):
        return False
    for e, g in zip(flat.tolist(), got, strict=True):
        if isinstance(e, float) and not math.isfinite(e):
            if g is not None:  # NaN/Infinity serialise as null (orjson, as KServe)
                return False
        elif e != g:
            return False
    return True


def _send(client: Any, body: bytes, headers: dict[str, str]) -> Any:
    response = client.post("/v2/models/echo/infer", content=body, headers=headers)
    FUZZ_COUNTS["v2 codec round trip (hypothesis)"] += 1
    assert response.status_code < 500, response.text
    return response


@settings(max_examples=int(1500 * SCALE), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(tensor=tensors(), binary_in=st.booleans(), binary_out=st.booleans(), nested=st.booleans())
def test_valid_tensors_round_trip(client: Any, tensor: tuple, binary_in: bool, binary_out: bool,
                                  nested: bool) -> None:  # fmt: skip
    datatype, array = tensor
    json_unsafe = array.dtype.kind == "f" and not np.isfinite(array).all()
    body, headers = _request(datatype, array, binary_in or json_unsafe, binary_out, nested)
    if datatype == "FP16" and not (binary_in or json_unsafe):
        response = _send(client, body, headers)
        assert response.status_code == 400 and "FP16" in response.json()["error"]
        return
    response = _send(client, body, headers)
    assert response.status_code == 200, response.text
    out = _decode_response(response)
    if datatype == "BYTES":
        # KServe's sklearn rule: strings reach the model as one flat list (an empty one comes back
        # typed FP64, as numpy types an empty list).
        assert out["shape"] == [array.size]
        if array.size == 0:
            return
        assert out["datatype"] == "BYTES"
        if "raw" in out:
            assert codec.bytes_tensor_from_raw(out["raw"]).tolist() == array.reshape(-1).tolist()
        else:
            assert out["data"] == [b.decode() for b in array.reshape(-1)]
        return
    assert out["datatype"] == datatype and out["shape"] == list(array.shape)
    if "raw" in out:
        got = np.frombuffer(out["raw"], dtype=array.dtype.newbyteorder("<")).reshape(array.shape)
        np.testing.assert_array_equal(got, array)
    else:
        assert _json_equal(array, out["data"]), (array, out["data"])


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    datatype, array = draw(tensors())
    binary = draw(st.booleans()) or datatype == "FP16"
    body, headers = _request(datatype, array, binary, draw(st.booleans()), False)
    kind = draw(st.sampled_from(["shape", "datatype", "truncate", "extra", "header"]))
    n = int(headers.get(HEADER, len(body)))
    head, raw = json.loads(body[:n]), body[n:]
    inp = head["inputs"][0]
    if kind == "shape":
        inp["shape"] = [*inp["shape"], draw(st.integers(2, 7))] if array.size else [draw(st.integers(1, 9))]
    elif kind == "datatype":
        inp["datatype"] = draw(st.sampled_from(["FP8", "fp32", "STRING", "", "INT128", "BF16"]))
    elif kind in ("truncate", "extra"):
        if not binary:
            data = inp["data"]
            inp["data"] = data[:-1] if kind == "truncate" and data else [*data, data[0] if data else 1]
        else:
            cut = draw(st.integers(1, 3))
            raw = raw[:-cut] if kind == "truncate" and raw else raw + b"\x00" * cut
            inp["parameters"]["binary_data_size"] = len(raw)
    elif binary:
        headers[HEADER] = draw(st.sampled_from(["-1", "abc", str(len(body) + 10), "1e3"]))
    else:
        inp["shape"] = [-1]
    if kind == "header" and not binary:
        pass
    new_head = json.dumps(head).encode()
    if binary and kind != "header":
        headers[HEADER] = str(len(new_head))
    return new_head + raw, headers


@settings(max_examples=int(600 * SCALE), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(case=corrupted())
def test_corrupted_tensors_are_400(client: Any, case: tuple[bytes, dict[str, str]]) -> None:
    body, headers = case
    response = _send(client, body, headers)
    if response.status_code == 200:
        # Some corruptions are still valid requests: a BYTES tensor whose extra zero bytes parse as
        # an empty element of a longer list, a shape that still matches. Only a sane answer matters.
        return
    assert response.status_code == 400, response.text
    assert kserve_error_problem(response.json()) is None


def test_non_utf8_bytes_are_400(client: Any) -> None:
    for payload in (b"\xff\xfe", b"ok\x80", b"\xc3"):
        raw = struct.pack("<I", len(payload)) + payload
        tensor = {
            "name": "x",
            "shape": [1],
            "datatype": "BYTES",
            "parameters": {"binary_data_size": len(raw)},
        }
        head = json.dumps({"inputs": [tensor]}).encode()
        response = _send(client, head + raw, {HEADER: str(len(head))})
        assert response.status_code == 400
        assert response.json() == {"error": "Input 'x': BYTES element 0 is not valid UTF-8"}


@settings(max_examples=int(3000 * SCALE), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(
    datatype=st.one_of(st.sampled_from([*NUMERIC, "BYTES"]), st.text(max_size=6)),
    shape=st.lists(st.integers(-3, 2**40), max_size=5),
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=5),
        lambda children: st.lists(children, max_size=4),
        max_leaves=12,
    ),
    raw=st.none() | st.binary(max_size=64),
)
def test_decode_tensor_fails_only_with_client_errors(datatype: str, shape: list[int], data: Any,
                                                     raw: bytes | None) -> None:  # fmt: skip
    """Whatever arrives, the codec answers an array or ``InvalidInput``/``PayloadTooLarge``."""
    try:
        array = codec.decode_tensor("x", datatype, shape, data, raw, max_elements=10_000)
    except (InvalidInput, PayloadTooLarge):
        return
    assert list(array.shape) == shape
