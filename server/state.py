"""``ServerState``: what the lifecycle, the probes and the CLI share, with no web framework in it.

Built once per app (``server.app.create_app``) and passed down explicitly; tests build as many as
they like in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from server.metrics import Metrics
from server.registry import ModelRegistry
from server.model import Model
from server.settings import Settings


class ServerState:
    """What the lifecycle, the probes and every wing share; wings keep their own state themselves."""

    def __init__(self, settings: Settings, registry: ModelRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        #: True from SIGTERM (or lifespan shutdown) on: readiness answers 503.
        self.draining = False
        #: Why the process is exiting, when a model could never load.
        self.fatal: str | None = None
        #: Replaced by the CLI with "tell uvicorn to exit"; in-process users get a no-op.
        self.request_shutdown: Callable[[], None] = lambda: None


def build_state(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> ServerState:
    """``load_times``: seconds each model took when the CLI loaded it before binding."""
    registry = ModelRegistry(models)
    metrics = Metrics()
    for name, seconds in (load_times or {}).items():
        metrics.model_load.labels(name).set(seconds)
    return ServerState(settings, registry, metrics)
