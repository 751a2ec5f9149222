"""The Open Inference Protocol over gRPC against a real kcr process: the kserve SDK's
InferenceGRPCClient, and raw stubs for what it does not expose (status codes, metadata, health,
limits, auth, metrics, the repository extension, SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import joblib
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kserve import InferenceGRPCClient, InferInput, InferRequest

from server.kserve import grpc_predict_v2_pb2 as pb
from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.procs import ServerProcess, start_kcr

ROWS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]])
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def stub(iris_server: ServerProcess) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(iris_server.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _infer(model: str, array: np.ndarray, datatype: str = "FP64", raw: bool = False, **kw: object):  # type: ignore[no-untyped-def]
    request = pb.ModelInferRequest(model_name=model, **kw)
    tensor = request.inputs.add(name="input-0", datatype=datatype, shape=array.shape)
    if raw:
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    else:
        tensor.contents.fp64_contents.extend(array.reshape(-1).tolist())
    return request


def _code(call: Callable[[], object]) -> tuple[Code, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_kserve_grpc_client(iris_server: ServerProcess, model_root: Path) -> None:
    expected = joblib.load(model_root / "iris-rf" / "model.joblib").predict(ROWS).tolist()

    async def go() -> None:
        client = InferenceGRPCClient(iris_server.grpc_target)
        try:
            assert await client.is_server_ready()
            assert await client.is_model_ready("iris-rf")
            for binary in (False, True):
                tensor = InferInput("input-0", list(ROWS.shape), "FP32")
                tensor.set_data_from_numpy(ROWS.astype(np.float32), binary_data=binary)
                request = InferRequest(model_name="iris-rf", infer_inputs=[tensor], request_id="abc")
                response = await client.infer(request)
                assert response.id == "abc" and response.model_name == "iris-rf"
                assert response.outputs[0].name == "output-0"
                assert response.outputs[0].as_numpy().tolist() == expected
        finally:
            await client.close()

    asyncio.run(go())


def test_typed_and_raw_answers_match_sklearn(
    stub: pb_grpc.GRPCInferenceServiceStub, model_root: Path
) -> None:
    model = joblib.load(model_root / "iris" / "model.joblib")
    typed = stub.ModelInfer(_infer("iris", ROWS))
    assert list(typed.outputs[0].contents.int64_contents) == model.predict(ROWS).tolist()
    assert not typed.raw_output_contents  # typed in, typed out (as KServe)
    raw = stub.ModelInfer(
        _infer(
            "iris",
            ROWS,
            raw=True,
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="predict_proba")],
        )
    )
    (out,) = raw.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("predict_proba", "FP64", [3, 3])
    np.testing.assert_array_equal(
        np.frombuffer(raw.raw_output_contents[0]).reshape(3, 3), model.predict_proba(ROWS)
    )
    forced = _infer("iris", ROWS)
    forced.parameters["binary_data_output"].bool_param = True
    assert stub.ModelInfer(forced).raw_output_contents  # explicit choice wins


def test_labels_are_bytes(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    response = stub.ModelInfer(_infer("iris-labels", ROWS))
    assert response.outputs[0].datatype == "BYTES"
    assert list(response.outputs[0].contents.bytes_contents) == [b"versicolor", b"versicolor", b"setosa"]


def test_errors_map_to_grpc_codes(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert _code(lambda: stub.ModelInfer(_infer("nope", ROWS)))[0] == Code.NOT_FOUND
    assert _code(lambda: stub.ModelInfer(_infer("iris", ROWS[:, :3])))[0] == Code.INVALID_ARGUMENT
    code, details = _code(lambda: stub.ModelInfer(_infer("iris", ROWS, model_version="2")))
    assert (code, details) == (Code.UNIMPLEMENTED, "Model versioning not supported yet.")
    bad_output = _infer("iris", ROWS, outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="probs")])
    assert _code(lambda: stub.ModelInfer(bad_output)) == (
        Code.INVALID_ARGUMENT,
        "Unexpected inference output 'probs' for model 'iris'",
    )
    sequence = _infer("iris", ROWS)
    sequence.parameters["sequence_id"].int64_param = 7
    code, details = _code(lambda: stub.ModelInfer(sequence))
    assert code == Code.INVALID_ARGUMENT and "sequence_id" in details
    assert _code(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")))[0] == Code.NOT_FOUND
    assert _code(lambda: stub.ModelReady(pb.ModelReadyRequest(name="nope")))[0] == Code.NOT_FOUND


def test_request_id_and_metrics(stub: pb_grpc.GRPCInferenceServiceStub, iris_server: ServerProcess) -> None:
    _, call = stub.ModelInfer.with_call(_infer("iris", ROWS), metadata=(("x-request-id", "rid-42"),))
    assert ("x-request-id", "rid-42") in [(m.key, m.value) for m in call.trailing_metadata()]
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(_infer("nope", ROWS), metadata=(("x-request-id", "rid-43"),))
    assert ("x-request-id", "rid-43") in [(m.key, m.value) for m in err.value.trailing_metadata()]
    text = httpx.get(iris_server.url + "/metrics").text
    assert 'kcr_requests_total{code="200",model_name="iris",protocol="grpc"}' in text
    assert 'kcr_requests_total{code="404",model_name="nope",protocol="grpc"}' in text
    assert 'request_predict_seconds_count{model_name="iris"}' in text


def test_health_service(iris_server: ServerProcess) -> None:
    with grpc.insecure_channel(iris_server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        for service in ("", "inference.GRPCInferenceService", "liveness", "iris"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == serving
        assert _code(lambda: health.Check(health_pb2.HealthCheckRequest(service="nope")))[0] == Code.NOT_FOUND


def test_health_watch_is_bounded(iris_server: ServerProcess) -> None:
    """A watch holds one of the pool's threads: eight at a time, the ninth is refused, and inference
    goes on meanwhile."""
    with grpc.insecure_channel(iris_server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="iris")
        watches = [health.Watch(request) for _ in range(8)]
        try:
            assert all(next(w).status == health_pb2.HealthCheckResponse.SERVING for w in watches)
            ninth = health.Watch(request)
            with pytest.raises(grpc.RpcError) as err:
                next(ninth)
            assert err.value.code() == Code.RESOURCE_EXHAUSTED and "8 health watches" in err.value.details()
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ModelInfer(_infer("iris", ROWS), timeout=5).outputs[0].name == "output-0"
        finally:
            for w in watches:
                w.cancel()
        deadline = time.monotonic() + 5  # cancelled watches give their threads back
        while True:
            again = health.Watch(request)
            try:
                assert next(again).status == health_pb2.HealthCheckResponse.SERVING
                again.cancel()
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline, "cancelled watches kept their slots"
                time.sleep(0.2)


def test_concurrent_calls_are_batched(iris_server: ServerProcess, model_root: Path) -> None:
    """Calls in flight together reach the micro-batcher together (the reason for the thread-pool
    server), and each gets its own rows back."""
    rows = np.random.default_rng(7).uniform(0, 7, size=(256, 4))
    expected = joblib.load(model_root / "iris-rf" / "model.joblib").predict(rows).tolist()

    def batches() -> tuple[float, float]:
        text = httpx.get(iris_server.url + "/metrics").text

        def value(name: str) -> float:  # absent until the first batch
            parts = text.split(name + '{model_name="iris-rf"} ')
            return float(parts[1].split()[0]) if len(parts) > 1 else 0.0

        return value("kcr_batch_size_count"), value("kcr_batch_size_sum")

    async def go() -> list[int]:
        async with grpc.aio.insecure_channel(iris_server.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            calls = [stub.ModelInfer(_infer("iris-rf", row[None, :])) for row in rows]
            answers = await asyncio.gather(*calls)
        return [a.outputs[0].contents.int64_contents[0] for a in answers]

    before = batches()
    assert asyncio.run(go()) == expected
    count, total = (a - b for a, b in zip(batches(), before, strict=True))
    assert total == len(rows) and count < len(rows) / 2, (count, total)


def test_cluster_smoke_script(iris_server: ServerProcess) -> None:
    """k8s/scripts/grpc_smoke.py (what smoke.sh runs through the gateway) against a real process."""
    script = Path(__file__).resolve().parents[2] / "k8s" / "scripts" / "grpc_smoke.py"
    argv = [sys.executable, str(script), "--target", iris_server.grpc_target, "--timeout", "10",
            "--authority", "sklearn-iris-grpc.kcr-demo.example.com"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ModelInfer -> [1, 0]" in done.stdout, done.stdout + done.stderr


def test_server_metadata(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    meta = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "kserve-custom-runtime" and list(meta.extensions) == ["model_repository_extension"]
    assert stub.ServerLive(pb.ServerLiveRequest()).live and stub.ServerReady(pb.ServerReadyRequest()).ready


@pytest.fixture(scope="module")
def guarded(kcr_factory: Callable[..., ServerProcess], model_root: Path) -> ServerProcess:
    return kcr_factory("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris",
                       "--max-body-bytes", "20000", env={"KCR_API_KEYS": "k1,k2"}, grpc=True)  # fmt: skip


def test_api_keys_and_message_size(guarded: ServerProcess) -> None:
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest()).ready  # probes and metadata stay open
        assert stub.ModelMetadata(pb.ModelMetadataRequest(name="iris")).name == "iris"
        assert _code(lambda: stub.ModelInfer(_infer("iris", ROWS)))[0] == Code.UNAUTHENTICATED
        bad = (("authorization", "Bearer nope"),)
        assert _code(lambda: stub.ModelInfer(_infer("iris", ROWS), metadata=bad))[0] == Code.UNAUTHENTICATED
        key = (("authorization", "Bearer k2"),)
        assert stub.ModelInfer(_infer("iris", ROWS), metadata=key).outputs[0].name == "output-0"
        big = np.zeros((1000, 4))  # 32 kB of FP64: over --max-body-bytes
        assert (
            _code(lambda: stub.ModelInfer(_infer("iris", big, raw=True), metadata=key))[0]
            == Code.RESOURCE_EXHAUSTED
        )
        unload = pb.RepositoryModelUnloadRequest(model_name="iris")
        assert _code(lambda: stub.RepositoryModelUnload(unload))[0] == Code.UNAUTHENTICATED


def test_repository_extension(
    kcr_factory: Callable[..., ServerProcess], model_root: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "models"
    for name in ("iris", "iris-rf"):
        shutil.copytree(model_root / name, directory / name)
    server = kcr_factory("serve", "sklearn", "--model-dir", str(directory), grpc=True)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="iris"))
        assert (answer.model_name, answer.isUnloaded) == ("iris", True)
        assert _code(lambda: stub.ModelReady(pb.ModelReadyRequest(name="iris")))[0] == Code.NOT_FOUND
        assert _code(lambda: stub.ModelInfer(_infer("iris", ROWS)))[0] == Code.NOT_FOUND
        assert httpx.get(server.url + "/v2/models").json() == {"models": ["iris-rf"]}
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200  # iris-rf still serves
        assert 'kcr_model_ready{model_name="iris"} 0.0' in httpx.get(server.url + "/metrics").text
        # A new version dropped in place is what load reads.
        shutil.copy(model_root / "iris-labels" / "model.joblib", directory / "iris" / "model.joblib")
        answer = stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="iris"))
        assert (answer.model_name, answer.isLoaded) == ("iris", True)
        assert stub.ModelInfer(_infer("iris", ROWS)).outputs[0].datatype == "BYTES"
        assert (
            _code(lambda: stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="nope")))[0]
            == Code.NOT_FOUND
        )
    # REST, as KServe answers
    assert httpx.post(server.url + "/v2/repository/models/iris-rf/unload").json() == {
        "name": "iris-rf",
        "unload": True,
    }
    assert httpx.post(server.url + "/v2/repository/models/iris-rf/unload").status_code == 404
    assert httpx.get(server.url + "/v2/models/iris-rf/ready").status_code == 404
    (directory / "iris-rf" / "model.joblib").write_bytes(b"not a pickle")
    failed = httpx.post(server.url + "/v2/repository/models/iris-rf/load")
    assert failed.status_code == 503 and "iris-rf" in failed.json()["error"]
    shutil.copy(model_root / "iris-rf" / "model.joblib", directory / "iris-rf" / "model.joblib")
    assert httpx.post(server.url + "/v2/repository/models/iris-rf/load").json() == {
        "name": "iris-rf",
        "load": True,
    }
    assert httpx.get(server.url + "/v2/models/iris-rf/ready").status_code == 200


def test_sigterm_drains_grpc(model_root: Path) -> None:
    server = start_kcr("serve", "sklearn", "--model-dir", str(model_root / "iris-rf"), "--model-name", "rf",
                       "--graceful-timeout", "20", "--max-batch-size", "1", grpc=True)  # fmt: skip
    try:
        rows = np.tile(ROWS, (60_000, 1))  # a ~1 s forest pass
        result: dict[str, object] = {}
        with grpc.insecure_channel(
            server.grpc_target, options=[("grpc.max_send_message_length", -1)]
        ) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)

            def slow() -> None:
                try:
                    result["answer"] = stub.ModelInfer(_infer("rf", rows, raw=True), timeout=30)
                except grpc.RpcError as exc:
                    result["error"] = exc.code()

            thread = threading.Thread(target=slow)
            thread.start()
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            # Draining: new calls are refused at once (readiness is false), the one in flight goes on.
            assert _code(lambda: stub.ServerReady(pb.ServerReadyRequest(), timeout=5))[0] == Code.UNAVAILABLE
            thread.join(30)
        assert "error" not in result, result
        assert len(result["answer"].raw_output_contents[0]) == 8 * len(rows)  # type: ignore[attr-defined]
        assert server.proc.wait(30) == 0
    finally:
        server.stop()


def test_grpc_off_and_without_grpcio(model_root: Path, tmp_path: Path) -> None:
    from tests.uninstalled import uninstalled_env

    off = start_kcr("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--enable_grpc=false")
    try:
        with grpc.insecure_channel(off.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert _code(lambda: stub.ServerLive(pb.ServerLiveRequest(), timeout=2))[0] == Code.UNAVAILABLE
    finally:
        off.stop()
    env = uninstalled_env(tmp_path, "grpc", "grpc_health")
    rest_only = start_kcr("serve", "sklearn", "--model-dir", str(model_root / "iris"), env=env)
    try:
        assert (
            httpx.post(
                rest_only.url + "/v1/models/model:predict", json={"instances": ROWS.tolist()}
            ).status_code
            == 200
        )
    finally:
        rest_only.stop()
    argv = [
        sys.executable,
        "-m",
        "server",
        "serve",
        "sklearn",
        "--model-dir",
        str(model_root / "iris"),
        "--enable-grpc",
    ]
    required = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert required.returncode == 2 and "grpcio is not installed" in required.stderr
