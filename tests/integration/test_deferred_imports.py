"""pandas and the deferred modules (scipy.stats...) stay out of a sklearn server whose model does
not need them, and come in when one does.

The load checks run the server's own load path (``server.cli.parse`` + ``build_models``) in a fresh
interpreter, since this test process has imported them all already. The HTTP test reads the real
server's ``/proc/<pid>/maps``: pandas' and scipy.stats' compiled extensions appear there once they
are imported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PowerTransformer, QuantileTransformer, StandardScaler

from runtimes.sklearn_imports import DEFERRED_MODULES, deferred_reason, pandas_reason
from server.deferred_imports import hidden
from tests.integration.estimator_sweep import runs_deferred_code
from tests.procs import ROOT, ServerProcess

X = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]])
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

_LOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from server.deferred_imports import is_deferred
    from runtimes.sklearn_imports import DEFERRED_MODULES
    from server.cli import build_models, parse

    def deferred():
        return sorted(name for name in DEFERRED_MODULES if is_deferred(name))

    def ran():
        # imported and not deferred: the module's code ran (not imported at all: nothing ran)
        return sorted(name for name in DEFERRED_MODULES if name in sys.modules and not is_deferred(name))

    settings, options, runtime = parse(
        ["serve", "sklearn", "--model-dir", sys.argv[1], "--model-name", "m"], {}
    )
    models, _ = build_models(settings, options, runtime)
    report = {"sklearn": "sklearn" in sys.modules, "after_load": "pandas" in sys.modules}
    report["deferred_after_load"], report["ran_after_load"] = deferred(), ran()
    if sys.argv[2] == "numeric":
        x = np.array(json.loads(sys.argv[3]))
        outputs = [o for o in ("predict", "predict_proba") if o in models[0].outputs]
        report["predictions"] = {o: models[0].predict(x, o).tolist() for o in outputs}
        report["after_predict"] = "pandas" in sys.modules
        report["deferred_after_predict"], report["ran_after_predict"] = deferred(), ran()
    print(json.dumps(report))
    """
)

ALL_DEFERRED = sorted(DEFERRED_MODULES)


def _fresh_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without a ``KCR_DEFER_IMPORTS`` of the caller's, plus ``env``."""
    return {**{k: v for k, v in os.environ.items() if k != "KCR_DEFER_IMPORTS"}, **env}


