"""The model repository extension, as KServe serves it: load (or reload) and unload a model by name.

``load`` re-reads the model from its file (a new version dropped in place is picked up) while the
version in memory keeps answering, and swaps it in when it has loaded; ``unload`` frees it, and
until it is loaded again the model is unknown to clients (404, as KServe's), out of ``/v2/models``,
and left out of server readiness. ``kcr_model_ready`` and ``kcr_model_load_seconds`` follow.
Only models the server was started with can be loaded: a name it never had is a 404.

REST here (``POST /v2/repository/models/{name}/load`` and ``/unload``, with the API key); the gRPC
``RepositoryModelLoad`` / ``RepositoryModelUnload`` call the same two methods.
"""

from __future__ import annotations

import asyncio
import logging

from server.errors import ModelLoadError, ModelNotReady
from server.kserve import errors
from server.lifecycle import load_model
from server.model import Model
from server.state import ServerState
from server.web.http import Request, Response
from server.web.routing import Route, Table

logger = logging.getLogger("kcr.server")


class Repository:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def load(self, name: str) -> Model:
        registry = self.state.registry
        model = registry.find(name)
        async with self._lock(name):
            try:
                await load_model(model, self.state)
            except ModelLoadError as exc:
                logger.error("%s", exc)
                detail = exc.message + (" The loaded version keeps serving." if model.ready else "")
                raise ModelNotReady(name, detail) from None
            registry.set_unloaded(name, False)
        return model

    async def unload(self, name: str) -> Model:
        registry = self.state.registry
        model = registry.get(name)  # unknown or already unloaded: 404, as KServe
        async with self._lock(name):
            registry.set_unloaded(name, True)
            await model.unload()
            logger.info("model %s unloaded", name)
        return model


def table(repository: Repository) -> Table:
    async def load(request: Request) -> Response:
        name = request.params["model_name"]
        request.name_model(name)
        await repository.load(name)
        return Response.json({"name": name, "load": True})

    async def unload(request: Request) -> Response:
        name = request.params["model_name"]
        request.name_model(name)
        await repository.unload(name)
        return Response.json({"name": name, "unload": True})

    routes = [
        Route("POST", "/v2/repository/models/{model_name}/load", load,
              "Load or reload a model from its directory (model repository extension)",
              docs={"responses": errors.error_responses(401, 404, 503)}),
        Route("POST", "/v2/repository/models/{model_name}/unload", unload,
              "Unload a model (model repository extension)",
              docs={"responses": errors.error_responses(401, 404)}),
    ]  # fmt: skip
    return Table("v2", routes, errors.render, tags=("Open Inference Protocol (v2)",))
