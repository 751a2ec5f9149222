"""KServe's own model server doing what KServe's sklearnserver does: the oracle for conformance tests
and the baseline for benchmarks. Mirrors ``python/sklearnserver/sklearnserver/model.py`` (load the one
model file in ``--model_dir`` with joblib; ``get_predict_input`` → predict/predict_proba →
``get_predict_response``; every exception → ``InferenceError``) on ``kserve==0.21.0``.

Run: ``python -m tests.kserve_reference.sklearn_server --model_dir DIR --model_name iris --http_port P``
"""

from __future__ import annotations

import argparse
import os
import pathlib

import joblib
import kserve
from kserve.errors import InferenceError, ModelMissingError
from kserve.utils.utils import get_predict_input, get_predict_response

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")


class SKLearnModel(kserve.Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.ready = False

    def load(self) -> bool:
        path = pathlib.Path(self.model_dir)
        files = [path / f for f in os.listdir(path) if (path / f).is_file() and f.endswith(MODEL_EXTENSIONS)]
        if not files:
            raise ModelMissingError(path)
        if len(files) > 1:
            raise RuntimeError(
                f"More than one model file is detected, Only one is allowed within model_dir: {files}"
            )
        self._model = joblib.load(files[0])
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):  # type: ignore[no-untyped-def]
        try:
            instances = get_predict_input(payload)
            if os.environ.get("PREDICT_PROBA", "false").lower() == "true" and hasattr(
                self._model, "predict_proba"
            ):
                result = self._model.predict_proba(instances)
            else:
                result = self._model.predict(instances)
            return get_predict_response(payload, result, self.name)
        except Exception as e:
            raise InferenceError(str(e)) from e


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = SKLearnModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])