def _load_in_fresh_process(model_dir: Path, kind: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _LOAD, str(model_dir), kind, json.dumps(X.tolist())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_fresh_env(env or {}),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _expected(model_dir: Path) -> dict[str, list[Any]]:
    model = joblib.load(model_dir / "model.joblib")
    return {"predict": model.predict(X).tolist(), "predict_proba": model.predict_proba(X).tolist()}


@pytest.mark.parametrize(
    ("name", "ran"),
    # A forest's compiled tree code cimports scipy.special: loading it runs that, as plain
    # scikit-learn would at start-up (see RUN_BY_SOME_LOADS).
    [("iris", []), ("iris-rf", ["scipy.special"])],
)
def test_numeric_model_loads_and_predicts_without_deferred_modules(
    model_root: Path, name: str, ran: list[str]
) -> None:
    report = _load_in_fresh_process(model_root / name, "numeric")
    assert report.pop("predictions") == _expected(model_root / name)
    # Deferred, or not imported at all: a forest's pickle does not reach scipy.optimize (see
    # test_a_pickle_imports_only_the_subpackage_modules_it_needs).
    deferred = report.pop("deferred_after_load")
    assert report.pop("deferred_after_predict") == deferred and {"scipy.stats", "numpy.f2py"} <= set(deferred)
    assert report == {
        "sklearn": True,
        "after_load": False,
        "after_predict": False,
        "ran_after_load": ran,
        "ran_after_predict": ran,
    }


def test_dataframe_pipeline_gets_pandas_at_load(model_root: Path) -> None:
    # Pipeline(ColumnTransformer(...), LogisticRegression) fitted on a DataFrame.
    report = _load_in_fresh_process(model_root / "iris-pipeline", "frame")
    assert report["after_load"] and report["ran_after_load"] == []


def test_deferral_can_be_turned_off(model_root: Path) -> None:
    # Also shows the deferral is what keeps them out: plain scikit-learn imports them.
    report = _load_in_fresh_process(model_root / "iris", "numeric", env={"KCR_DEFER_IMPORTS": "false"})
    assert report.pop("predictions") == _expected(model_root / "iris")
    assert report == {
        "sklearn": True,
        "after_load": True,
        "after_predict": True,
        "deferred_after_load": [],
        "deferred_after_predict": [],
        "ran_after_load": ALL_DEFERRED,
        "ran_after_predict": ALL_DEFERRED,
    }


def _fit(estimator: Any, tmp_path: Path, name: str) -> tuple[Path, dict[str, list[Any]]]:
    x, y = load_iris(return_X_y=True)
    estimator.fit(x, y)
    (tmp_path / name).mkdir()
    joblib.dump(estimator, tmp_path / name / "model.joblib")
    expected = {"predict": estimator.predict(X).tolist()}
    if hasattr(estimator, "predict_proba"):
        expected["predict_proba"] = estimator.predict_proba(X).tolist()
    return tmp_path / name, expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: KNeighborsClassifier(),
        lambda: make_pipeline(
            QuantileTransformer(n_quantiles=50, output_distribution="normal"), LogisticRegression()
        ),
        lambda: make_pipeline(PowerTransformer(), LogisticRegression()),
    ],
    ids=["knn", "quantile-normal", "power"],
)
def test_model_using_a_deferred_module_at_predict_gets_it_at_load(
    tmp_path: Path, make: Callable[[], Any]
) -> None:
    model_dir, expected = _fit(make(), tmp_path, "m")
    report = _load_in_fresh_process(model_dir, "numeric")
    assert report.pop("predictions") == expected
    assert report["deferred_after_load"] == [] and report["deferred_after_predict"] == []
    assert "scipy.stats" in report["ran_after_load"]
    assert report["ran_after_predict"] == report["ran_after_load"]  # all of it at load


def test_pickle_holding_scipy_stats_objects_loads(tmp_path: Path) -> None:
    # RandomizedSearchCV keeps its scipy.stats distributions: unpickling imports
    # scipy.stats._distn_infrastructure, a submodule of a deferred module, which runs scipy.stats first.
    search = RandomizedSearchCV(
        LogisticRegression(max_iter=500), {"C": loguniform(1e-2, 1e2)}, n_iter=3, cv=3, random_state=0
    )
    model_dir, expected = _fit(search, tmp_path, "search")
    report = _load_in_fresh_process(model_dir, "numeric")
    assert report.pop("predictions") == expected
    assert "scipy.stats" in report["ran_after_load"]


def _mapped(server: ServerProcess, package: str) -> bool:
    return f"/{package}/" in Path(f"/proc/{server.proc.pid}/maps").read_text()


def _pandas_mapped(server: ServerProcess) -> bool:
    return _mapped(server, "pandas")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/<pid>/maps")
