"""scikit-learn runtime: joblib/pickle models from a KServe-style model directory.

Knows nothing about HTTP: it finds model files, loads them, and runs ``predict``/``predict_proba`` on
already-decoded arrays or DataFrames. Input the estimator rejects (sklearn raises ValueError/TypeError
for wrong feature counts, NaNs, unknown categories) becomes ``InvalidInput`` so clients get a 400.
What scikit-learn imports at start-up but a model may never use is deferred
(``runtimes.sklearn_imports``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from runtimes.sklearn_imports import (
    DEFERRED_MODULES,
    deferred_reason,
    import_sklearn,
    pandas_reason,
    warm_up,
)
from runtimes.sklearn_metadata import estimator_metadata
from server.deferred_imports import is_deferred, load_deferred
from server.errors import PANDAS_INSTALL, InferenceFailed, InvalidInput, ModelLoadError, ModelNotReady
from server.model import Kind, ModelMetadata
from server.settings import Settings

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")
#: Output names a v2 request may ask for, mapped to estimator methods (as MLServer's sklearn runtime).
METHODS = ("predict", "predict_proba", "decision_function", "transform")
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


def _read_pinned(path: Path, expected: str) -> io.BytesIO:
    """The file's bytes, if their SHA-256 is ``expected``: the model is unpickled from these very
    bytes, so a file swapped between the check and the load cannot run."""
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise ModelLoadError(f"Cannot read model file {path}: {exc.strerror}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ModelLoadError(f"Refusing {path}: SHA-256 is {actual}, expected {expected}")
    return io.BytesIO(data)


class SklearnModel:
    kind: ClassVar[Kind] = "predictive"
    load_before_serving: ClassVar[bool] = True

    def __init__(self, name: str, path: Path, predict_proba: bool = False, sha256: str | None = None) -> None:
        self.name = name
        self.path = path
        self._predict_proba = predict_proba
        self._sha256 = sha256
        self._estimator: Any = None
        #: (estimator, its metadata): computed on first ask, again after a reload.
        self._metadata: tuple[Any, ModelMetadata] | None = None
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
        source: Path | io.BytesIO = _read_pinned(path, self._sha256) if self._sha256 else path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # version skew warnings are logged below, once
                estimator = joblib.load(source)
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
            warm_up(estimator, METHODS)
        return estimator

    async def unload(self) -> None:
        self._estimator = None

    def metadata(self) -> ModelMetadata:
        estimator = self._estimator
        if estimator is None:
            return ModelMetadata()
        if self._metadata is None or self._metadata[0] is not estimator:
            self._metadata = (estimator, estimator_metadata(estimator, self.outputs, self.default_output))
        return self._metadata[1]

    def predict(self, x: Any, output: str) -> Any:
        estimator = self._estimator
        if estimator is None:  # unloaded (repository extension) after the request was admitted
            raise ModelNotReady(self.name)
        method = getattr(estimator, output, None)
        if output not in self.outputs or method is None:
            raise InvalidInput(f"Unexpected inference output '{output}' for model '{self.name}'")
        try:
            return method(x)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidInput(str(exc).strip() or type(exc).__name__) from None
        except Exception as exc:
            raise InferenceFailed(f"{type(exc).__name__} : {exc}") from None
