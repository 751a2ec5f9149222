"""Run test code in a child interpreter of its own, for clients that cannot share one with ``kserve``.

tritonclient.grpc and the kserve package both register protobuf messages named ``inference.*`` in
the default descriptor pool, and a process can hold only one of them (``TypeError: duplicate
symbol 'inference.ServerLiveRequest'``). The pytest process imports kserve (its REST and gRPC
clients, and our own stubs, which are byte-identical to kserve's); tritonclient.grpc checks run in
one long-lived spawned child instead, called by name: ``Isolated().call("module:function", *args)``.
An assertion that fails in the child fails the calling test with the child's traceback.
"""

from __future__ import annotations

import importlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _call(target: str, args: tuple[Any, ...]) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args)


class Isolated:
    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def call(self, target: str, *args: Any, timeout: float = 120) -> Any:
        return self._pool.submit(_call, target, args).result(timeout)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