def test_numeric_model_serves_dataframe_requests(
    kcr_factory: Callable[..., ServerProcess], model_root: Path
) -> None:
    model = joblib.load(model_root / "iris" / "model.joblib")
    expected = model.predict(X).tolist()
    server = kcr_factory("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris")
    assert not _pandas_mapped(server)
    assert not _mapped(server, "scipy/stats") and _mapped(server, "scipy/sparse")  # the probe works

    tensor = {"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.ravel().tolist()}
    response = httpx.post(f"{server.url}/v2/models/iris/infer", json={"inputs": [tensor]})
    assert response.status_code == 200 and response.json()["outputs"][0]["data"] == expected
    assert not _pandas_mapped(server) and not _mapped(server, "scipy/stats")

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


def test_deferred_reason() -> None:
    x, y = load_iris(return_X_y=True)
    assert deferred_reason(LogisticRegression(max_iter=500).fit(x, y)) is None
    assert deferred_reason(make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(x, y)) == (
        "it contains a KNeighborsClassifier"
    )


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


_FORWARDERS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from server.deferred_imports import is_deferred
    from runtimes.sklearn_imports import import_sklearn

    import_sklearn()
    report = {}

    # scipy.optimize (bound as a module) and sklearn.utils.optimize (_newton_cg and
    # _check_optimize_result bound as forwarders) are used by fitting only.
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    report["before_optimize"] = is_deferred("scipy.optimize") and is_deferred("sklearn.utils.optimize")
    xi, yi = load_iris(return_X_y=True)
    report["logreg"] = {
        solver: LogisticRegression(solver=solver, max_iter=1000).fit(xi, yi).coef_.round(4).tolist()
        for solver in ("lbfgs", "newton-cg")
    }

    import sklearn.metrics
    from sklearn._loss.link import MultinomialLogit

    before = is_deferred("scipy.stats")
    auc = sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])  # rankdata
    link = MultinomialLogit().link(np.array([[0.2, 0.3, 0.5]])).tolist()  # gmean
    report.update(before=before, after=is_deferred("scipy.stats"), auc=auc, link=link)

    from sklearn.linear_model import QuantileRegressor
    import scipy.optimize

    report["before_linprog"] = is_deferred("scipy.optimize._linprog")
    x, y = np.arange(8.0).reshape(-1, 1), np.array([0.0, 1, 1, 3, 4, 4, 6, 8])
    report["quantile"] = QuantileRegressor(alpha=0.0).fit(x, y).coef_.round(6).tolist()  # linprog
    report["shgo"] = round(float(scipy.optimize.shgo(lambda v: (v[0] - 1) ** 2, [(-3, 3)]).x[0]), 6)

    print(json.dumps(report))
    """
)


def test_names_bound_from_deferred_modules_work() -> None:
    # sklearn's own functions calling the forwarders it bound (``from scipy.stats import rankdata``,
    # ``from scipy.optimize import linprog``, ``from sklearn.utils.optimize import _newton_cg``),
    # scipy.optimize's own ``shgo``, and LogisticRegression fitting through the deferred
    # scipy.optimize, compared with this process, where they are plain imports.
    from sklearn._loss.link import MultinomialLogit
    from sklearn.linear_model import QuantileRegressor
    from sklearn.metrics import roc_auc_score

    result = subprocess.run(
        [sys.executable, "-c", _FORWARDERS], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    x, y = np.arange(8.0).reshape(-1, 1), np.array([0.0, 1, 1, 3, 4, 4, 6, 8])
    xi, yi = load_iris(return_X_y=True)
    assert report == {
        "before": True,
        "after": False,
        "auc": roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]),
        "link": MultinomialLogit().link(np.array([[0.2, 0.3, 0.5]])).tolist(),
        "before_linprog": True,
        "quantile": QuantileRegressor(alpha=0.0).fit(x, y).coef_.round(6).tolist(),
        "shgo": 1.0,
        "before_optimize": True,
        "logreg": {
            solver: LogisticRegression(solver=solver, max_iter=1000).fit(xi, yi).coef_.round(4).tolist()
            for solver in ("lbfgs", "newton-cg")
        },
    }


def _sweep(mode: str, directory: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.estimator_sweep", mode, str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=_fresh_env(env),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Every estimator fitted, asked and pickled with plain scikit-learn (fresh interpreter)."""
    directory = tmp_path_factory.mktemp("sweep")
    _sweep("fit", directory, {"KCR_DEFER_IMPORTS": "false"})
    return directory, json.loads((directory / "index.json").read_text())["models"]


