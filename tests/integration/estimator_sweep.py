"""Every scikit-learn estimator, served with and without the deferred imports, must answer the same.

``runtimes.sklearn`` defers scipy.stats, scipy.integrate and parts of numpy (``DEFERRED_MODULES``)
and binds a few of their names as forwarders. That is only safe while nothing reads those names in
a way a forwarder cannot stand in for (``isinstance``, subclassing), and ``DEFERRED_AT_PREDICT`` is
only complete while it names every estimator whose predict/transform uses them; likewise
``PANDAS_AT_PREDICT`` for pandas, which scikit-learn is imported without. All of it depends on
scikit-learn's internals, so this sweep re-derives it from the installed version:

    python -m tests.integration.estimator_sweep fit DIR     # plain sklearn: fit, pickle, expected outputs
    python -m tests.integration.estimator_sweep serve DIR   # kcr's load path, deferral on: JSON report

Run them in separate fresh interpreters (deferral is process-wide). ``serve`` takes the models in
the order ``fit`` wrote them; models that need the deferred modules or pandas go last, so that
every other model is loaded and called while none of them has run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

#: Inputs every model is asked about: a few iris rows (all four features are positive, which
#: PowerTransformer(method="box-cox") needs).
X_ASK = [
    [6.8, 2.8, 4.8, 1.4],
    [6.0, 3.4, 4.5, 1.6],
    [5.1, 3.5, 1.4, 0.2],
    [7.7, 3.0, 6.1, 2.3],
    [5.0, 2.0, 3.5, 1.0],
]


def _variants() -> list[tuple[str, Any]]:
    """Parameter choices that change which code predict runs, beyond each estimator's defaults."""
    from scipy.stats import loguniform
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PowerTransformer, QuantileTransformer, StandardScaler
    from sklearn.random_projection import GaussianRandomProjection, SparseRandomProjection

    return [
        ("GaussianRandomProjection-2", GaussianRandomProjection(n_components=2, random_state=0)),
        ("SparseRandomProjection-2", SparseRandomProjection(n_components=2, random_state=0)),
        ("KNeighborsClassifier-distance", KNeighborsClassifier(weights="distance")),
        ("KNeighborsRegressor-distance", KNeighborsRegressor(weights="distance")),
        ("QuantileTransformer-normal", QuantileTransformer(n_quantiles=50, output_distribution="normal")),
        ("PowerTransformer-box-cox", PowerTransformer(method="box-cox")),
        ("Pipeline-scaler-logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))),
        (
            "RandomizedSearchCV-loguniform",
            RandomizedSearchCV(
                LogisticRegression(max_iter=500), {"C": loguniform(1e-2, 1e2)}, n_iter=2, cv=3, random_state=0
            ),
        ),
    ]


def runs_deferred_code(entry: dict[str, Any]) -> bool:
    """Whether serving this ``index.json`` entry is expected to run a deferred module or pandas:
    kcr's own lists say so, or its pickle names a deferred module (loading it runs that module)."""
    return entry["needs_deferred"] or entry["pickle_names_deferred"] or entry["needs_pandas"]


def fit(out: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.utils import all_estimators

    from runtimes.sklearn import DEFERRED_MODULES, METHODS, deferred_reason, pandas_reason

    X, y = load_iris(return_X_y=True)
    ask = np.array(X_ASK)
    out.mkdir(parents=True, exist_ok=True)
    candidates: list[tuple[str, Any]] = []
    for name, cls in all_estimators(type_filter=["classifier", "regressor", "transformer", "cluster"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated classes
            try:
                candidates.append((name, cls()))
            except TypeError:  # meta-estimators that need an estimator argument
                continue
    candidates += _variants()
    index: list[dict[str, Any]] = []
    skipped: list[str] = []
    for name, estimator in candidates:
        if not callable(getattr(estimator, "predict", None)):
            # kcr serves only models with a predict method (as KServe's sklearnserver): a transformer
            # is served as the first step of a pipeline, whose predict runs its transform.
            estimator = make_pipeline(estimator, LogisticRegression(max_iter=1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                estimator.fit(X, y)
            except Exception:  # needs other data (text, positive labels, graphs...) or arguments
                skipped.append(name)
                continue
            expected: dict[str, Any] = {}
            for method in METHODS:
                if callable(getattr(estimator, method, None)):
                    try:
                        expected[method] = np.asarray(getattr(estimator, method)(ask))
                    except Exception:
                        continue
        if not expected:
            skipped.append(name)
            continue
        file = f"{name}.joblib"
        joblib.dump(estimator, out / file)
        np.savez(out / f"{name}.npz", **expected)
        pickled = (out / file).read_bytes()
        index.append(
            {
                "name": name,
                "file": file,
                "needs_deferred": deferred_reason(estimator) is not None,
                # a pickle that names a deferred module (scipy.stats distributions) runs it on load
                "pickle_names_deferred": any(module.encode() in pickled for module in DEFERRED_MODULES),
                "needs_pandas": pandas_reason(estimator) is not None,
            }
        )
    index.sort(key=runs_deferred_code)  # those last; see the module docstring
    (out / "index.json").write_text(json.dumps({"models": index, "skipped": skipped}, indent=1))


def serve(out: Path) -> dict[str, Any]:
    """Load each model through ``SklearnModel`` (deferral on), ask it ``X_ASK``, compare."""
    import numpy as np

    from runtimes.sklearn import DEFERRED_MODULES, SklearnModel, import_sklearn
    from server.deferred_imports import is_deferred

    import_sklearn()  # as the first model's load would: the deferred modules are now in place

    def ran() -> set[str]:
        """The deferred modules whose code has run (imported and not deferred, or loaded since), and
        pandas once imported (kcr imports scikit-learn with it hidden)."""
        modules = [*DEFERRED_MODULES, "pandas"]
        return {name for name in modules if name in sys.modules and not is_deferred(name)}

    ask = np.array(X_ASK)
    report: dict[str, Any] = {"models": {}}
    for entry in json.loads((out / "index.json").read_text())["models"]:
        name = entry["name"]
        before = ran()
        model = SklearnModel(name, out / entry["file"])
        row: dict[str, Any] = {"ran_before": sorted(before)}
        try:
            asyncio.run(model.load())
        except Exception as exc:
            row["error"] = f"load: {type(exc).__name__}: {exc}"
            report["models"][name] = row
            continue
        after_load = ran()
        expected = dict(np.load(out / f"{name}.npz", allow_pickle=False))
        mismatched: list[str] = []
        for method, want in expected.items():
            try:
                got = np.asarray(model.predict(ask, method))
            except Exception as exc:
                mismatched.append(f"{method}: {type(exc).__name__}: {exc}")
                continue
            same = got.shape == want.shape and (
                np.array_equal(got, want)
                if got.dtype.kind not in "fc"
                else np.allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
            )
            if not same:
                mismatched.append(f"{method}: differs")
        row.update(
            ran_by_load=sorted(after_load - before),
            ran_by_predict=sorted(ran() - after_load),
            mismatched=mismatched,
        )
        report["models"][name] = row
    return report


def main(argv: list[str]) -> None:
    mode, out = argv[0], Path(argv[1])
    if mode == "fit":
        fit(out)
    else:
        print(json.dumps(serve(out)))


if __name__ == "__main__":
    main(sys.argv[1:])
