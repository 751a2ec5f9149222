"""Predictions over HTTP equal the estimator called directly, for every demo model and both protocols."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest

from tests.procs import ServerProcess

X = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]])
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _records() -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["size"] = np.where(frame["petal_length"] > 4.0, "large", "small")
    return frame


def _v2(url: str, name: str, body: dict) -> dict:
    response = httpx.post(f"{url}/v2/models/{name}/infer", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("name", ["iris", "iris-rf", "iris-labels"])
def test_array_models(iris_server: ServerProcess, model_root: Path, name: str) -> None:
    model = joblib.load(model_root / name / "model.joblib")
    expected = model.predict(X).tolist()
    proba = model.predict_proba(X)

    v1 = httpx.post(f"{iris_server.url}/v1/models/{name}:predict", json={"instances": X.tolist()})
    assert v1.status_code == 200 and v1.json() == {"predictions": expected}

    tensor = {"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.ravel().tolist()}
    out = _v2(iris_server.url, name, {"inputs": [tensor]})["outputs"]
    assert out[0]["name"] == "output-0" and out[0]["data"] == expected

    both = _v2(
        iris_server.url,
        name,
        {"inputs": [tensor], "outputs": [{"name": "predict"}, {"name": "predict_proba"}]},
    )["outputs"]
    assert [o["name"] for o in both] == ["predict", "predict_proba"]
    assert both[0]["data"] == expected
    assert both[1]["shape"] == list(proba.shape) and both[1]["datatype"] == "FP64"
    assert np.array(both[1]["data"]).reshape(proba.shape).tolist() == proba.tolist()


def test_pipeline_with_records(iris_server: ServerProcess, model_root: Path) -> None:
    model = joblib.load(model_root / "iris-pipeline" / "model.joblib")
    frame = _records()
    expected = model.predict(frame).tolist()
    records = frame.to_dict(orient="records")
    v1 = httpx.post(f"{iris_server.url}/v1/models/iris-pipeline:predict", json={"instances": records})
    assert v1.status_code == 200 and v1.json() == {"predictions": expected}

    inputs = [
        {
            "name": col,
            "shape": [len(frame)],
            "datatype": "BYTES" if col == "size" else "FP64",
            "data": frame[col].tolist(),
        }
        for col in frame.columns
    ]
    out = _v2(iris_server.url, "iris-pipeline", {"parameters": {"content_type": "pd"}, "inputs": inputs})
    assert out["outputs"][0]["data"] == expected


def test_predict_proba_env(kcr_factory, model_root: Path) -> None:  # type: ignore[no-untyped-def]
    model = joblib.load(model_root / "iris" / "model.joblib")
    server = kcr_factory(
        "serve",
        "sklearn",
        "--model-dir",
        str(model_root / "iris"),
        "--model_name",
        "iris",
        env={"PREDICT_PROBA": "TRUE"},
    )
    response = httpx.post(f"{server.url}/v1/models/iris:predict", json={"instances": X.tolist()})
    assert response.json() == {"predictions": model.predict_proba(X).tolist()}