def _served(mode: str, sweep: tuple[Path, list[dict[str, Any]]]) -> dict[str, Any]:
    directory, index = sweep
    report = json.loads(_sweep(mode, directory, {}).strip().splitlines()[-1])["models"]
    assert len(report) == len(index) >= 150  # scikit-learn 1.9.1: 179 (134 classes, 8 variants, 37 binary)
    # Same answers, with nothing a forwarder cannot stand in for on any predict path.
    assert {name: row for name, row in report.items() if row.get("error") or row["mismatched"]} == {}
    return report


def _plain(index: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in index if not runs_deferred_code(e)]


def test_every_sklearn_estimator_serves_the_same_with_its_modules_deferred(
    sweep: tuple[Path, list[dict[str, Any]]],
) -> None:
    # Loaded by kcr (deferral on) one after another in one fresh interpreter, as a multi-model
    # server does, and asked again; see estimator_sweep's docstring.
    report = _served("serve", sweep)
    index = sweep[1]
    needing = {e["name"] for e in index if e["needs_deferred"] or e["needs_pandas"]}
    assert {"KNeighborsClassifier", "QuantileTransformer-normal", "SimpleImputer"} <= needing
    assert {name: row["ran_by_predict"] for name, row in report.items() if row["ran_by_predict"]} == {}
    # The models that need scipy.stats or pandas come last; the first of them got them at load.
    first = next(e["name"] for e in index if runs_deferred_code(e))
    assert first in needing and {"scipy.stats", "pandas"} & set(report[first]["ran_by_load"])


#: Deferred modules that loading some models runs, as plain scikit-learn would at start-up: their
#: estimator modules import names from them for real (``from scipy.optimize import minimize``),
#: their compiled modules cimport them (trees: scipy.special; liblinear: scipy.linalg's BLAS), or
#: their predict uses them and ``warm_up`` runs it (a binary LogisticRegression's ``expit``). The
#: others (scipy.stats, numpy's f2py..., scikit-learn's cluster metrics) and pandas are run only by
#: the models listed in ``DEFERRED_AT_PREDICT``/``PANDAS_AT_PREDICT``, or whose pickle names them.
RUN_BY_SOME_LOADS = {
    "scipy.optimize",
    "scipy.special",
    "scipy.linalg",
    "scipy.sparse.linalg",
    "sklearn.svm._base",
}


def test_every_sklearn_estimator_serves_the_same_when_loaded_first(
    sweep: tuple[Path, list[dict[str, Any]]],
) -> None:
    # Each model as the first a server loads (a process forked after ``import_sklearn``): its pickle
    # imports scikit-learn's lazily bound subpackages in its own order, and that order must work.
    report = _served("first", sweep)
    index = sweep[1]
    # No model's predict runs a deferred module or imports pandas: the listed ones, and those whose
    # predict of a row of zeros reaches one, got them at load (``warm_up``).
    assert {name: row["ran_by_predict"] for name, row in report.items() if row["ran_by_predict"]} == {}
    plain = _plain(index)
    assert len(plain) >= 130  # scikit-learn 1.9.1: 164
    loaded = {name: report[name]["ran_by_load"] for name in plain if report[name]["ran_by_load"]}
    assert {name: ran for name, ran in loaded.items() if not set(ran) <= RUN_BY_SOME_LOADS} == {}
    # A multiclass LogisticRegression (what the cold-start benchmark serves) runs none of them; a
    # binary one runs scipy.special, for ``expit``, while loading.
    assert {"LogisticRegression", "LinearRegression", "HistGradientBoostingClassifier"} <= set(plain) - set(
        loaded
    )
    assert loaded["LogisticRegression-binary"] == ["scipy.special"]
    # Each loads only part of scikit-learn: half of them fewer than ~125 of its modules (scikit-learn
    # 1.9.1), where a plain ``import sklearn.linear_model`` alone brings in 196.
    assert statistics.median(row["sklearn_modules"] for row in report.values()) < 160


