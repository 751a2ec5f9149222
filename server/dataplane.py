"""The protocol-neutral predict path shared by the v1 and v2 routers.

Finds the model, checks readiness, runs the prediction through the micro-batcher off the event loop,
and records KServe's ``request_predict_seconds`` (failed predictions included, as KServe does).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from server.batching import MicroBatcher
from server.metrics import Metrics
from server.registry import ModelRegistry
from server.runtime import PredictiveModel
from server.settings import Settings


class DataPlane:
    def __init__(self, settings: Settings, registry: ModelRegistry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        # One thread: sklearn holds the GIL for most of predict, and one core serves one pod.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._batchers: dict[str, MicroBatcher] = {}
        self._predict_hist: dict[str, Any] = {}

    def model(self, name: str) -> PredictiveModel:
        model = self.registry.get_ready(name)
        if model.kind != "predictive":
            from server.errors import NotSupported

            raise NotSupported(f"Model {name} does not support inference over this protocol")
        return model  # type: ignore[return-value]

    def _batcher(self, model: PredictiveModel) -> MicroBatcher:
        batcher = self._batchers.get(model.name)
        if batcher is None:
            hist = self.metrics.batch_size.labels(model.name)
            batcher = MicroBatcher(
                model,
                self._executor,
                self.settings.max_batch_size,
                self.settings.max_batch_wait_ms / 1000,
                observe_batch=hist.observe,
                inline_below_s=self.settings.inline_predict_ms / 1000,
            )
            self._batchers[model.name] = batcher
        return batcher

    async def predict(self, model: PredictiveModel, x: Any, output: str) -> Any:
        hist = self._predict_hist.get(model.name)
        if hist is None:
            hist = self._predict_hist[model.name] = self.metrics.predict.labels(model.name)
        start = time.perf_counter()
        try:
            return await self._batcher(model).submit(x, output)
        finally:
            hist.observe(time.perf_counter() - start)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
