"""Every scikit-learn estimator, served with and without the deferred imports, must answer the same.

``runtimes.sklearn`` defers scipy.stats, scipy.integrate and parts of numpy (``DEFERRED_MODULES``)
and binds a few of their names as forwarders. That is only safe while nothing reads those names in
a way a forwarder cannot stand in for (``isinstance``, subclassing), and ``DEFERRED_AT_PREDICT`` is
only complete while it names every estimator whose predict/transform uses them; likewise
``PANDAS_AT_PREDICT`` for pandas, which scikit-learn is imported without. All of it depends on
scikit-learn's internals, so this sweep re-derives it from the installed version:

    python -m tests.integration.estimator_sweep fit DIR     # plain sklearn: fit, pickle, expected outputs
    python -m tests.integration.estimator_sweep serve DIR   # kcr's load path, deferral on: JSON report
    python -m tests.integration.estimator_sweep first DIR   # the same, each model loaded first

Run them in separate fresh interpreters (deferral is process-wide). ``serve`` takes the models in
the order ``fit`` wrote them; models that need the deferred modules or pandas go last, so that
every other model is loaded and called while none of them has run. ``first`` loads each model in
its own process forked before any model was loaded: scikit-learn's subpackages import lazily
(``lazy_exports``), so each pickle imports them in its own order, which must work for all.
"""

from __future__ import annotations

import asyncio
import json
import os
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


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        return is_classifier(estimator)
    except AttributeError:  # a meta-estimator whose default sub-estimator is None has no tags
        return False


def fit(out: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.base import clone
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.utils import all_estimators

    from runtimes.sklearn import METHODS
    from runtimes.sklearn_imports import DEFERRED_MODULES, deferred_reason, pandas_reason

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
    # Every classifier again on a two-class target: binary models take other predict paths
    # (``expit`` rather than ``softmax`` in predict_proba, one decision column...).
    candidates += [(f"{name}-binary", clone(e)) for name, e in candidates if _is_classifier(e)]
    index: list[dict[str, Any]] = []
    skipped: list[str] = []
    for name, estimator in candidates:
        target = (y == 2).astype(int) if name.endswith("-binary") else y
        if not callable(getattr(estimator, "predict", None)):
            # kcr serves only models with a predict method (as KServe's sklearnserver): a transformer
            # is served as the first step of a pipeline, whose predict runs its transform.
            estimator = make_pipeline(estimator, LogisticRegression(max_iter=1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                estimator.fit(X, target)
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


class _Probe:
    """Loads one model of the sweep through ``SklearnModel`` (deferral on), asks it ``X_ASK`` and
    compares with what plain scikit-learn answered at fit time."""

    def __init__(self, out: Path) -> None:
        import numpy as np

        from runtimes.sklearn_imports import import_sklearn

        import_sklearn()  # as the first model's load would: the deferred modules are now in place
        self.out = out
        self.ask = np.array(X_ASK)

    @staticmethod
    def ran() -> set[str]:
        """The deferred modules whose code has run (imported and not deferred, or loaded since), and
        pandas once imported (kcr imports scikit-learn with it hidden)."""
        from runtimes.sklearn_imports import DEFERRED_MODULES
        from server.deferred_imports import is_deferred

        modules = [*DEFERRED_MODULES, "pandas"]
        return {name for name in modules if name in sys.modules and not is_deferred(name)}

    def row(self, entry: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from runtimes.sklearn import SklearnModel

        name = entry["name"]
        before = self.ran()
        model = SklearnModel(name, self.out / entry["file"])
        row: dict[str, Any] = {"ran_before": sorted(before)}
        try:
            asyncio.run(model.load())
        except Exception as exc:
            row["error"] = f"load: {type(exc).__name__}: {exc}"
            return row
        after_load = self.ran()
        expected = dict(np.load(self.out / f"{name}.npz", allow_pickle=False))
        mismatched: list[str] = []
        for method, want in expected.items():
            try:
                got = np.asarray(model.predict(self.ask, method))
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
            ran_by_predict=sorted(self.ran() - after_load),
            mismatched=mismatched,
            sklearn_modules=sum(1 for module in sys.modules if module.startswith("sklearn.")),
        )
        return row


def _entries(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "index.json").read_text())["models"]


def serve(out: Path) -> dict[str, Any]:
    """Every model, one after another, in this one process."""
    probe = _Probe(out)
    return {"models": {entry["name"]: probe.row(entry) for entry in _entries(out)}}


def first(out: Path) -> dict[str, Any]:
    """Every model as the first one a server loads: each in a process forked right after
    ``import_sklearn``, so its pickle meets scikit-learn's subpackages not yet imported (they bind
    their names lazily, ``lazy_exports``) and imports them in its own order."""
    probe = _Probe(out)
    report: dict[str, Any] = {"models": {}}
    for entry in _entries(out):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report and leave without running the parent's clean-up
            os.close(read)
            try:
                row = probe.row(entry)
            except BaseException as exc:
                row = {"error": f"{type(exc).__name__}: {exc}"}
            with os.fdopen(write, "w") as pipe:
                pipe.write(json.dumps(row))
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        report["models"][entry["name"]] = json.loads(text) if text else {"error": f"child status {status}"}
    return report


def main(argv: list[str]) -> None:
    mode, out = argv[0], Path(argv[1])
    if mode == "fit":
        fit(out)
    else:
        print(json.dumps({"serve": serve, "first": first}[mode](out)))


if __name__ == "__main__":
    main(sys.argv[1:])
