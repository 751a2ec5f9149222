"""What the scikit-learn runtime defers, and the checks that keep a model from needing it late.

What scikit-learn imports at start-up but a model may never use is not imported until it is used
(see ``server.deferred_imports``), which takes ~0.45 s off a LogisticRegression server's cold
start (1.1 -> 0.66 s) and ~60 MB off its RSS (173 -> 110 MB):

- pandas: scikit-learn is imported with pandas hidden; after unpickling, a model trained on a
  DataFrame or holding a step that uses pandas at predict time gets it during load. A plain numeric
  model serves without pandas until a request needs a DataFrame (v1 records, v2 ``content_type:
  pd``): the codec imports it then.
- ``DEFERRED_MODULES`` (scipy.stats, scipy.special, scipy.linalg...): deferred for the whole
  process, they run on first use; a model holding a step that uses one at predict time gets them
  during load (``DEFERRED_AT_PREDICT``, and ``warm_up``: each output called once on a row of zeros).
- scikit-learn's subpackages (``sklearn.linear_model``, ``sklearn.ensemble``...) bind the names
  they re-export when first read: unpickling a LogisticRegression imports ``_logistic`` and what
  it needs, not every linear model, model selection and metric (``lazy_exports``).

``KCR_DEFER_IMPORTS=false`` turns all of it off (and the warm-up).

The lists below are verified on ``VERIFIED_ON`` (by ``tests/integration/estimator_sweep.py``, in
the test venv and inside the built sklearn image); another scikit-learn or scipy may import other
names at start-up. The generic mechanism is ``server.deferred_imports``.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

from server.deferred_imports import defer, hidden
from server.lazy_exports import lazy_exports

#: The versions these lists were derived and swept on (``make lock`` pins the image to them).
VERIFIED_ON = {"scikit-learn": "1.9.1", "scipy": "1.17.1", "numpy": "2.4.6", "pandas": "2.3.3"}
#: ``false`` (or 0/no/off): import scikit-learn as usual, which imports pandas and scipy.stats at
#: start-up.
DEFER_IMPORTS_ENV = "KCR_DEFER_IMPORTS"
#: Modules imported at start-up by scikit-learn 1.9 (scipy.stats, scipy.integrate), by
#: ``scipy.optimize``'s ``__init__`` (linprog and shgo, which pull in scipy.fft and
#: scipy.linalg.interpolative: ~15 ms, ~1 MB) or by the ``from numpy import *`` in scipy's vendored
#: array_api_compat (numpy's f2py, testing...), that serving a model rarely uses: each with the names
#: importers bind from it at import time (``from scipy.stats import gmean``...), all functions or
#: distribution objects that are only called, bound as forwarders while the module is deferred.
#: Anything else read from one runs it for real.
#:
#: Then what a LogisticRegression's pickle reaches but its predict never uses (~100 ms together):
#: scipy.optimize (bound as a module by the linear models, GLMs and ``sklearn.utils.optimize``,
#: called when fitting), scipy.linalg and scipy.sparse.linalg (``sklearn.utils.fixes``,
#: ``extmath``, ``linear_model._base``), scipy.special (~30 ms; ``sklearn._loss``, the scorers'
#: cluster metrics, whose compiled module cimports it, so those are deferred too) and liblinear's
#: ``sklearn.svm._base``. Estimators that import other names from these, or whose compiled code
#: cimports them (trees: scipy.special; SVMs: scipy.linalg's BLAS), run them while their pickle
#: loads, as plain scikit-learn would at start-up; a model whose predict uses one gets it from
#: ``warm_up`` while loading.
DEFERRED_MODULES = {
    "scipy.stats": frozenset({"gmean", "rankdata", "spearmanr", "chi2"}),
    "scipy.integrate": frozenset({"trapezoid"}),
    "scipy.optimize": frozenset(),
    "sklearn.utils.optimize": frozenset({"_check_optimize_result", "_newton_cg"}),
    # every name scikit-learn 1.9 imports from it; all functions (ufuncs), only ever called
    "scipy.special": frozenset(
        {
            "betaln",
            "binom",
            "boxcox",
            "comb",
            "digamma",
            "erf",
            "expit",
            "gamma",
            "gammainc",
            "gammaln",
            "inv_boxcox",
            "kv",
            "logsumexp",
            "xlogy",
        }
    ),
    "scipy.linalg": frozenset(),
    "scipy.sparse.linalg": frozenset({"lsqr", "LinearOperator", "cg"}),
    "sklearn.svm._base": frozenset({"_fit_liblinear"}),
    "sklearn.metrics.cluster._supervised": frozenset(
        {
            "adjusted_mutual_info_score",
            "adjusted_rand_score",
            "completeness_score",
            "fowlkes_mallows_score",
            "homogeneity_score",
            "mutual_info_score",
            "normalized_mutual_info_score",
            "rand_score",
            "v_measure_score",
        }
    ),
    "scipy.optimize._linprog": frozenset({"linprog", "linprog_verbose_callback"}),
    "scipy.optimize._shgo": frozenset({"shgo"}),
    "numpy.f2py": frozenset(),
    "numpy.testing": frozenset(),
    "numpy.polynomial": frozenset(),
    "numpy.ctypeslib": frozenset(),
}
#: sklearn classes whose predict/transform uses a ``DEFERRED_MODULES`` module. A model holding one
#: gets them at load rather than in its first request. Derived, for the installed scikit-learn, by
#: ``tests/integration/estimator_sweep.py`` (every estimator ``all_estimators()`` lists, fitted
#: with defaults on iris, plus variants), which CI runs. GradientBoostingClassifier: a multiclass
#: model's predict calls ``scipy.stats.gmean`` (``MultinomialLogit.link``); a binary one does not,
#: but is listed too rather than told apart by private attributes.
DEFERRED_AT_PREDICT = frozenset(
    {"GradientBoostingClassifier", "KNeighborsClassifier", "PowerTransformer", "QuantileTransformer"}
)
#: sklearn classes whose predict/transform imports pandas on every call, even for numpy input
#: (measured with scikit-learn 1.9: ``sklearn.utils._mask._get_mask``, ColumnTransformer's output
#: stacking). A model holding one gets pandas at load. A class missing here only costs its model's
#: first request the pandas import.
PANDAS_AT_PREDICT = frozenset(
    {
        "ColumnTransformer",
        "SimpleImputer",
        "KNNImputer",
        "IterativeImputer",
        "MissingIndicator",
        "SplineTransformer",
    }
)

_import_lock = threading.Lock()
_sklearn_imported = False


def _defer_imports() -> bool:
    return os.environ.get(DEFER_IMPORTS_ENV, "true").strip().lower() not in ("false", "0", "no", "off")


def import_sklearn() -> None:
    """Import joblib and scikit-learn once per process, with pandas hidden unless already imported
    and the ``DEFERRED_MODULES`` deferred (for the whole process: they run when first used).

    Call before unpickling a model (a model's pickle imports sklearn modules), never around it: the
    unpickling itself must see pandas, a pickle may need it.
    """
    global _sklearn_imported
    with _import_lock:
        if _sklearn_imported:
            return
        deferring = _defer_imports()
        if deferring:
            for name, bound in DEFERRED_MODULES.items():
                defer(name, bound)
            lazy_exports("sklearn")
        with hidden("pandas") if deferring else nullcontext():
            import joblib  # noqa: F401

            try:
                import sklearn.base
                import sklearn.utils.fixes  # noqa: F401  (the module that probes for pandas)
            except ModuleNotFoundError as exc:
                if exc.name != "sklearn":
                    raise
                # No scikit-learn: a pickle of some other estimator may still load.
        _sklearn_imported = True


def _components(estimator: Any, limit: int = 10_000) -> Iterator[Any]:
    """The estimator and, recursively, every estimator in its ``get_params(deep=True)`` values
    (Pipeline steps, ColumnTransformer transformers, meta-estimators' sub-estimators)."""
    seen: set[int] = set()
    stack = [estimator]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, list | tuple):
            stack.extend(v for v in obj if isinstance(v, list | tuple) or hasattr(v, "get_params"))
            continue
        yield obj
        try:
            params = obj.get_params(deep=True) if callable(getattr(obj, "get_params", None)) else {}
        except Exception:
            continue
        stack.extend(v for v in params.values() if isinstance(v, list | tuple) or hasattr(v, "get_params"))


def _holds(estimator: Any, class_names: frozenset[str]) -> str | None:
    """The first of ``class_names`` (sklearn's own, or a subclass of one) found in ``estimator``."""
    for obj in _components(estimator):
        for base in type(obj).__mro__:
            if base.__name__ in class_names and base.__module__.startswith("sklearn."):
                return base.__name__
    return None


#: Widest model ``warm_up`` runs: a row of zeros this wide is still a negligible predict.
WARM_UP_MAX_FEATURES = 10_000


def warm_up(estimator: Any, methods: Sequence[str]) -> list[str]:
    """Call each output method once on a row of zeros, so that what a model's predict path reads
    from a deferred module runs now, before the server is ready, rather than in its first request:
    a binary LogisticRegression's ``predict_proba`` calls ``scipy.special.expit``, a multiclass
    one does not. Complements ``DEFERRED_AT_PREDICT``, which also covers models that reject zeros
    (PowerTransformer with Box-Cox). Only for numeric models (``n_features_in_``, no feature
    names); a method that fails on zeros is skipped. Returns the methods that answered."""
    import numpy as np

    width = getattr(estimator, "n_features_in_", None)
    if not isinstance(width, int | np.integer) or not 0 < width <= WARM_UP_MAX_FEATURES:
        return []
    if getattr(estimator, "feature_names_in_", None) is not None:
        return []
    row = np.zeros((1, int(width)))
    answered = []
    for method in methods:
        call = getattr(estimator, method, None)
        if not callable(call):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(row)
        except Exception:  # e.g. unknown category, Box-Cox of zero: the first request pays instead
            continue
        answered.append(method)
    return answered


def deferred_reason(estimator: Any) -> str | None:
    """Why serving ``estimator`` needs the deferred modules at predict time, or None."""
    name = _holds(estimator, DEFERRED_AT_PREDICT)
    return f"it contains a {name}" if name else None


def pandas_reason(estimator: Any) -> str | None:
    """Why serving ``estimator`` needs pandas, or None when it looks like a plain numeric model."""
    name = _holds(estimator, PANDAS_AT_PREDICT)
    if name:
        return f"it contains a {name}"
    for obj in _components(estimator):
        cls = type(obj)
        try:  # third-party estimators: any attribute may be a property that raises
            names = getattr(obj, "feature_names_in_", None)
            if names is not None and any(isinstance(n, str) for n in names):
                return f"{cls.__name__} was fitted on a DataFrame (feature_names_in_)"
            config = getattr(obj, "_sklearn_output_config", None)
            if isinstance(config, dict) and "pandas" in config.values():
                return f"{cls.__name__} has set_output(transform='pandas')"
        except Exception:
            continue
    return None
