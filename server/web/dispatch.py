"""The one ASGI entry of a serving process: lifespan, request context, routing, auth, errors.

Every request takes one path: ids and the header budget (``server.web.context``), then the route
tables of the protocol wings (``server.web.routing``), the key check before the body is read, the
handler, and the handler's reply; any exception becomes the route's protocol error, and one that is
not a ``KcrError`` is logged once, here, with the request id. The request counter, the in-flight
gauge and the access log are written once, in ``finally``.

FastAPI is only the OpenAPI document and ``/docs`` (``server.web.docs``), built from the same tables
in a thread the first time someone asks for them: a serving process never imports it otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import KcrError, MethodNotAllowed, PayloadTooLarge, RouteNotFound
from server.lifecycle import lifespan
from server.state import ServerState
from server.web.access_log import AccessLog
from server.web.auth import check_request
from server.web.http import ClientGone, Headers, Reply, Request, Response
from server.web.routing import Router, Table

logger = logging.getLogger("kcr.server")

REQUEST_ID_HEADER = b"x-request-id"
# Accept client ids that are safe to log and echo; anything else is replaced by a fresh one.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:/+=@-]{1,128}$")
#: httptools (uvicorn's default parser) has no limit of its own on header size; 64 KiB is what
#: Envoy (Knative's queue-proxy path) allows by default.
MAX_HEADER_BYTES = 64 * 1024


def inspect_headers(scope: Scope) -> tuple[bytes, int]:
    """(request id, header bytes) in one pass over the headers."""
    request_id = None
    size, seen_id = 0, False
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
        if name == REQUEST_ID_HEADER and not seen_id:
            seen_id = True
            if _SAFE_ID.match(value):
                request_id = value
    return request_id or os.urandom(16).hex().encode(), size


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})
_NOT_FOUND = Response(b'{"detail":"Not Found"}', 404)


class Dispatcher:
    def __init__(
        self, state: ServerState, tables: list[Table], docs: Callable[[], ASGIApp] | None = None
    ) -> None:
        self.state = state
        self.router = Router(tables)
        self._build_docs = docs
        self._docs: asyncio.Future[ASGIApp] | None = None
        self._keys = state.settings.api_keys
        self._limit = state.settings.max_body_bytes
        self.access_log = AccessLog() if state.settings.access_log and AccessLog.wanted() else None
        #: Metric labels come only from served names: a client-sent name is one series per request.
        self._labels = served_names(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id, header_bytes = inspect_headers(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid = request_id.decode()
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        metrics = self.state.metrics
        metrics.in_flight.inc()
        path: str = scope["path"]
        protocol, route_path, table, reply = "other", None, None, None
        try:
            match = self.router.match(scope["method"], path)
            compiled = match.compiled or match.allowed
            if compiled is not None:
                table = compiled.table
                route_path = compiled.route.path
            else:
                table = self.router.owner(path)
            if table is not None:
                protocol = table.protocol
            request = Request(scope, receive, match.params, self._limit)
            reply = await self._answer(request, match, table, header_bytes)
            try:  # noqa: SIM105 (contextlib.suppress costs ~0.5 µs a request on the hot path)
                await reply(receive, send_with_id)
            except ClientGone:
                pass
        finally:
            metrics.in_flight.dec()
            model = state.get("model_name", "")
            if model and model not in self._labels:
                model = UNKNOWN_MODEL
            metrics.child(metrics.requests, model, protocol, str(status)).inc()
            if table is not None and table.count is not None:
                table.count(route_path, model, status)
            access_log = self.access_log
            if access_log is not None:
                ms = (time.perf_counter() - start) * 1000
                cut = getattr(reply, "cut", False)
                access_log.record(client_of(scope), scope["method"], path, status, ms, rid, cut)

    async def _answer(self, request: Request, match: Any, table: Table | None, header_bytes: int) -> Reply:
        scope = request.scope
        compiled = match.compiled
        try:
            if header_bytes > MAX_HEADER_BYTES:
                message = (
                    f"Request headers of {header_bytes} bytes exceed the limit of {MAX_HEADER_BYTES} bytes"
                )
                return _render(table, request, PayloadTooLarge(message), status=431)
            if compiled is not None:
                if compiled.route.auth and self._keys:
                    check_request(self._keys, scope)
                reply: Reply = await compiled.route.endpoint(request)
                return reply
            if table is not None and table.owns and self._keys:
                check_request(self._keys, scope)
            if match.allowed is not None:
                return _method_not_allowed(table, request, match.allowed.route.method)
            if match.redirect is not None:
                return _redirect(scope, match.redirect)
            if scope["path"] in DOCS_PATHS and self._build_docs is not None:
                return _Forward(await self._docs_app(), scope)
            if table is not None and table.owns:
                return _render(table, request, RouteNotFound(scope["method"], scope["path"]))
            return _NOT_FOUND
        except ClientGone:
            return _Nothing()
        except Exception as exc:
            if not isinstance(exc, KcrError):
                logger.exception(
                    "unhandled error on %s %s (request id %s)",
                    scope["method"],
                    scope["path"],
                    request.request_id,
                )
            return _render(table, request, exc)

    # --- lifespan and the docs app ----------------------------------------------------------------

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
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
            if self.access_log is not None:
                self.access_log.flush()
        except BaseException as exc:
            logger.exception("shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def _docs_app(self) -> ASGIApp:
        built = self._docs
        if built is None or built.get_loop() is not asyncio.get_running_loop():
            built = self._docs = self._start_docs_build()
        return await asyncio.shield(built)

    def _start_docs_build(self) -> asyncio.Future[ASGIApp]:
        """Import FastAPI and build the docs app in a thread: the event loop keeps serving meanwhile."""
        loop = asyncio.get_running_loop()
        built: asyncio.Future[ASGIApp] = loop.create_future()
        build = self._build_docs
        assert build is not None

        def done(app: ASGIApp | None, exc: BaseException | None) -> None:
            if built.done():
                return
            if exc is not None:
                self._docs = None  # the next request tries again
                built.set_exception(exc)
                built.exception()
            else:
                built.set_result(app)  # type: ignore[arg-type]

        def run() -> None:
            try:
                app, error = build(), None
            except BaseException as exc:
                logger.exception("building the OpenAPI document failed")
                app, error = None, exc
            loop.call_soon_threadsafe(done, app, error)

        threading.Thread(target=run, name="kcr-docs", daemon=True).start()
        return built


#: The one metrics label of every model name that is not served.
UNKNOWN_MODEL = "unknown"


def served_names(state: ServerState) -> frozenset[str]:
    names = set(state.registry.names())
    for model in state.registry.of_kind("generative"):
        names.update(card.id for card in model.served_models())  # type: ignore[attr-defined]
    return frozenset(names)


def _render(table: Table | None, request: Request, exc: Exception, status: int | None = None) -> Reply:
    if table is None:
        message = exc.message if isinstance(exc, KcrError) else "Internal Server Error"
        reply: Reply = Response.json({"error": message}, 500)
    else:
        reply = table.render(request, exc)
    if status is not None:
        reply.status = status
    return reply


def _method_not_allowed(table: Table | None, request: Request, method: str) -> Reply:
    if table is not None and table.owns:
        reply = _render(table, request, MethodNotAllowed(request.scope["method"], request.scope["path"]))
    else:
        reply = Response(b'{"detail":"Method Not Allowed"}', 405)
    reply.headers.append((b"allow", method.encode()))
    return reply


def _redirect(scope: Scope, path: str) -> Response:
    """Starlette's trailing-slash redirect, to the same host, so clients see what FastAPI sent."""
    scheme = scope.get("scheme", "http")
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    if host is not None:
        url = f"{scheme}://{host}{path}"
    elif scope.get("server") is None:
        url = path
    else:
        name, port = scope["server"]
        default = {"http": 80, "https": 443}.get(scheme)
        url = f"{scheme}://{name}{path}" if port == default else f"{scheme}://{name}:{port}{path}"
    if scope.get("query_string"):
        url += "?" + scope["query_string"].decode("latin-1")
    location = quote(url, safe=":/%#?=@[]!$&'()*+,;")
    response = Response(b"", 307, headers=[(b"location", location.encode("latin-1"))])
    response.headers.pop(0)  # a redirect has no content type
    return response


class _Forward:
    """Hand the request, unchanged, to another ASGI app (the docs app)."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.status = 200
        self.headers: Headers = []

    async def __call__(self, receive: Receive, send: Send) -> None:
        await self.app(self.scope, receive, send)


class _Nothing:
    """The client left before its body arrived: nothing is sent."""

    def __init__(self) -> None:
        self.status = 499
        self.headers: Headers = []

    async def __call__(self, receive: Receive, send: Send) -> None:
        return None
