"""``ServerState``: what the lifecycle, the probes and the CLI share, with no web framework in it.

Built once per app (``server.app.create_app``) and passed down explicitly; tests build as many as
they like in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from server.metrics import Metrics
from server.model import Model
from server.registry import ModelRegistry
from server.settings import Settings


class Service(Protocol):
    """Something served beside the ASGI app (the gRPC server): started once the models are loaded,
    told at once when draining begins, stopped before the models are unloaded."""

    async def start(self) -> None: ...

    def drain(self) -> None: ...

    async def stop(self) -> None: ...


class ServerState:
    """What the lifecycle, the probes and every wing share; wings keep their own state themselves."""

    def __init__(self, settings: Settings, registry: ModelRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        #: True from SIGTERM (or lifespan shutdown) on: readiness answers 503.
        self._draining = False
        #: Started and stopped by the lifespan (``server.lifecycle``), drained with ``draining``.
        self.services: list[Service] = []
        #: Why the process is exiting, when a model could never load.
        self.fatal: str | None = None
        #: Replaced by the CLI with "tell uvicorn to exit"; in-process users get a no-op.
        self.request_shutdown: Callable[[], None] = lambda: None

    @property
    def draining(self) -> bool:
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        """Setting it (the CLI does on SIGTERM) tells every service at once, so gRPC stops taking
        new calls while REST drains."""
        first = value and not self._draining
        self._draining = value
        if first:
            for service in self.services:
                service.drain()


def build_state(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> ServerState:
    """``load_times``: seconds each model took when the CLI loaded it before binding."""
    registry = ModelRegistry(models)
    metrics = Metrics()
    for name, seconds in (load_times or {}).items():
        metrics.model_load.labels(name).set(seconds)
    return ServerState(settings, registry, metrics)
