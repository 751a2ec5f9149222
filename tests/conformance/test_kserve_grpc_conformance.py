"""KServe is the oracle over gRPC too: the same requests go to KServe 0.21's own gRPC server
(kserve.ModelServer on its --grpc_port, serving the reference sklearn model) and to ours.

Successes must carry identical tensors (name, datatype, shape, values, whether raw or typed), ids
and model names; errors the same status code, unless the case names a documented difference
(docs/protocols.md, "Differences from KServe"), where KServe's code and ours are both asserted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from server.kserve import grpc_predict_v2_pb2 as pb
from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.procs import ServerProcess

README = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"
ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]])
Code = grpc.StatusCode
Output = pb.ModelInferRequest.InferRequestedOutputTensor


@dataclass
class Case:
    id: str
    method: str
    request: Any
    #: None: identical to KServe. Otherwise the key of the documented difference.
    difference: str | None = None
    kserve: Code | None = None
    ours: Code | None = None
    setup: str = "iris"
    extra: dict[str, Any] = field(default_factory=dict)


def infer(
    datatype: str = "FP64", array: np.ndarray = ROWS, raw: bool = False, model: str = "iris", **kw: Any
) -> Any:
    request = pb.ModelInferRequest(model_name=model, **kw)
    tensor = request.inputs.add(name="input-0", datatype=datatype, shape=array.shape)
    if raw:
        request.raw_input_contents.append(array.tobytes())
        return request
    fields = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT64": "int64_contents",
              "INT32": "int_contents", "BOOL": "bool_contents", "UINT32": "uint_contents"}  # fmt: skip
    getattr(tensor.contents, fields[datatype]).extend(array.reshape(-1).tolist())
    return request


def cases() -> list[Case]:
    return [
        Case("live", "ServerLive", pb.ServerLiveRequest()),
        Case("ready", "ServerReady", pb.ServerReadyRequest()),
        Case("model-ready", "ModelReady", pb.ModelReadyRequest(name="iris")),
        Case("model-ready-unknown", "ModelReady", pb.ModelReadyRequest(name="nope")),
        Case("metadata-unknown", "ModelMetadata", pb.ModelMetadataRequest(name="nope")),
        Case("metadata", "ModelMetadata", pb.ModelMetadataRequest(name="iris"), "metadata-from-estimator"),
        Case("server-metadata", "ServerMetadata", pb.ServerMetadataRequest(), "server-name"),
        Case("fp64", "ModelInfer", infer(id="a")),
        Case("fp32", "ModelInfer", infer("FP32", ROWS.astype(np.float32), id="b")),
        Case("int64", "ModelInfer", infer("INT64", ROWS.astype(np.int64), id="c")),
        Case("int32", "ModelInfer", infer("INT32", ROWS.astype(np.int32), id="d")),
        Case("uint32", "ModelInfer", infer("UINT32", ROWS.astype(np.uint32), id="e")),
        Case("bool", "ModelInfer", infer("BOOL", ROWS > 3, id="f")),
        Case("raw-fp32", "ModelInfer", infer("FP32", ROWS.astype(np.float32), True, id="g"), "grpc-raw-out"),
        Case("raw-fp64", "ModelInfer", infer("FP64", ROWS, raw=True, id="h"), "grpc-raw-out"),
        Case("output-0", "ModelInfer", infer(id="i", outputs=[Output(name="output-0")])),
        Case("unknown-model", "ModelInfer", infer(model="nope")),
        # KServe's gRPC path ignores requested outputs (it answers output-0); we apply REST's rules.
        Case("unknown-output", "ModelInfer", infer(outputs=[Output(name="probs")]), "grpc-requested-outputs",
             kserve=Code.OK, ours=Code.INVALID_ARGUMENT),
        Case("predict-proba-output", "ModelInfer", infer(id="j", outputs=[Output(name="predict_proba")]),
             "grpc-requested-outputs", kserve=Code.OK, ours=Code.OK),
        Case("3-features", "ModelInfer", infer(array=ROWS[:, :3])),
        Case("reshape", "ModelInfer", _bad_shape()),
        Case("raw-count", "ModelInfer", _raw_count()),
        Case("raw-and-contents", "ModelInfer", _raw_and_contents()),
        Case("fp16-typed", "ModelInfer", _fp16_typed()),
        Case("proba-fp64", "ModelInfer", infer(id="k"), setup="proba"),
        Case("labels", "ModelInfer", infer(id="l"), "string-outputs", setup="labels",
             kserve=Code.INVALID_ARGUMENT, ours=Code.OK),
    ]  # fmt: skip


def _bad_shape() -> Any:
    request = infer()
    request.inputs[0].shape[:] = [3, 4]
    return request


def _raw_count() -> Any:
    request = infer("FP32", ROWS.astype(np.float32), raw=True)
    request.inputs.add(name="input-1", datatype="FP32", shape=[1])
    return request


def _raw_and_contents() -> Any:
    request = infer("FP64", ROWS, raw=True)
    request.inputs[0].contents.fp64_contents.append(1.0)
    return request


def _fp16_typed() -> Any:
    request = infer()
    request.inputs[0].datatype = "FP16"
    return request


KSERVE_ANSWERS = {"grpc-raw-out": "typed"}
SETUPS = {"iris": ("iris", {}), "proba": ("iris", {"PREDICT_PROBA": "true"}), "labels": ("iris-labels", {})}
CASES = cases()


def test_every_difference_is_documented() -> None:
    text = README.read_text()
    section = text[text.index("## Differences from KServe") :]
    for key in {c.difference for c in CASES if c.difference}:
        assert f"`{key}`" in section, f"difference {key} missing from the table in docs/protocols.md"


@pytest.fixture(scope="module")
def stubs(
    model_root: Path,
    kcr_factory: Callable[..., ServerProcess],
    kserve_factory: Callable[..., ServerProcess],
) -> Iterator[dict[str, tuple[Any, Any]]]:
    channels, pairs = [], {}
    for setup, (model, env) in SETUPS.items():
        ours = kcr_factory(
            "serve", "sklearn", "--model-dir", str(model_root / model), "--model-name", "iris",
            env=env, grpc=True,
        )  # fmt: skip
        theirs = kserve_factory(model_root / model, "iris", env=env, grpc=True)
        a, b = grpc.insecure_channel(theirs.grpc_target), grpc.insecure_channel(ours.grpc_target)
        channels += [a, b]
        pairs[setup] = (pb_grpc.GRPCInferenceServiceStub(a), pb_grpc.GRPCInferenceServiceStub(b))
    yield pairs
    for channel in channels:
        channel.close()


def _call(stub: Any, case: Case) -> tuple[Code, Any]:
    try:
        return Code.OK, getattr(stub, case.method)(case.request, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()


def _tensors(response: Any) -> list[tuple[str, str, list[int], list[Any]]]:
    """Each output's (name, datatype, shape, values), whether it came raw or typed."""
    from server.kserve import codec

    out = []
    for i, o in enumerate(response.outputs):
        if i < len(response.raw_output_contents):
            array = codec.decode_tensor(
                o.name, o.datatype, list(o.shape), None, response.raw_output_contents[i]
            )
            values = array.reshape(-1).tolist()
        else:
            field = {"INT64": "int64_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}[
                o.datatype
            ]
            values = list(getattr(o.contents, field))
        out.append((o.name, o.datatype, list(o.shape), values))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_as_kserve(stubs: dict[str, tuple[Any, Any]], case: Case) -> None:
    kserve, ours = stubs[case.setup]
    (theirs_code, theirs), (our_code, mine) = _call(kserve, case), _call(ours, case)
    if case.difference in (None, "grpc-raw-out"):
        assert our_code == theirs_code, (theirs, mine)
        if our_code != Code.OK:
            return
        if case.method == "ModelInfer":
            assert (mine.id, mine.model_name) == (theirs.id, theirs.model_name)
            assert _tensors(mine) == _tensors(theirs)
            # KServe answers typed contents; we answer raw ones to raw requests, as Triton does.
            assert bool(mine.raw_output_contents) == (case.difference == "grpc-raw-out")
        else:
            assert mine == theirs
        return
    if case.kserve is not None:
        assert (theirs_code, our_code) == (case.kserve, case.ours), (theirs, mine)
        return
    assert our_code == theirs_code == Code.OK
    if case.difference == "metadata-from-estimator":
        assert (list(theirs.inputs), list(theirs.outputs)) == ([], [])
        assert [(t.name, t.datatype, list(t.shape)) for t in mine.inputs] == [("input-0", "FP64", [-1, 4])]
        assert [t.name for t in mine.outputs] == ["predict", "predict_proba", "decision_function"]
    elif case.difference == "server-name":
        assert (theirs.name, mine.name) == ("kserve", "kserve-custom-runtime")
        assert list(theirs.extensions) == list(mine.extensions) == ["model_repository_extension"]
