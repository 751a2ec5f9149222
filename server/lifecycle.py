"""Start-up and shutdown of a serving process, for whichever ASGI app fronts it.

Run by the dispatcher (``server.web.dispatch``) between uvicorn's lifespan messages.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from server.errors import ModelLoadError
from server.model import Model
from server.state import ServerState

logger = logging.getLogger("kcr.server")


async def load_model(model: Model, state: ServerState) -> None:
    """Load one model, recording how long it took."""
    start = time.perf_counter()
    await model.load()
    elapsed = time.perf_counter() - start
    state.metrics.model_load.labels(model.name).set(elapsed)
    logger.info("model %s loaded in %.3fs", model.name, elapsed)


async def _load_or_stop(state: ServerState, model: Model) -> None:
    """Background load; a model that can never load ends the process rather than leaving a server
    that is live but never ready."""
    try:
        await load_model(model, state)
    except ModelLoadError as exc:
        logger.error("%s", exc)
        state.fatal = str(exc)
        state.request_shutdown()


def _ready_of(model: Model) -> Callable[[], float]:
    return lambda: float(model.ready)


@asynccontextmanager
async def lifespan(state: ServerState) -> AsyncIterator[None]:
    registry, metrics = state.registry, state.metrics
    background: set[asyncio.Task[None]] = set()
    # Fast loads normally happen in the CLI before binding; this covers in-process use.
    for model in registry:
        if model.load_before_serving and not model.ready:
            await load_model(model, state)
    for model in registry:
        if not model.load_before_serving:
            task = asyncio.create_task(_load_or_stop(state, model), name=f"load-{model.name}")
            background.add(task)
            task.add_done_callback(background.discard)
    for model in registry:
        metrics.model_ready.labels(model.name).set_function(_ready_of(model))
    # Everything imported and loaded so far lives as long as the process: move it out of the
    # collector's reach, so full collections stay short (they caused the p99 tail under load).
    # No gc.collect() first: over ~1M objects of numpy/scipy/sklearn it costs 60-90 ms of cold
    # start, to free well under 1 MB. The CLI keeps the collector off until here (see cli.main).
    gc.freeze()
    gc.enable()
    started = []
    try:
        for service in state.services:
            await service.start()
            started.append(service)
        yield
    finally:
        state.draining = True
        for service in reversed(started):
            try:
                await service.stop()
            except Exception:
                logger.exception("stopping %s failed", type(service).__name__)
        for task in list(background):
            task.cancel()
        for model in registry:
            try:
                await model.unload()
            except Exception:
                logger.exception("unloading model %s failed", model.name)
