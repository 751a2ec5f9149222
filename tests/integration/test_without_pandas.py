"""The numeric install (``kserve-custom-runtime[sklearn]``, no pandas): numeric requests are served as
usual, what needs a DataFrame gets a 501 that says how to add pandas, and a pickle that needs pandas
stops the server with a message saying the same.

The servers here are real processes in which ``import pandas`` fails exactly as when it is not
installed (``ModuleNotFoundError`` with ``name == "pandas"``), through a ``sitecustomize`` on
``PYTHONPATH``: pandas is installed in the test environment (kserve needs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest

from tests.procs import ServerProcess, start_kcr
from tests.uninstalled import missing_in_child, uninstalled_env


@pytest.fixture(scope="module")
def no_pandas_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return uninstalled_env(tmp_path_factory.mktemp("no-pandas"), "pandas")


def test_the_blocker_makes_pandas_look_uninstalled(no_pandas_env: dict[str, str]) -> None:
    assert missing_in_child(no_pandas_env, "pandas", "numpy") == ["pandas"]


def _serve(model_dir: Path, name: str, env: dict[str, str], **kw: object) -> ServerProcess:
    return start_kcr("serve", "sklearn", "--model-dir", str(model_dir), "--model-name", name, env=env, **kw)


@pytest.fixture(scope="module")
def numeric_server(model_root: Path, no_pandas_env: dict[str, str]) -> Iterator[ServerProcess]:
    server = _serve(model_root / "iris", "iris", no_pandas_env)
    yield server
    server.stop()


def test_numeric_requests_are_served_without_pandas(numeric_server: ServerProcess) -> None:
    url = numeric_server.url
    v1 = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
    assert v1.status_code == 200 and v1.json() == {"predictions": [1]}
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [6.8, 2.8, 4.8, 1.4]}
    v2 = httpx.post(f"{url}/v2/models/iris/infer", json={"inputs": [tensor]})
    assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == [1]


@pytest.mark.parametrize(
    ("path", "body", "needs"),
    [
        (
            "/v1/models/iris:predict",
            {"instances": [{"a": 6.8, "b": 2.8, "c": 4.8, "d": 1.4}]},
            "Records (instances that are JSON objects) need pandas",
        ),
        (
            "/v1/models/iris:predict",
            {"instances": [{"a": [6.8], "b": [2.8], "c": [4.8], "d": [1.4]}]},
            "Records (instances that are JSON objects) need pandas",
        ),
        (
            "/v2/models/iris/infer",
            {
                "parameters": {"content_type": "pd"},
                "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in "abcd"],
            },
            'Requests with parameters.content_type "pd" need pandas',
        ),
    ],
    ids=["v1 records", "v1 column records", "v2 content_type pd"],
)
def test_what_needs_a_dataframe_gets_a_501_naming_the_extra(
    numeric_server: ServerProcess, path: str, body: dict[str, object], needs: str
) -> None:
    r = httpx.post(numeric_server.url + path, json=body)
    assert r.status_code == 501
    message = r.json()["error"]
    assert message.startswith(needs)
    assert "pip install 'kserve-custom-runtime[sklearn,pandas]'" in message
    # The connection and the server are fine afterwards.
    ok = httpx.post(f"{numeric_server.url}/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]})
    assert ok.status_code == 200


def test_a_dataframe_pipeline_loads_and_says_it_wants_pandas(
    model_root: Path, no_pandas_env: dict[str, str]
) -> None:
    """The ColumnTransformer pipeline's pickle itself does not import pandas: it loads (with a
    warning in the log); records get the 501, and numeric rows the pipeline's own 400."""
    server = _serve(model_root / "iris-pipeline", "iris-pipeline", no_pandas_env)
    try:
        url = f"{server.url}/v1/models/iris-pipeline:predict"
        record = {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4}
        records = httpx.post(url, json={"instances": [{**record, "size": "large"}]})
        assert records.status_code == 501
        numeric = httpx.post(url, json={"instances": [[6.8, 2.8, 4.8, 1.4, "large"]]})
        assert numeric.status_code == 400
        assert "looks like it wants pandas" in server.log()
    finally:
        server.stop()


def test_a_pickle_that_needs_pandas_stops_the_server_with_the_extra_named(
    tmp_path: Path, no_pandas_env: dict[str, str]
) -> None:
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    model.training_stats = pd.Series([1.0, 2.0])  # any pandas object in the pickle
    (tmp_path / "m").mkdir()
    joblib.dump(model, tmp_path / "m" / "model.joblib")
    server = _serve(tmp_path / "m", "m", no_pandas_env, wait=False)
    try:
        assert server.proc.wait(60) == 1
    finally:
        server.stop()
    log = server.log()
    assert "No module named 'pandas'" in log
    assert "pip install 'kserve-custom-runtime[sklearn,pandas]'" in log
    assert "Traceback" not in log
