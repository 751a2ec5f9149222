"""Liveness, readiness and ``/metrics``: always served, for every runtime, never behind an API key.

Kubernetes probes and Prometheus scrapes are most of a quiet server's traffic, and the readiness
probe is the first request a new pod gets. Numpy-free on purpose: the OpenAI facade serves these too.

Readiness means every model is loaded and answering and the server is not draining for shutdown;
KServe's ``/v2/health/ready`` says true whenever the process answers, which lets traffic in too early.
"""

from __future__ import annotations

from server.errors import ServerNotReady
from server.kserve import errors
from server.state import ServerState
from server.web.http import Request, Response
from server.web.routing import Route, Table

_LIVE_V1 = Response(b'{"status":"alive"}')
_LIVE_V2 = Response(b'{"live":true}')


def table(state: ServerState) -> Table:
    registry = state.registry

    async def live_v1(request: Request) -> Response:
        return _LIVE_V1

    async def live_v2(request: Request) -> Response:
        return _LIVE_V2

    async def ready(request: Request) -> Response:
        if state.draining or not registry.all_ready():
            raise ServerNotReady()
        return Response(b'{"ready":true}')

    async def model_ready(request: Request) -> Response:
        """404 for an unknown model, 503 while it is not loaded."""
        model = registry.get_ready(request.params["model_name"])
        return Response.json({"name": model.name, "ready": True})

    async def metrics(request: Request) -> Response:
        body, content_type = state.metrics.render(request.header(b"accept"))
        return Response(body, content_type=content_type.encode("latin-1"))

    def doc(model: type, *codes: int) -> dict[str, object]:
        return {"response_model": model, "responses": errors.error_responses(*codes)}

    routes = [
        Route("GET", "/", live_v1, "Liveness (KServe v1)", auth=False, docs=doc(dict[str, str])),
        Route("GET", "/v2/health/live", live_v2, "Liveness (Open Inference Protocol)", auth=False,
              docs=doc(dict[str, bool])),
        Route("GET", "/v2/health/ready", ready, "Readiness: 200 only when every model is loaded",
              auth=False, docs={"response_model": dict[str, bool],
                                "responses": {503: {"description": "Not ready"}}}),
        Route("GET", "/v2/models/{model_name}/ready", model_ready, "Model readiness (any model kind)",
              auth=False, docs=doc(dict[str, object], 404, 503)),
        Route("GET", "/metrics", metrics, "Prometheus metrics", auth=False),
    ]  # fmt: skip
    return Table("health", routes, errors.render, tags=("health",))
