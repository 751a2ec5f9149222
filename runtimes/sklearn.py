"""scikit-learn runtime: joblib/pickle models from a KServe-style model directory.

Knows nothing about HTTP: it finds model files, loads them, and runs ``predict``/``predict_proba`` on
already-decoded arrays or DataFrames. Input the estimator rejects (sklearn raises ValueError/TypeError
for wrong feature counts, NaNs, unknown categories) becomes ``InvalidInput`` so clients get a 400.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from server.errors import InferenceFailed, InvalidInput, ModelLoadError
from server.runtime import Kind, ModelMetadata
from server.settings import Settings

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")
#: Output names a v2 request may ask for, mapped to estimator methods (as MLServer's sklearn runtime).
METHODS = ("predict", "predict_proba", "decision_function", "transform")


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
        except Exception as exc:
            raise ModelLoadError(
                f"Cannot load model file {path}: {type(exc).__name__}: {exc}".replace("\n", " ")
            ) from None
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(
                f"Model file {path} holds a {type(estimator).__module__}.{type(estimator).__name__}, "
                "which has no predict method"
            )
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
