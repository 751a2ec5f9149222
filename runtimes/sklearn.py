"""scikit-learn runtime: joblib/pickle models from a KServe-style model directory.

Knows nothing about HTTP: it finds model files, loads them, and runs ``predict``/``predict_proba`` on
already-decoded arrays or DataFrames. Input the estimator rejects (sklearn raises ValueError/TypeError
for wrong feature counts, NaNs, unknown categories) becomes ``InvalidInput`` so clients get a 400.

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
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar

from server.deferred_imports import defer, hidden, is_deferred, lazy_exports, load_deferred
from server.errors import PANDAS_INSTALL, InferenceFailed, InvalidInput, ModelLoadError
from server.runtime import Kind, ModelMetadata
from server.settings import Settings

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")
#: Output names a v2 request may ask for, mapped to estimator methods (as MLServer's sklearn runtime).
METHODS = ("predict", "predict_proba", "decision_function", "transform")
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

logger = logging.getLogger("kcr.sklearn")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--predict-proba",
        "--predict_proba",
        dest="predict_proba",
        nargs="?",
        const="true",
        default=None,
        help="default output is predict_proba (also env PREDICT_PROBA=true, as KServe's sklearnserver)",
    )
    group.add_argument(
        "--model-sha256",
        dest="model_sha256",
        default=None,
        help="refuse to load a (single) model file whose SHA-256 differs: pickles execute code",
    )


def build(settings: Settings, options: argparse.Namespace) -> list[SklearnModel]:
    proba_flag = getattr(options, "predict_proba", None) or os.environ.get("PREDICT_PROBA", "false")
    predict_proba = str(proba_flag).strip().lower() == "true"
    sha256 = getattr(options, "model_sha256", None)
    found = discover(Path(settings.model_dir), settings.model_name or "model")
    if sha256 and len(found) != 1:
        raise ModelLoadError(f"--model-sha256 pins one model file, but {len(found)} models were found")
    return [SklearnModel(name, path, predict_proba=predict_proba, sha256=sha256) for name, path in found]


def _model_files(directory: Path, root: Path) -> list[Path]:
    files = []
    for entry in sorted(directory.iterdir()):
        if entry.name.endswith(MODEL_EXTENSIONS) and entry.is_file():
            resolved = entry.resolve()
            if not resolved.is_relative_to(root):
                raise ModelLoadError(
                    f"Refusing model file {entry}: it links to {resolved}, outside the model directory {root}"
                )
            files.append(entry)
    return files


def discover(model_dir: Path, name: str) -> list[tuple[str, Path]]:
    """KServe's rule: one model file directly in the dir; else one model per subdirectory."""
    if not model_dir.exists():
        raise ModelLoadError(f"Model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise ModelLoadError(f"Model directory {model_dir} is not a directory")
    root = model_dir.resolve()
    try:
        top = _model_files(model_dir, root)
    except PermissionError as exc:
        raise ModelLoadError(f"Cannot read model directory {model_dir}: {exc.strerror}") from None
    if len(top) > 1:
        raise ModelLoadError(
            f"More than one model file found in {model_dir}: {', '.join(p.name for p in top)}; "
            "KServe allows exactly one (or one per subdirectory)"
        )
    if top:
        return [(name, top[0])]
    found: list[tuple[str, Path]] = []
    subdirs = [d for d in sorted(model_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    for sub in subdirs:
        if not sub.resolve().is_relative_to(root):
            raise ModelLoadError(f"Refusing {sub}: it links outside the model directory {root}")
        files = _model_files(sub, root)
        if len(files) > 1:
            raise ModelLoadError(
                f"More than one model file found in {sub}: {', '.join(p.name for p in files)}"
            )
        if files:
            found.append((sub.name, files[0]))
    if not found:
        listing = ", ".join(sorted(p.name for p in model_dir.iterdir())[:10]) or "nothing"
        raise ModelLoadError(
            f"No model file (*.joblib, *.pkl, *.pickle) in {model_dir} or its subdirectories "
            f"(found: {listing})"
        )
    return found


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


def warm_up(estimator: Any) -> list[str]:
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
    for method in METHODS:
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SklearnModel:
    kind: ClassVar[Kind] = "predictive"
    load_before_serving: ClassVar[bool] = True

    def __init__(self, name: str, path: Path, predict_proba: bool = False, sha256: str | None = None) -> None:
        self.name = name
        self.path = path
        self._predict_proba = predict_proba
        self._sha256 = sha256
        self._estimator: Any = None
        self.outputs: Sequence[str] = ("predict",)
        self.default_output = "predict"

    @property
    def ready(self) -> bool:
        return self._estimator is not None

    async def load(self) -> None:
        self._estimator = await asyncio.to_thread(self._load_sync)
        self.outputs = tuple(m for m in METHODS if callable(getattr(self._estimator, m, None)))
        if self._predict_proba and "predict_proba" in self.outputs:
            self.default_output = "predict_proba"

    def _load_sync(self) -> Any:
        import_sklearn()
        import joblib

        path = self.path
        if self._sha256:
            actual = _sha256(path)
            if actual != self._sha256.lower():
                raise ModelLoadError(f"Refusing {path}: SHA-256 is {actual}, expected {self._sha256}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # version skew warnings are logged below, once
                estimator = joblib.load(path)
        except PermissionError as exc:
            raise ModelLoadError(f"Cannot read model file {path}: {exc.strerror}") from None
        except ModuleNotFoundError as exc:
            hint = ""
            if exc.name == "pandas":
                hint = f"; {PANDAS_INSTALL}"
            raise ModelLoadError(f"Cannot load model file {path}: ModuleNotFoundError: {exc}{hint}") from None
        except Exception as exc:
            raise ModelLoadError(
                f"Cannot load model file {path}: {type(exc).__name__}: {exc}".replace("\n", " ")
            ) from None
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(
                f"Model file {path} holds a {type(estimator).__module__}.{type(estimator).__name__}, "
                "which has no predict method"
            )
        if any(is_deferred(name) for name in DEFERRED_MODULES):
            reason = deferred_reason(estimator)
            if reason:  # now rather than in the first request, as pandas below
                logger.debug("model %s needs %s: %s", self.name, ", ".join(DEFERRED_MODULES), reason)
                for name in DEFERRED_MODULES:
                    load_deferred(name)
        if "pandas" not in sys.modules:
            reason = pandas_reason(estimator)
            if reason:
                # Now, rather than in the first request (~0.2 s), and before the app's gc.freeze().
                logger.debug("model %s needs pandas: %s", self.name, reason)
                try:
                    import pandas  # noqa: F401
                except ModuleNotFoundError:
                    # Numeric requests still work (scikit-learn warns that X has no feature names);
                    # records and content_type "pd" are answered 501 (see server.codec).
                    logger.warning(
                        "model %s looks like it wants pandas (%s), which is not installed: "
                        "only numeric requests will work",
                        self.name,
                        reason,
                    )
        if any(is_deferred(name) for name in DEFERRED_MODULES):
            warm_up(estimator)
        return estimator

    async def unload(self) -> None:
        self._estimator = None

    def metadata(self) -> ModelMetadata:
        return ModelMetadata()

    def predict(self, x: Any, output: str) -> Any:
        method = getattr(self._estimator, output, None)
        if output not in self.outputs or method is None:
            raise InvalidInput(f"Unexpected inference output '{output}' for model '{self.name}'")
        try:
            return method(x)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidInput(str(exc).strip() or type(exc).__name__) from None
        except Exception as exc:
            raise InferenceFailed(f"{type(exc).__name__} : {exc}") from None
