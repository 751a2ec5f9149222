"""The micro-batcher merges concurrent requests into one predict call, splits results back in order,
isolates failures, and never makes a lone request wait."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from server.errors import InvalidInput
from server.kserve.dataplane import MicroBatcher


class RecordingModel:
    """Predicts the row sum; rejects rows containing a negative number, like an estimator would."""

    name = "rec"
    kind: ClassVar[str] = "predictive"
    outputs = ("predict",)
    default_output = "predict"

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.delay = delay

    def predict(self, x: Any, output: str) -> Any:
        self.calls.append(len(x))
        if self.delay:  # burn CPU, as a big model does (sleeping would not count as work)
            end = time.thread_time() + self.delay
            while time.thread_time() < end:
                pass
        values = x.to_numpy() if isinstance(x, pd.DataFrame) else x
        if (values < 0).any():
            raise InvalidInput("negative input")
        return values.sum(axis=1)


def _batcher(
    model: RecordingModel, size: int = 64, executor: Any = None, inline_below: float = 1.0
) -> MicroBatcher:
    return MicroBatcher(model, executor, max_batch_size=size, max_wait_s=0.0, inline_below_s=inline_below)


def test_concurrent_requests_share_one_call() -> None:
    model = RecordingModel()
    batcher = _batcher(model)

    async def go() -> list[Any]:
        inputs = [np.array([[i, i]], dtype=float) for i in range(10)]
        return await asyncio.gather(*(batcher.submit(x, "predict") for x in inputs))

    results = asyncio.run(go())
    assert [r.tolist() for r in results] == [[2.0 * i] for i in range(10)]
    assert model.calls == [10]


def test_multi_row_requests_split_back_in_order() -> None:
    model = RecordingModel()
    batcher = _batcher(model)

    async def go() -> list[Any]:
        xs = [np.ones((1, 3)), np.full((4, 3), 2.0), np.full((2, 3), 3.0)]
        return await asyncio.gather(*(batcher.submit(x, "predict") for x in xs))

    a, b, c = asyncio.run(go())
    assert a.tolist() == [3.0] and b.tolist() == [6.0] * 4 and c.tolist() == [9.0] * 2
    assert model.calls == [7]


def test_a_bad_request_fails_alone() -> None:
    model = RecordingModel()
    batcher = _batcher(model)

    async def go() -> list[Any]:
        xs = [np.array([[1.0, 1.0]]), np.array([[-1.0, 1.0]]), np.array([[2.0, 2.0]])]
        return await asyncio.gather(*(batcher.submit(x, "predict") for x in xs), return_exceptions=True)

    good1, bad, good2 = asyncio.run(go())
    assert good1.tolist() == [2.0] and good2.tolist() == [4.0]
    assert isinstance(bad, InvalidInput)
    assert model.calls[0] == 3  # the merged attempt, then one call per request
    assert sorted(model.calls[1:]) == [1, 1, 1]


def test_lone_request_runs_at_once_without_merging() -> None:
    model = RecordingModel()
    batcher = _batcher(model)
    x = np.array([[1.0, 2.0]])

    async def go() -> Any:
        return await batcher.submit(x, "predict")

    assert asyncio.run(go()).tolist() == [3.0]
    assert model.calls == [1]


def test_incompatible_inputs_are_not_merged() -> None:
    model = RecordingModel()
    batcher = _batcher(model)

    async def go() -> list[Any]:
        xs = [np.ones((1, 2)), np.ones((1, 3)), np.ones((1, 2)), np.ones((1, 2), dtype=np.int64)]
        return await asyncio.gather(*(batcher.submit(x, "predict") for x in xs))

    results = asyncio.run(go())
    assert [r.tolist() for r in results] == [[2.0], [3.0], [2.0], [2]]
    assert sorted(model.calls) == [1, 1, 2]


def test_batch_size_is_bounded() -> None:
    model = RecordingModel()
    batcher = _batcher(model, size=4)

    async def go() -> None:
        await asyncio.gather(*(batcher.submit(np.ones((1, 2)), "predict") for _ in range(10)))

    asyncio.run(go())
    assert max(model.calls) <= 4 and sum(model.calls) == 10


def test_dataframes_with_same_columns_merge() -> None:
    model = RecordingModel()
    batcher = _batcher(model)

    async def go() -> list[Any]:
        frames = [pd.DataFrame({"a": [float(i)], "b": [1.0]}) for i in range(5)]
        return await asyncio.gather(*(batcher.submit(f, "predict") for f in frames))

    results = asyncio.run(go())
    assert [r.tolist() for r in results] == [[float(i) + 1] for i in range(5)]
    assert model.calls == [5]


def test_slow_model_runs_off_the_event_loop() -> None:
    """Once a model is known to be slow, its calls go to the thread and the loop keeps ticking."""
    model = RecordingModel(delay=0.05)
    with ThreadPoolExecutor(1) as pool:
        batcher = _batcher(model, executor=pool, inline_below=0.002)

        async def go() -> int:
            await batcher.submit(np.ones((1, 2)), "predict")  # first call: timed, found slow
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1

            task = asyncio.create_task(ticker())
            await batcher.submit(np.ones((1, 2)), "predict")
            task.cancel()
            return ticks

        assert asyncio.run(go()) >= 3


@pytest.mark.parametrize("size", [1])
def test_batching_off(size: int) -> None:
    model = RecordingModel()
    batcher = _batcher(model, size=size)

    async def go() -> None:
        await asyncio.gather(*(batcher.submit(np.ones((1, 2)), "predict") for _ in range(5)))

    asyncio.run(go())
    assert model.calls == [1] * 5
