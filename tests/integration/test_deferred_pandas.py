"""pandas stays out of a sklearn server whose model does not need it, and comes in when one does.

The load checks run the server's own load path (``server.cli.parse`` + ``build_models``) in a fresh
interpreter, since this test process has pandas imported already. The HTTP test reads the real
server's ``/proc/<pid>/maps``: pandas' compiled extensions appear there once it is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from runtimes.deferred_imports import hidden
from runtimes.sklearn import pandas_reason
from tests.procs import ROOT, ServerProcess

X = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]])
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

_LOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from server.cli import build_models, parse

    settings, options, runtime = parse(
        ["serve", "sklearn", "--model-dir", sys.argv[1], "--model-name", "m"], {}
    )
    models, _ = build_models(settings, options, runtime)
    report = {"sklearn": "sklearn" in sys.modules, "after_load": "pandas" in sys.modules}
    if sys.argv[2] == "numeric":
        x = np.array(json.loads(sys.argv[3]))
        for output in models[0].outputs:
            models[0].predict(x, output)
        report["after_predict"] = "pandas" in sys.modules
    print(json.dumps(report))
    """
)


def _load_in_fresh_process(model_dir: Path, kind: str, env: dict[str, str] | None = None) -> dict[str, bool]:
    result = subprocess.run(
        [sys.executable, "-c", _LOAD, str(model_dir), kind, json.dumps(X.tolist())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "KCR_DEFER_PANDAS"}, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["iris", "iris-rf"])
def test_numeric_model_loads_and_predicts_without_pandas(model_root: Path, name: str) -> None:
    report = _load_in_fresh_process(model_root / name, "numeric")
    assert report == {"sklearn": True, "after_load": False, "after_predict": False}


def test_dataframe_pipeline_gets_pandas_at_load(model_root: Path) -> None:
    # Pipeline(ColumnTransformer(...), LogisticRegression) fitted on a DataFrame.
    report = _load_in_fresh_process(model_root / "iris-pipeline", "frame")
    assert report == {"sklearn": True, "after_load": True}


def test_defer_pandas_can_be_turned_off(model_root: Path) -> None:
    # Also shows the deferral is what keeps pandas out: plain scikit-learn imports it.
    report = _load_in_fresh_process(model_root / "iris", "numeric", env={"KCR_DEFER_PANDAS": "false"})
    assert report == {"sklearn": True, "after_load": True, "after_predict": True}


def _pandas_mapped(server: ServerProcess) -> bool:
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    return "/pandas/" in maps


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/<pid>/maps")
def test_numeric_model_serves_dataframe_requests(
    kcr_factory: Callable[..., ServerProcess], model_root: Path
) -> None:
    model = joblib.load(model_root / "iris" / "model.joblib")
    expected = model.predict(X).tolist()
    server = kcr_factory("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris")
    assert not _pandas_mapped(server)

    tensor = {"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.ravel().tolist()}
    response = httpx.post(f"{server.url}/v2/models/iris/infer", json={"inputs": [tensor]})
    assert response.status_code == 200 and response.json()["outputs"][0]["data"] == expected
    assert not _pandas_mapped(server)

    columns = [
        {"name": name, "shape": [len(X)], "datatype": "FP64", "data": X[:, i].tolist()}
        for i, name in enumerate(FEATURES)
    ]
    response = httpx.post(
        f"{server.url}/v2/models/iris/infer",
        json={"parameters": {"content_type": "pd"}, "inputs": columns},
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == expected
    assert _pandas_mapped(server)

    records = [dict(zip(FEATURES, row, strict=True)) for row in X.tolist()]
    response = httpx.post(f"{server.url}/v1/models/iris:predict", json={"instances": records})
    assert response.status_code == 200 and response.json() == {"predictions": expected}


def test_pandas_reason() -> None:
    x, y = load_iris(return_X_y=True, as_frame=True)
    assert pandas_reason(LogisticRegression(max_iter=500).fit(x.to_numpy(), y)) is None
    assert pandas_reason(make_pipeline(StandardScaler(), LogisticRegression()).fit(x.to_numpy(), y)) is None
    assert "feature_names_in_" in (pandas_reason(LogisticRegression(max_iter=500).fit(x, y)) or "")
    from sklearn.impute import SimpleImputer

    imputed = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(x.to_numpy(), y)
    assert pandas_reason(imputed) == "it contains a SimpleImputer"
    scaled = StandardScaler().set_output(transform="pandas").fit(x.to_numpy())
    assert "set_output" in (pandas_reason(scaled) or "")


def test_hidden_is_per_thread_and_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kcr_hidden_probe").mkdir()
    (tmp_path / "kcr_hidden_probe" / "__init__.py").write_text("")
    (tmp_path / "kcr_hidden_probe" / "sub.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    other: list[bool] = []

    def import_elsewhere() -> None:
        import kcr_hidden_probe

        other.append(kcr_hidden_probe is not None)

    try:
        with hidden("kcr_hidden_probe") as finder:
            with pytest.raises(ModuleNotFoundError):
                import kcr_hidden_probe.sub
            assert "kcr_hidden_probe" not in sys.modules
            thread = threading.Thread(target=import_elsewhere)
            thread.start()
            thread.join()
        assert other == [True]
        assert finder is not None and finder.refused == ["kcr_hidden_probe"]
        assert finder not in sys.meta_path
        import kcr_hidden_probe.sub  # noqa: F401

        with hidden("kcr_hidden_probe") as nothing:  # already imported: nothing to hide
            assert nothing is None
    finally:
        sys.modules.pop("kcr_hidden_probe.sub", None)
        sys.modules.pop("kcr_hidden_probe", None)
