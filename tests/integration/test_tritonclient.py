"""tritonclient against a real kcr process: grpc (sync and aio, in a child interpreter, see
``tests.isolated``) and http (here): every datatype, requested outputs, classification, metadata,
compression, errors, the repository extension."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import tritonclient.http as th

from tests.integration.triton_grpc_checks import DATATYPES, ROWS
from tests.isolated import Isolated
from tests.procs import ServerProcess

CHECKS = "tests.integration.triton_grpc_checks"


@pytest.fixture(scope="module")
def isolated() -> Iterator[Isolated]:
    child = Isolated()
    yield child
    child.close()


@pytest.fixture(scope="module")
def models(model_root: Path) -> dict[str, object]:
    return {name: joblib.load(model_root / name / "model.joblib") for name in ("iris", "iris-labels")}


def _expected(model: object) -> dict[str, list[int]]:
    out = {}
    for datatype, dtype in DATATYPES.items():
        data = (ROWS > 3) if datatype == "BOOL" else ROWS.astype(dtype)
        out[datatype] = model.predict(data).tolist()  # type: ignore[attr-defined]
    return out


def test_grpc_every_datatype(
    isolated: Isolated, iris_server: ServerProcess, models: dict[str, object]
) -> None:
    isolated.call(f"{CHECKS}:every_datatype", iris_server.grpc_target, _expected(models["iris"]))


def test_grpc_outputs_classification_metadata(isolated: Isolated, iris_server: ServerProcess) -> None:
    isolated.call(f"{CHECKS}:outputs_classification_metadata", iris_server.grpc_target,
                  ["setosa", "versicolor", "virginica"])  # fmt: skip


def test_grpc_errors(isolated: Isolated, iris_server: ServerProcess) -> None:
    isolated.call(f"{CHECKS}:errors", iris_server.grpc_target)


def test_grpc_aio(isolated: Isolated, iris_server: ServerProcess, models: dict[str, object]) -> None:
    isolated.call(f"{CHECKS}:aio_infer", iris_server.grpc_target, models["iris"].predict(ROWS).tolist())  # type: ignore[attr-defined]


@pytest.fixture()
def own_models(kcr_factory: Callable[..., ServerProcess], model_root: Path, tmp_path: Path) -> ServerProcess:
    for name in ("iris", "iris-rf"):
        shutil.copytree(model_root / name, tmp_path / name)
    return kcr_factory("serve", "sklearn", "--model-dir", str(tmp_path), grpc=True)


def test_grpc_load_unload(isolated: Isolated, own_models: ServerProcess) -> None:
    isolated.call(f"{CHECKS}:load_unload", own_models.grpc_target)


def test_http_load_unload(own_models: ServerProcess) -> None:
    client = th.InferenceServerClient(own_models.url.removeprefix("http://"))
    client.unload_model("iris")
    assert not client.is_model_ready("iris")  # 404 now, as KServe after an unload
    assert client.is_server_ready()  # iris-rf still serves
    client.load_model("iris")
    assert client.is_model_ready("iris") and client.is_server_ready()


def test_http_metadata_and_classification(iris_server: ServerProcess, models: dict[str, object]) -> None:
    client = th.InferenceServerClient(iris_server.url.removeprefix("http://"))
    meta = client.get_model_metadata("iris-pipeline")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]][-1] == ("size", "BYTES", [-1])
    inputs = [th.InferInput(i["name"], [2], i["datatype"]) for i in meta["inputs"]]  # built from metadata
    values = {"sepal_length": [6.8, 5.1], "sepal_width": [2.8, 3.5], "petal_length": [4.8, 1.4],
              "petal_width": [1.4, 0.2], "size": [b"large", b"small"]}  # fmt: skip
    for tensor in inputs:
        dtype = object if tensor.datatype() == "BYTES" else np.float64
        tensor.set_data_from_numpy(np.array(values[tensor.name()], dtype=dtype))
    result = client.infer("iris-pipeline", inputs, parameters={"content_type": "pd"})
    assert result.as_numpy("output-0").tolist() == [1, 0]
    tensor = th.InferInput("input-0", [3, 4], "FP64")
    tensor.set_data_from_numpy(ROWS)
    top = client.infer(
        "iris-labels", [tensor], outputs=[th.InferRequestedOutput("predict_proba", class_count=3)]
    )
    proba = models["iris-labels"].predict_proba(ROWS)  # type: ignore[attr-defined]
    first = top.as_numpy("predict_proba")[0]
    assert [x.decode().split(":")[2] for x in first] == ["versicolor", "virginica", "setosa"]
    assert float(first[0].decode().split(":")[0]) == pytest.approx(proba[0].max(), abs=1e-6)
    with pytest.raises(th.InferenceServerException, match=r"'class_count'.*'classification'"):
        client.infer("iris", [tensor], parameters={"class_count": 2})


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_http_compressed_requests(
    iris_server: ServerProcess, algorithm: str, models: dict[str, object]
) -> None:
    client = th.InferenceServerClient(iris_server.url.removeprefix("http://"))
    tensor = th.InferInput("input-0", [3, 4], "FP32")
    tensor.set_data_from_numpy(ROWS.astype(np.float32), binary_data=True)
    result = client.infer("iris", [tensor], request_compression_algorithm=algorithm)
    assert result.as_numpy("output-0").tolist() == models["iris"].predict(ROWS).tolist()  # type: ignore[attr-defined]


def test_compression_bomb_is_413(kcr_factory: Callable[..., ServerProcess], model_root: Path) -> None:
    import httpx

    server = kcr_factory(
        "serve", "sklearn", "--model-dir", str(model_root / "iris"), "--max-body-bytes", "100000"
    )
    bomb = gzip.compress(b"[" * 50_000_000)  # 50 MB decoded, 50 kB sent
    r = httpx.post(
        server.url + "/v1/models/model:predict", content=bomb, headers={"content-encoding": "gzip"}
    )
    assert r.status_code == 413 and "Decoded request body" in r.json()["error"]
    r = httpx.post(server.url + "/v1/models/model:predict", content=b"x", headers={"content-encoding": "br"})
    assert r.status_code == 415 and "'br'" in r.json()["error"]
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200
