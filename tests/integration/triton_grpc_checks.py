"""tritonclient.grpc checks, run in a child interpreter (``tests.isolated``: tritonclient.grpc and
kserve cannot share a process). Each function takes the server's gRPC target and raises on failure."""

from __future__ import annotations

import asyncio

import numpy as np

ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]])
DATATYPES = {"BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
             "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
             "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}  # fmt: skip


def every_datatype(target: str, expected: dict[str, list[int]]) -> None:
    import tritonclient.grpc as tg

    client = tg.InferenceServerClient(target)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    for datatype, dtype in DATATYPES.items():
        data = (ROWS > 3) if datatype == "BOOL" else ROWS.astype(dtype)
        tensor = tg.InferInput("input-0", list(data.shape), datatype)
        tensor.set_data_from_numpy(data)
        result = client.infer("iris", [tensor], request_id=f"r-{datatype}")
        assert result.get_response().id == f"r-{datatype}"
        assert result.as_numpy("output-0").tolist() == expected[datatype], datatype


def outputs_classification_metadata(target: str, labels: list[str]) -> None:
    import tritonclient.grpc as tg

    client = tg.InferenceServerClient(target)
    meta = client.get_model_metadata("iris-labels", as_json=True)
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": ["-1", "4"]}]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba", "decision_function"]
    tensor = tg.InferInput("input-0", [3, 4], "FP64")
    tensor.set_data_from_numpy(ROWS)
    outputs = [tg.InferRequestedOutput("predict_proba"), tg.InferRequestedOutput("predict", class_count=2)]
    result = client.infer("iris-labels", [tensor], outputs=outputs)
    assert result.as_numpy("predict_proba").shape == (3, 3)
    top = result.as_numpy("predict")
    assert top.shape == (3, 2)
    score, index, label = top[0, 0].decode().split(":")
    assert label == labels[int(index)] == "versicolor" and 0.5 < float(score) <= 1
    compressed = client.infer("iris-labels", [tensor], compression_algorithm="gzip")
    assert compressed.as_numpy("output-0").tolist() == [b"versicolor", b"versicolor", b"setosa"]


def errors(target: str) -> None:
    import tritonclient.grpc as tg
    from tritonclient.utils import InferenceServerException

    client = tg.InferenceServerClient(target)
    tensor = tg.InferInput("input-0", [3, 4], "FP64")
    tensor.set_data_from_numpy(ROWS)

    def status(**kw: object) -> tuple[str, str]:
        try:
            client.infer(kw.pop("model", "iris"), [kw.pop("tensor", tensor)], **kw)  # type: ignore[arg-type]
        except InferenceServerException as exc:
            return str(exc.status()), exc.message()
        raise AssertionError("no error")

    assert status(model="nope")[0] == "StatusCode.NOT_FOUND"
    assert status(outputs=[tg.InferRequestedOutput("probs")])[0] == "StatusCode.INVALID_ARGUMENT"
    code, message = status(sequence_id=3)
    assert code == "StatusCode.INVALID_ARGUMENT" and "sequence batching" in message, message
    code, message = status(priority=2)
    assert code == "StatusCode.INVALID_ARGUMENT" and "priority" in message
    code, message = status(timeout=1000)
    assert code == "StatusCode.INVALID_ARGUMENT" and "timeout" in message
    three = tg.InferInput("input-0", [1, 3], "FP64")
    three.set_data_from_numpy(ROWS[:1, :3])
    assert status(tensor=three)[0] == "StatusCode.INVALID_ARGUMENT"
    text = tg.InferInput("input-0", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"a", b"b"], dtype=object))
    assert status(tensor=text)[0] == "StatusCode.INVALID_ARGUMENT"


def aio_infer(target: str, expected: list[int]) -> None:
    import tritonclient.grpc.aio as ta

    async def go() -> None:
        client = ta.InferenceServerClient(target)
        try:
            assert await client.is_server_ready()
            tensor = ta.InferInput("input-0", [3, 4], "FP32")
            tensor.set_data_from_numpy(ROWS.astype(np.float32))
            results = await asyncio.gather(*(client.infer("iris", [tensor]) for _ in range(50)))
            assert all(r.as_numpy("output-0").tolist() == expected for r in results)
        finally:
            await client.close()

    asyncio.run(go())


def load_unload(target: str) -> None:
    import tritonclient.grpc as tg
    from tritonclient.utils import InferenceServerException

    client = tg.InferenceServerClient(target)
    client.unload_model("iris-rf")  # Triton's request names the model in another field than KServe's
    assert not client.is_server_ready() or client.is_model_ready("iris")
    try:
        client.is_model_ready("iris-rf")
        raise AssertionError("unloaded model still known")
    except InferenceServerException as exc:
        assert str(exc.status()) == "StatusCode.NOT_FOUND"
    client.load_model("iris-rf")
    assert client.is_model_ready("iris-rf")
