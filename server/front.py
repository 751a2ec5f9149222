"""``create_server``: the ASGI app a serving process runs, answering before FastAPI is imported.

Importing FastAPI and building its routes was ~0.13 s of a scikit-learn server's ~0.5 s cold start
(FastAPI builds its OpenAPI pydantic models at import), and none of it is needed to answer what a
new pod is asked first: readiness probes, then predictions. For predictive models the front

- runs the lifespan (``server.lifecycle``) itself, answering uvicorn's lifespan messages;
- answers the probes and ``/metrics`` from ``server.probes`` and ``:predict``/``/infer`` through
  ``server.fastpath``, under the same request-context layer (ids, counters, access log);
- builds the FastAPI app (metadata, model lists, ``:explain``, 501s for versions, docs, OpenAPI,
  404/405 for everything else) in a background thread as soon as the server is up, and hands it
  every other request; one that arrives before the build is done waits for it.

The FastAPI routes for the probes and predictions stay registered, so the OpenAPI document still
describes them. Generative models (the OpenAI facade) and ``--no-fast-path`` get the FastAPI app
directly, as before.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from server import probes
from server.asgi_io import respond
from server.kserve_errors import error_parts
from server.lifecycle import lifespan
from server.middleware import RequestContextMiddleware
from server.runtime import Model
from server.settings import Settings
from server.state import ServerState, build_state

logger = logging.getLogger("kcr.server")

_JSON = [(b"content-type", b"application/json")]


def create_server(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> ASGIApp:
    """The app ``kcr serve`` runs: a ``ServingFront`` for predictive models, else FastAPI's."""
    state = build_state(settings, models, load_times)
    if settings.fast_path and state.dataplane is not None and not state.registry.of_kind("generative"):
        return ServingFront(state)
    from server.app import create_fastapi

    return create_fastapi(state)


class ServingFront:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.fastapi: ASGIApp | None = None
        self._built: asyncio.Future[ASGIApp] | None = None
        # Here, not at the top: the predict path needs numpy, which the facade's install lacks.
        from server.fastpath import FastPredictPath

        self._app = RequestContextMiddleware(
            FastPredictPath(self._answer, state), metrics=state.metrics, access_log=state.access_log
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self._app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            try:
                answer = self._probe(scope)
            except Exception as exc:
                status, message, extra = error_parts(exc)
                headers = [*_JSON, *((k.encode(), v.encode()) for k, v in (extra or {}).items())]
                await respond(send, status, orjson.dumps({"error": message}), headers)
                return
            if answer is not None:
                body, content_type = answer
                await respond(send, 200, body, [(b"content-type", content_type)])
                return
        try:
            app = self.fastapi or await self._wait_for_fastapi()
        except Exception as exc:  # the build failed (logged there): KServe's shape, not a dropped request
            if scope["type"] == "http":
                status, message, _ = error_parts(exc)
                await respond(send, status, orjson.dumps({"error": message}), _JSON)
            return
        await app(scope, receive, send)

    def _probe(self, scope: Scope) -> tuple[bytes, bytes] | None:
        """(body, content type) for a probe or ``/metrics``; None for every other path."""
        path: str = scope["path"]
        state = self.state
        if path == "/v2/health/ready":
            payload = probes.server_ready(state)
        elif path.startswith("/v2/models/") and path.endswith("/ready"):
            name = path[11:-6]
            if not name or "/" in name:
                return None
            payload = probes.model_ready(state, name)
        elif path.startswith("/v1/models/"):
            name = path[11:]
            if not name or "/" in name:
                return None
            payload = probes.model_ready(state, name)
        elif path == "/":
            payload = probes.LIVE_V1
        elif path == "/v2/health/live":
            payload = probes.LIVE_V2
        elif path == "/metrics":
            accept = next((v for k, v in scope["headers"] if k == b"accept"), None)
            body, content_type = probes.metrics(state, accept.decode("latin-1") if accept else None)
            return body, content_type.encode("latin-1")
        else:
            return None
        return orjson.dumps(payload), b"application/json"

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan: ``server.lifecycle.lifespan`` between startup and shutdown."""
        await receive()  # lifespan.startup
        context = lifespan(self.state)
        try:
            await context.__aenter__()
        except BaseException as exc:
            logger.exception("start-up failed")
            await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.startup.complete"})
        if self.fastapi is None:
            self._build_fastapi()
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
        except BaseException as exc:
            logger.exception("shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def _wait_for_fastapi(self) -> ASGIApp:
        built = self._built
        if built is None or built.get_loop() is not asyncio.get_running_loop():
            # No lifespan ran (an ASGI server with lifespan off), or it ran in another event loop
            # (test clients): build here, in this loop.
            built = self._build_fastapi()
        return await asyncio.shield(built)

    def _build_fastapi(self) -> asyncio.Future[ASGIApp]:
        """Import FastAPI and build the app in a thread: the event loop keeps answering probes and
        predictions meanwhile (the import holds the GIL for at most the switch interval at a time)."""
        loop = asyncio.get_running_loop()
        built: asyncio.Future[ASGIApp] = loop.create_future()
        self._built = built

        def done(app: ASGIApp | None, exc: BaseException | None) -> None:
            if built.done():
                return
            if exc is not None:
                built.set_exception(exc)
                built.exception()  # retrieved: requests that wait for it get it raised
            else:
                built.set_result(app)

        def build() -> None:
            # Like every start-up import, FastAPI's long-lived objects are kept from the
            # collector (see server.lifecycle); it is back on, frozen, once they are built.
            gc.disable()
            try:
                from server.app import create_fastapi

                app: Any = create_fastapi(self.state, behind_front=True)
                app.middleware_stack = app.build_middleware_stack()
            except BaseException as exc:
                logger.exception("building the FastAPI app failed")
                app, error = None, exc
            else:
                self.fastapi, error = app, None
            finally:
                gc.freeze()
                gc.enable()
            with suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(done, app, error)

        threading.Thread(target=build, name="kcr-fastapi", daemon=True).start()
        return built
