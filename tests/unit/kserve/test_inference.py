"""The request rules REST and gRPC share: parameters honoured or refused by name, Triton's
classification format, and the gRPC codec's typed/raw decoding."""

from __future__ import annotations

import numpy as np
import pytest

from server.errors import InvalidInput
from server.kserve import inference


@pytest.mark.parametrize(
    "params",
    [{"sequence_id": 1}, {"sequence_start": True}, {"priority": 1}, {"timeout": 100},
     {"content_type": "np"}, {"binary_data": True}, {"classification": 2}, {"class_count": 1},
     {"binary_data_output": "yes"}],
)  # fmt: skip
def test_request_parameters_refused_by_name(params: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as err:
        inference.request_options(params)
    assert next(iter(params)) in err.value.message


def test_request_parameters_honoured() -> None:
    assert inference.request_options({"content_type": "pd", "binary_data_output": True}) == ("pd", True)
    assert inference.request_options({"my_model_option": 3}) == (None, None)  # the model's own


@pytest.mark.parametrize(
    "params", [{"shared_memory_region": "r"}, {"classification": 1}, {"content_type": "pd"}]
)
def test_input_parameters_refused(params: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        inference.check_input_parameters("x", params, "rest")


def test_grpc_binary_data_size_must_match_the_raw_contents() -> None:
    from server.kserve import grpc_codec
    from server.kserve import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(raw_input_contents=[np.zeros(4, np.float32).tobytes()])
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4]).parameters[
        "binary_data_size"
    ].int64_param = 16
    assert grpc_codec.decode_inputs(request, 100)[0][1].shape == (1, 4)  # as the kserve SDK sends it
    request.inputs[0].parameters["binary_data_size"].int64_param = 12
    with pytest.raises(InvalidInput, match="binary_data_size"):
        grpc_codec.decode_inputs(request, 100)


class _Model:
    name = "m"
    outputs = ("predict", "predict_proba")
    default_output = "predict"


def test_requested_outputs() -> None:
    wanted = inference.requested_outputs(
        _Model(), [("output-0", {"classification": 2}), ("predict_proba", None)]
    )  # type: ignore[arg-type]
    assert wanted == [
        inference.Wanted("output-0", "predict", None, 2),
        inference.Wanted("predict_proba", "predict_proba"),
    ]
    for bad in ({"classification": 0}, {"classification": True}, {"binary_data": 1}, {"priority": 2}):
        with pytest.raises(InvalidInput):
            inference.requested_outputs(_Model(), [("predict", bad)])  # type: ignore[arg-type]


def test_classification_is_tritons_format() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    out = inference.classify(scores, 2, ["a", "b", "c"])
    assert out.shape == (2, 2)
    assert out.tolist() == [[b"0.700000:1:b", b"0.200000:2:c"], [b"0.500000:0:a", b"0.250000:1:b"]]
    assert inference.classify(scores, 9, []).shape == (2, 3)  # k beyond the classes: all of them
    assert inference.classify(scores, 1, [])[0, 0] == b"0.700000:1"
    assert inference.classify(np.array([-1.0, 2.0]), 1, ["neg", "pos"]).tolist() == [
        [b"1.000000:0:neg"],
        [b"2.000000:1:pos"],
    ]


def test_grpc_typed_contents_follow_the_rest_rules() -> None:
    from server.kserve import grpc_codec
    from server.kserve import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="m")
    t = request.inputs.add(name="x", datatype="INT8", shape=[1, 2])
    t.contents.int_contents.extend([1, 300])
    with pytest.raises(InvalidInput, match="range of INT8"):
        grpc_codec.decode_inputs(request, 1000)
    t.contents.int_contents[1] = -2
    ((_, array),) = grpc_codec.decode_inputs(request, 1000)
    assert array.dtype == np.int8 and array.tolist() == [[1, -2]]
    t.datatype = "FP16"
    with pytest.raises(InvalidInput, match="raw_input_contents"):
        grpc_codec.decode_inputs(request, 1000)
    raw = pb.ModelInferRequest(model_name="m", raw_input_contents=[np.zeros(3, np.float16).tobytes()])
    raw.inputs.add(name="x", datatype="FP16", shape=[1, 3])
    assert grpc_codec.decode_inputs(raw, 1000)[0][1].dtype == np.float16
    raw.inputs.add(name="y", datatype="FP16", shape=[1, 3])
    with pytest.raises(InvalidInput, match="does not match"):
        grpc_codec.decode_inputs(raw, 1000)


def test_grpc_responses_are_raw_or_typed_never_both() -> None:
    from server.kserve import grpc_codec

    labels = np.array([1, 0])
    typed = grpc_codec.encode_response("m", "i", [("a", labels, False)])
    assert list(typed.outputs[0].contents.int64_contents) == [1, 0] and not typed.raw_output_contents
    mixed = grpc_codec.encode_response("m", "i", [("a", labels, False), ("b", labels, True)])
    assert len(mixed.raw_output_contents) == 2 and not mixed.outputs[0].HasField("contents")
    strings = grpc_codec.encode_response("m", "i", [("a", np.array(["x", "yz"], dtype=object), False)])
    assert list(strings.outputs[0].contents.bytes_contents) == [b"x", b"yz"]


def test_triton_parameter_types_are_read() -> None:
    import struct

    from server.kserve import grpc_codec
    from server.kserve import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest()
    request.parameters["d"].MergeFromString(b"\x21" + struct.pack("<d", 2.5))  # Triton's double_param
    request.parameters["u"].MergeFromString(b"\x28\x07")  # Triton's uint64_param
    request.parameters["s"].string_param = "x"
    assert grpc_codec.parameters(request.parameters) == {"d": 2.5, "u": 7, "s": "x"}
