"""What the health, readiness and metrics routes answer, with no web framework in it.

Kubernetes probes and Prometheus scrapes are most of a quiet server's traffic, and the readiness
probe is the first request a new pod gets: ``server.front`` answers them from here before FastAPI
is imported, and ``server.health``'s FastAPI routes answer the same from here once it is.

Readiness means every model is loaded and answering and the server is not draining for shutdown;
KServe's ``/v2/health/ready`` says true whenever the process answers, which lets traffic in too early.
"""

from __future__ import annotations

from typing import Any

from server.errors import ServerNotReady
from server.state import ServerState

LIVE_V1 = {"status": "alive"}
LIVE_V2 = {"live": True}


def server_ready(state: ServerState) -> dict[str, Any]:
    if state.draining or not state.registry.all_ready():
        raise ServerNotReady()
    return {"ready": True}


def model_ready(state: ServerState, name: str) -> dict[str, Any]:
    """``/v1/models/{name}`` and ``/v2/models/{name}/ready``: 404 unknown, 503 not loaded yet."""
    model = state.registry.get_ready(name)
    return {"name": model.name, "ready": True}


def metrics(state: ServerState, accept: str | None) -> tuple[bytes, str]:
    """The Prometheus exposition (text or OpenMetrics, as ``accept`` asks) and its content type."""
    return state.metrics.render(accept)
