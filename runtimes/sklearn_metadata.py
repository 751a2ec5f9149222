"""What a fitted scikit-learn estimator says about its inputs and outputs, in neutral terms.

``estimator_metadata`` reads the estimator's fitted attributes (``feature_names_in_``,
``n_features_in_``, ``classes_``, a ``ColumnTransformer``'s encoders, ``n_outputs_``) and answers with
``server.model.ModelMetadata``: datatype names and shapes, -1 for the batch. Nothing is guessed from
a request, and nothing here knows a protocol: the KServe wing turns it into REST or gRPC metadata.

- A model fitted on a DataFrame has one input per column (named after it, shape ``[-1]``, as v2
  ``content_type: pd`` requests send them); a column that a fitted encoder saw as strings is
  ``BYTES``, any other ``FP64``.
- Otherwise one input ``input-0`` of ``[-1, n_features_in_]`` (``FP64``), or ``BYTES`` ``[-1]``
  for a text pipeline (a vectorizer first), or nothing when the estimator does not say.
- One output per method, the default method first: ``predict`` with the label type of
  ``classes_`` (or ``FP64`` for regressors), ``predict_proba`` ``[-1, n_classes]``,
  ``decision_function`` ``[-1]`` (binary) or ``[-1, n_classes]``, ``transform`` ``[-1, n_out]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.model import ModelMetadata, TensorSpec

_KIND = {"b": "BOOL", "f": "FP64", "O": "BYTES", "U": "BYTES", "S": "BYTES"}
_INTS = {
    ("i", 1): "INT8",
    ("i", 2): "INT16",
    ("i", 4): "INT32",
    ("i", 8): "INT64",
    ("u", 1): "UINT8",
    ("u", 2): "UINT16",
    ("u", 4): "UINT32",
    ("u", 8): "UINT64",
    ("f", 2): "FP16",
    ("f", 4): "FP32",
}


def datatype_of(dtype: Any) -> str:
    """The Open Inference Protocol name of a numpy dtype (what the wing answers for such an array)."""
    return _INTS.get((dtype.kind, dtype.itemsize)) or _KIND.get(dtype.kind, "BYTES")


def _steps(estimator: Any) -> list[Any]:
    steps = getattr(estimator, "steps", None)
    return [step for _, step in steps] if steps else [estimator]


def _string_columns(estimator: Any) -> set[str]:
    """Columns a fitted encoder inside the estimator's ColumnTransformer saw as strings."""
    found: set[str] = set()
    for step in _steps(estimator):
        for _, transformer, columns in getattr(step, "transformers_", ()):
            if not isinstance(columns, (list, tuple)) or not all(isinstance(c, str) for c in columns):
                continue
            for part in _steps(transformer):
                categories = getattr(part, "categories_", None)
                if categories is None:
                    continue
                for column, values in zip(columns, categories, strict=False):
                    if getattr(values, "dtype", None) is not None and values.dtype.kind in "OUS":
                        found.add(column)
    return found


def _inputs(estimator: Any) -> list[TensorSpec]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        strings = _string_columns(estimator)
        return [TensorSpec(str(n), "BYTES" if str(n) in strings else "FP64", [-1]) for n in names]
    n_features = getattr(estimator, "n_features_in_", None)
    if isinstance(n_features, int):
        return [TensorSpec("input-0", "FP64", [-1, n_features])]
    first = _steps(estimator)[0]
    if hasattr(first, "vocabulary_") or hasattr(first, "build_analyzer"):
        return [TensorSpec("input-0", "BYTES", [-1])]
    return []


def _n_outputs(estimator: Any) -> int:
    final = _steps(estimator)[-1]
    n = getattr(final, "n_outputs_", None)
    if isinstance(n, int):
        return n
    coef = getattr(final, "coef_", None)
    if coef is not None and getattr(coef, "ndim", 1) == 2 and getattr(final, "classes_", None) is None:
        return int(coef.shape[0])
    return 1


def _transform_width(estimator: Any) -> int:
    try:
        return len(estimator.get_feature_names_out())
    except Exception:
        return -1


def _outputs(estimator: Any, methods: Sequence[str]) -> list[TensorSpec]:
    classes: Any = getattr(estimator, "classes_", None)
    single = classes is not None and getattr(classes, "ndim", 0) == 1
    n_classes = len(classes) if single else -1
    batch = [-1]
    specs = []
    for method in methods:
        if method == "predict":
            if single:
                specs.append(TensorSpec(method, datatype_of(classes.dtype), batch))
            else:
                n = len(classes) if classes is not None else _n_outputs(estimator)
                datatype = "FP64" if classes is None else datatype_of(classes[0].dtype)
                specs.append(TensorSpec(method, datatype, [-1, n] if n > 1 else batch))
        elif method == "predict_proba":
            specs.append(TensorSpec(method, "FP64", [-1, n_classes]))
        elif method == "decision_function":
            specs.append(TensorSpec(method, "FP64", batch if n_classes == 2 else [-1, n_classes]))
        elif method == "transform":
            specs.append(TensorSpec(method, "FP64", [-1, _transform_width(estimator)]))
    return specs


def estimator_metadata(estimator: Any, methods: Sequence[str], default: str) -> ModelMetadata:
    ordered = [default, *(m for m in methods if m != default)]
    classes: Any = getattr(estimator, "classes_", None)
    single = classes is not None and getattr(classes, "ndim", 0) == 1
    labels = tuple(str(c) for c in classes) if single else ()
    return ModelMetadata(inputs=_inputs(estimator), outputs=_outputs(estimator, ordered), labels=labels)
