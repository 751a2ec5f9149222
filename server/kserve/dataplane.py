"""The protocol-neutral predict path shared by the v1, v2 REST and gRPC transports.

Finds the model, checks readiness, runs the prediction through the micro-batcher off the event loop,
and records KServe's ``request_predict_seconds`` (failed predictions included, as KServe does).

Adaptive micro-batching: concurrent requests for one model share one ``predict`` call. No timer by
default: the first request runs at once, and whatever arrives while a call is running is merged into
the next call. A lone request therefore never waits, and under load the batch grows with the queue:
one 100-tree forest pass answers dozens of requests. ``max_wait`` > 0 additionally holds a non-full
batch open that long. A batch that fails is retried request by request, so a bad input fails only
its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from server.errors import NotSupported
from server.metrics import Metrics
from server.model import PredictiveModel
from server.registry import ModelRegistry
from server.settings import Settings

#: Bodies larger than this are decoded, and their answers encoded, in a worker thread.
OFFLOAD_BYTES = 64 * 1024
#: After requests larger than this, freed memory is returned to the OS (``DataPlane.release``).
TRIM_BYTES = 1024 * 1024


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        return None


_malloc_trim = _load_malloc_trim()
_T = TypeVar("_T")


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
            raise NotSupported(f"Model {name} does not support inference over this protocol")
        return model  # type: ignore[return-value]

    async def codec(self, size: int, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` (decoding or encoding a body of ``size`` bytes): on the event loop when
        small, in a worker thread when large. Decoding is Python work in proportion to the body;
        on the loop a 1 MB body would hold up every other request and the probes."""
        if size <= OFFLOAD_BYTES:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    def release(self, size: int) -> None:
        """After a request of ``size`` bytes: hand its freed heap back to the OS, once it is over
        (its body and arrays are freed when the handler and the dispatcher let go of them). glibc
        keeps freed pages (a 24 MB body left +40 MB resident); ``malloc_trim`` returns them. Soon
        after, in a thread: it walks the heap."""
        if size > TRIM_BYTES and _malloc_trim is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, loop.run_in_executor, None, _malloc_trim, 0)

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


# --- micro-batching ---------------------------------------------------------------------------


@dataclass
class _Item:
    x: Any
    output: str
    rows: int
    key: tuple[Any, ...]
    future: asyncio.Future[Any] = field(repr=False)


def _rows(x: Any) -> int:
    try:
        return max(1, len(x))
    except TypeError:
        return 1


def batch_key(x: Any) -> tuple[Any, ...] | None:
    """Inputs with equal keys can be stacked row-wise; None means "run alone"."""
    if isinstance(x, np.ndarray):
        if x.ndim != 2 or x.dtype == object:
            return None
        return ("nd", x.shape[1], x.dtype.str)
    if type(x).__name__ == "DataFrame":
        return ("df", tuple(x.columns), tuple(str(t) for t in x.dtypes))
    return None


def _concat(xs: list[Any]) -> Any:
    if isinstance(xs[0], np.ndarray):
        return np.concatenate(xs, axis=0)
    import pandas as pd

    return pd.concat(xs, axis=0, ignore_index=True)


def _split(result: Any, rows: list[int]) -> list[Any] | None:
    if not hasattr(result, "__len__") or len(result) != sum(rows):
        return None  # the estimator did not answer row by row; cannot split safely
    parts, start = [], 0
    for n in rows:
        part = result[start : start + n]
        if type(part).__name__ == "DataFrame":
            part = part.reset_index(drop=True)
        parts.append(part)
        start += n
    return parts


class MicroBatcher:
    def __init__(
        self,
        model: PredictiveModel,
        executor: Executor | None,
        max_batch_size: int,
        max_wait_s: float,
        observe_batch: Callable[[int], None] | None = None,
        inline_below_s: float = 0.0,
    ) -> None:
        self.model = model
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.observe_batch = observe_batch
        self.inline_below_s = inline_below_s
        #: Moving average of one predict call's CPU time per input row; infinite until the first
        #: call has been timed.
        self._per_row_s = float("inf")
        self._queue: deque[_Item] = deque()
        self._worker: asyncio.Task[None] | None = None

    def _timed_predict(self, x: Any, output: str) -> Any:
        # CPU time of this thread, not wall time: waiting for the executor or the GIL must not make
        # a fast model look slow (and then keep it off the event loop for good).
        start = time.thread_time()
        try:
            return self.model.predict(x, output)
        finally:
            per_row = (time.thread_time() - start) / _rows(x)
            previous = self._per_row_s
            self._per_row_s = per_row if previous == float("inf") else 0.8 * previous + 0.2 * per_row

    async def _run(self, x: Any, output: str) -> Any:
        # Short calls run on the event loop: handing them to a thread costs more than the call
        # itself. Calls expected to be slow go to the thread so the loop keeps answering probes.
        # Per row, and estimated from small calls (whose fixed cost inflates it), a large request
        # to a fast model is expected slow: 100,000 rows never run on the loop.
        if self.executor is None or self._per_row_s * _rows(x) < self.inline_below_s:
            return self._timed_predict(x, output)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._timed_predict, x, output)

    async def submit(self, x: Any, output: str) -> Any:
        key = batch_key(x) if self.max_batch_size > 1 else None
        if key is None:
            return await self._run(x, output)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(x, output, len(x), (output, *key), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _take_batch(self) -> list[_Item]:
        first = self._queue.popleft()
        rest: deque[_Item] = deque()
        batch, rows = [first], first.rows
        while self._queue and len(batch) < self.max_batch_size:
            item = self._queue.popleft()
            if item.key == first.key:
                batch.append(item)
                rows += item.rows
            else:
                rest.append(item)
        rest.extend(self._queue)
        self._queue = rest
        return batch

    async def _drain(self) -> None:
        while self._queue:
            if self.max_wait_s > 0 and len(self._queue) < self.max_batch_size:
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_batch_size and time.monotonic() < deadline:
                    await asyncio.sleep(0)
            else:
                # Let requests that are already readable reach the queue before cutting a batch.
                await asyncio.sleep(0)
            batch = self._take_batch()
            batch = [item for item in batch if not item.future.done()]  # cancelled by client
            if not batch:
                continue
            if self.observe_batch:
                self.observe_batch(len(batch))
            if len(batch) == 1:
                await self._settle(batch[0])
                continue
            try:
                result = await self._run(_concat([i.x for i in batch]), batch[0].output)
                parts = _split(result, [i.rows for i in batch])
            except Exception:
                parts = None
            if parts is None:
                for item in batch:  # isolate the failure to the request that caused it
                    await self._settle(item)
                continue
            for item, part in zip(batch, parts, strict=True):
                if not item.future.done():
                    item.future.set_result(part)

    async def _settle(self, item: _Item) -> None:
        try:
            result = await self._run(item.x, item.output)
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(exc)
        else:
            if not item.future.done():
                item.future.set_result(result)
