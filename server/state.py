"""``ServerState``: what every layer of a serving process reads, with no web framework in it.

The pure-ASGI front (``server.front``), the fast predict path and the FastAPI routes all read the
same object (FastAPI's ``app.state`` is set to it), so a request answered before FastAPI is even
imported sees exactly what a FastAPI route would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from server.access_log import AccessLog
from server.metrics import Metrics
from server.registry import ModelRegistry
from server.runtime import Model
from server.settings import Settings


class ServerState:
    """Attributes, not a mapping: the OpenAI router adds its own (``openai_metrics``...)."""

    def __init__(self, settings: Settings, registry: ModelRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        #: True from SIGTERM (or lifespan shutdown) on: readiness answers 503.
        self.draining = False
        self.access_log: AccessLog | None = (
            AccessLog() if settings.access_log and AccessLog.wanted() else None
        )
        #: Why the process is exiting, when a model could never load.
        self.fatal: str | None = None
        #: Replaced by the CLI with "tell uvicorn to exit"; in-process users get a no-op.
        self.request_shutdown: Callable[[], None] = lambda: None
        #: Set for predictive models (``server.dataplane.DataPlane``).
        self.dataplane: Any = None


def build_state(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> ServerState:
    """``load_times``: seconds each model took when the CLI loaded it before binding."""
    registry = ModelRegistry(models)
    metrics = Metrics()
    for name, seconds in (load_times or {}).items():
        metrics.model_load.labels(name).set(seconds)
    state = ServerState(settings, registry, metrics)
    kinds = {m.kind for m in registry}
    if "predictive" in kinds or not kinds:
        from server.dataplane import DataPlane

        state.dataplane = DataPlane(settings, registry, metrics)
    return state