_SKLEARN_MODULES = textwrap.dedent(
    """
    import json, sys
    from server.cli import build_models, parse

    settings, options, runtime = parse(["serve", "sklearn", "--model-dir", sys.argv[1]], {})
    build_models(settings, options, runtime)
    print(json.dumps(sorted(name for name in sys.modules if name.startswith("sklearn."))))
    """
)


def _sklearn_modules(model_dir: Path, env: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _SKLEARN_MODULES, str(model_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_fresh_env(env),
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("name", "needed", "not_needed"),
    [
        ("iris", "sklearn.linear_model._logistic", "sklearn.linear_model._ridge"),
        ("iris-rf", "sklearn.ensemble._forest", "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"),
    ],
)
def test_a_pickle_imports_only_the_subpackage_modules_it_needs(
    model_root: Path, name: str, needed: str, not_needed: str
) -> None:
    lazy = _sklearn_modules(model_root / name, {})
    eager = _sklearn_modules(model_root / name, {"KCR_DEFER_IMPORTS": "false"})
    assert needed in lazy and not_needed not in lazy
    assert needed in eager and not_needed in eager  # what the subpackage's own __init__ imports
    assert len(lazy) < 0.8 * len(eager)


_REQUESTS = textwrap.dedent(
    """
    import json, sys
    from starlette.testclient import TestClient
    from server.app import create_app
    from server.cli import build_models, parse

    argv = ["serve", "sklearn", "--model-dir", sys.argv[1], "--model-name", "iris"]
    settings, options, runtime = parse(argv, {})
    models, load_times = build_models(settings, options, runtime)
    app = create_app(settings, models, load_times)
    report = {"after_create_app": "pydantic.v1" in sys.modules}
    with TestClient(app) as client:
        x = [[6.8, 2.8, 4.8, 1.4]]
        statuses = [
            client.get("/v2/health/ready").status_code,
            client.get("/v2/models/iris/ready").status_code,
            client.get("/v2/models/iris").status_code,
            client.post("/v1/models/iris:predict", json={"instances": x}).status_code,
            client.post("/v1/models/iris:predict", json={"instances": "x"}).status_code,
            client.post("/v2/models/iris/infer", json={"inputs": []}).status_code,
            client.get("/v1/models/nope").status_code,
        ]
    report.update(statuses=statuses, after_requests="pydantic.v1" in sys.modules)
    print(json.dumps(report))
    """
)


def test_pydantic_v1_stays_out_of_a_serving_process(model_root: Path) -> None:
    # FastAPI asks of every route's types whether they are pydantic v1 models, importing pydantic.v1
    # (~15 ms, ~1.5 MB) to ask; kcr resolves its routes before serving with pydantic.v1 hidden, so the
    # first requests (the readiness probe among them) do not import it either.
    model_dir = model_root / "iris"
    result = subprocess.run(
        [sys.executable, "-c", _REQUESTS, str(model_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_fresh_env({}),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "after_create_app": False,
        "statuses": [200, 200, 200, 200, 400, 400, 404],
        "after_requests": False,
    }


def test_warm_up_calls_what_answers_on_a_row_of_zeros() -> None:
    from runtimes.sklearn import METHODS
    from runtimes.sklearn_imports import warm_up

    x, y = load_iris(return_X_y=True, as_frame=True)
    numeric = LogisticRegression(max_iter=500).fit(x.to_numpy(), y)
    assert warm_up(numeric, METHODS) == ["predict", "predict_proba", "decision_function"]
    assert warm_up(LogisticRegression(max_iter=500).fit(x, y), METHODS) == []  # feature names: needs a frame
    # Box-Cox rejects zeros: its predict is skipped (DEFERRED_AT_PREDICT covers PowerTransformer).
    boxcox = make_pipeline(PowerTransformer(method="box-cox"), LogisticRegression(max_iter=500))
    assert warm_up(boxcox.fit(x.to_numpy(), y), METHODS) == []
