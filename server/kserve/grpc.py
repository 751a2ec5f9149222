"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` and ``grpc.health.v1``.

A second transport of the KServe wing, beside REST (as MLServer puts ``grpc/`` beside ``rest/``):
the same dataplane and micro-batcher, the same request rules (``server.kserve.inference``), the same
error table (``server.kserve.errors``, mapped to gRPC status codes), API keys (the ``authorization``
metadata), metrics (KServe's histograms through the dataplane; ``kcr_requests_total`` with
``protocol="grpc"`` and the HTTP-equivalent ``code``, so one error-rate query covers both), access
log and request ids (``x-request-id`` metadata, echoed in the trailing metadata).

Why a thread-pool ``grpc.server`` and not ``grpc.aio``: grpc.aio accepts one call per event-loop
round trip, so concurrent calls reach the micro-batcher one at a time and every call pays a predict
of its own (``test_concurrent_calls_are_batched``); its empty-handler ceiling is also lower than the
threaded server's (docs/performance.md, "gRPC": ``python -m loadtests.grpc_ceiling``).
The pool threads do only gRPC's framing; each call is then handed to the event loop uvicorn serves
from (``run_coroutine_threadsafe``), where calls arriving together are batched with REST's. So every
request still takes one path: the RPC bodies below are coroutines on the loop, like the REST routes.

``GrpcService`` is started and stopped by the lifespan (``ServerState.services``). On SIGTERM it stops
taking calls at once while the calls in flight finish within ``--graceful-timeout``. This module is
imported only when gRPC is served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.errors import KcrError, NotSupported
from server.kserve import errors, grpc_codec, inference
from server.kserve import grpc_predict_v2_pb2 as pb
from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc
from server.kserve.dataplane import DataPlane
from server.kserve.repository import Repository
from server.state import ServerState
from server.version import version
from server.web.access_log import AccessLog
from server.web.auth import check_api_key

logger = logging.getLogger("kcr.server")

#: HTTP-equivalent status (the KServe wing's table) → gRPC code.
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_VERSIONS = "Model versioning not supported yet."
SERVICE = "inference.GRPCInferenceService"
POOL_THREADS = 64
MAX_CALLS = 1000
MAX_WATCHES = 8


def grpc_code(status: int) -> grpc.StatusCode:
    return _CODES.get(status, grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.UNKNOWN)


class _Call:
    """What one RPC carries besides its message: metadata, peer, request id, the model it names."""

    __slots__ = ("authorization", "model", "peer", "request_id")

    def __init__(self, context: grpc.ServicerContext) -> None:
        self.authorization: str | None = None
        request_id = None
        for key, value in context.invocation_metadata() or ():
            if key == "x-request-id" and request_id is None and isinstance(value, str):
                request_id = value if _SAFE_ID.match(value) else None
            elif key == "authorization":
                self.authorization = value if isinstance(value, str) else None
        self.request_id = request_id or os.urandom(16).hex()
        self.model = ""
        self.peer = context.peer()


Handler = Callable[[Any, _Call], Awaitable[Any]]
#: What an RPC's coroutine hands back to its pool thread: the response, or (code, message).
Outcome = tuple[Any, tuple[grpc.StatusCode, str] | None]


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self,
        state: ServerState,
        dataplane: DataPlane,
        repository: Repository,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.state = state
        self.dataplane = dataplane
        self.registry = state.registry
        self.repository = repository
        self.loop = loop
        #: Calls waiting on the loop, cancelled by ``GrpcService.stop`` if the grace period ends
        #: first (a pool thread blocked for good would hold the interpreter's exit).
        self.pending: set[concurrent.futures.Future[Outcome]] = set()
        self._keys = state.settings.api_keys
        self._max_elements = state.settings.max_elements
        settings = state.settings
        self._access_log = AccessLog() if settings.access_log and AccessLog.wanted() else None
        # Each RPC below is ``_serve`` around its handler: auth, errors, metrics, log, request id.
        for name, auth in (("ServerLive", False), ("ServerReady", False), ("ModelReady", False),
                           ("ServerMetadata", False), ("ModelMetadata", False), ("ModelInfer", True),
                           ("RepositoryModelLoad", True), ("RepositoryModelUnload", True)):  # fmt: skip
            setattr(self, name, self._serve(name, getattr(self, "_" + name), auth))

    def _serve(self, name: str, handler: Handler, auth: bool) -> Callable[[Any, grpc.ServicerContext], Any]:
        path = f"/{SERVICE}/{name}"
        metrics = self.state.metrics

        async def on_loop(request: Any, call: _Call) -> Outcome:
            start = time.perf_counter()
            status = 200
            metrics.in_flight.inc()
            try:
                if auth and self._keys:
                    check_api_key(self._keys, call.authorization)
                return await handler(request, call), None
            except Exception as exc:
                if not isinstance(exc, KcrError):
                    logger.exception("unhandled error in %s (request id %s)", path, call.request_id)
                status, message, _ = errors.error_parts(exc)
                return None, (grpc_code(status), message)
            finally:
                metrics.in_flight.dec()
                metrics.child(metrics.requests, call.model, "grpc", str(status)).inc()
                if self._access_log is not None:
                    ms = (time.perf_counter() - start) * 1000
                    self._access_log.record(_client_of(call.peer), "POST", path, status, ms, call.request_id)

        def rpc(request: Any, context: grpc.ServicerContext) -> Any:
            call = _Call(context)
            future = asyncio.run_coroutine_threadsafe(on_loop(request, call), self.loop)
            self.pending.add(future)
            context.add_callback(future.cancel)  # the client gave up: the batcher skips the call
            try:
                response, failure = future.result()
            except concurrent.futures.CancelledError:
                failure = (grpc.StatusCode.CANCELLED, "cancelled")
            finally:
                self.pending.discard(future)
            context.set_trailing_metadata((("x-request-id", call.request_id),))
            if failure is not None:
                context.abort(*failure)
            return response

        return rpc

    # --- the RPCs --------------------------------------------------------------------------------

    async def _ServerLive(self, request: pb.ServerLiveRequest, call: _Call) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _ServerReady(self, request: pb.ServerReadyRequest, call: _Call) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=not self.state.draining and self.registry.all_ready())

    async def _ModelReady(self, request: pb.ModelReadyRequest, call: _Call) -> pb.ModelReadyResponse:
        if request.version:
            raise NotSupported(_VERSIONS)
        call.model = request.name
        return pb.ModelReadyResponse(ready=self.registry.get(request.name).ready)

    async def _ServerMetadata(
        self, request: pb.ServerMetadataRequest, call: _Call
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name="kserve-custom-runtime", version=version(), extensions=["model_repository_extension"]
        )

    async def _ModelMetadata(self, request: pb.ModelMetadataRequest, call: _Call) -> pb.ModelMetadataResponse:
        if request.version:
            raise NotSupported(_VERSIONS)
        call.model = request.name
        model = self.registry.get(request.name)
        meta = model.metadata()
        response = pb.ModelMetadataResponse(name=model.name, platform=meta.platform)
        for specs, field in ((meta.inputs, response.inputs), (meta.outputs, response.outputs)):
            for spec in specs:
                field.add(name=spec.name, datatype=spec.datatype, shape=spec.shape)
        return response

    async def _ModelInfer(self, request: pb.ModelInferRequest, call: _Call) -> pb.ModelInferResponse:
        if request.model_version:
            raise NotSupported(_VERSIONS)
        dataplane = self.dataplane
        model = dataplane.model(request.model_name)
        name = call.model = model.name
        metrics = dataplane.metrics
        start = time.perf_counter()
        try:
            params = grpc_codec.parameters(request.parameters) if request.parameters else None
            frame, binary_output = inference.request_options(params)
            tensors = grpc_codec.decode_inputs(request, self._max_elements)
            x = inference.model_input(tensors, frame)
            params_of = grpc_codec.parameters
            requested = [(o.name, params_of(o.parameters) if o.parameters else None) for o in request.outputs]
            wanted = inference.requested_outputs(model, requested)
        finally:
            metrics.child(metrics.preprocess, name).observe(time.perf_counter() - start)
        results = await inference.infer(dataplane, model, x, wanted)
        start = time.perf_counter()
        default = bool(request.raw_input_contents) if binary_output is None else binary_output
        outputs = [(n, a, default if w.binary is None else w.binary) for n, a, w in results]
        response = grpc_codec.encode_response(name, request.id or str(uuid.uuid4()), outputs)
        metrics.child(metrics.postprocess, name).observe(time.perf_counter() - start)
        return response

    async def _RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, call: _Call
    ) -> pb.RepositoryModelLoadResponse:
        # KServe's request names the model in field 1; Triton's in field 2 (field 1 is the repository).
        name = grpc_codec.unknown_string(request, 2) or request.model_name
        call.model = name
        await self.repository.load(name)
        return pb.RepositoryModelLoadResponse(model_name=name, isLoaded=True)

    async def _RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, call: _Call
    ) -> pb.RepositoryModelUnloadResponse:
        name = grpc_codec.unknown_string(request, 2) or request.model_name
        call.model = name
        await self.repository.unload(name)
        return pb.RepositoryModelUnloadResponse(model_name=name, isUnloaded=True)


class HealthServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """``grpc.health.v1`` for Kubernetes gRPC probes, computed at each call: ``""`` and the inference
    service are the server's readiness (every model loaded, not draining); ``liveness`` is always
    SERVING; a model's name is that model's readiness; anything else is NOT_FOUND."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._watches = threading.BoundedSemaphore(MAX_WATCHES)

    def _status(self, service: str) -> int | None:
        answer = health_pb2.HealthCheckResponse
        serving: int = answer.SERVING
        not_serving: int = answer.NOT_SERVING
        if service in ("liveness", "live"):
            return serving
        if service in ("", "readiness", "ready", SERVICE):
            ready = not self.state.draining and self.state.registry.all_ready()
            return serving if ready else not_serving
        try:
            model = self.state.registry.get(service)
        except KcrError:
            return None
        return serving if model.ready and not self.state.draining else not_serving

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        status = self._status(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        # A watch holds a pool thread for as long as it lasts: a few at a time, or they would
        # starve the inference calls.
        if not self._watches.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_WATCHES} health watches at a time"
            )
        try:
            last = None
            while context.is_active():
                status = self._status(request.service)
                if status is None:
                    status = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
                if status != last:
                    last = status
                    yield health_pb2.HealthCheckResponse(status=status)
                if self.state.draining:
                    return
                time.sleep(0.5)
        finally:
            self._watches.release()


class GrpcService:
    """The gRPC server as a lifespan service (``server.state.Service``)."""

    def __init__(self, state: ServerState, dataplane: DataPlane, repository: Repository) -> None:
        self.state = state
        self.dataplane = dataplane
        self.repository = repository
        self.server: grpc.Server | None = None
        self.servicer: InferenceServicer | None = None
        self.port: int | None = None
        self._stopped: threading.Event | None = None

    async def start(self) -> None:
        settings = self.state.settings
        options = [
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            # Combines writes of concurrent calls: measured +15-20 % calls/s at concurrency 64.
            ("grpc.optimization_target", "throughput"),
        ]
        # 64 threads: in one-off runs at concurrency 64 (h2load, LogisticRegression), 8 threads gave
        # ~3,500 calls/s, 32 ~4,400, 64 ~4,500. Calls beyond ``MAX_CALLS`` in flight get
        # RESOURCE_EXHAUSTED, as REST's ``--max-connections`` bounds what waits in memory.
        pool = concurrent.futures.ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="kcr-grpc")
        server = grpc.server(pool, options=options, maximum_concurrent_rpcs=MAX_CALLS)
        self.servicer = InferenceServicer(
            self.state, self.dataplane, self.repository, asyncio.get_running_loop()
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self.servicer, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(self.state), server)
        address = f"{settings.host}:{settings.grpc_port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise KcrError(f"Cannot serve gRPC on {address}: {exc}") from None
        server.start()
        self.server = server
        logger.info("gRPC (Open Inference Protocol) on %s:%s", settings.host, self.port)

    def drain(self) -> None:
        """Stop taking calls now; those in flight get ``--graceful-timeout`` to finish."""
        if self.server is not None and self._stopped is None:
            self._stopped = self.server.stop(self.state.settings.graceful_timeout)

    async def stop(self) -> None:
        self.drain()
        if self._stopped is not None:
            # The loop keeps running meanwhile: the calls in flight are finished on it.
            await asyncio.get_running_loop().run_in_executor(None, self._stopped.wait)
        if self.servicer is not None:
            for future in list(self.servicer.pending):
                future.cancel()


def _client_of(peer: str | None) -> str:
    """The address in a gRPC peer string: ``ipv4:127.0.0.1:5000``, ``ipv6:%5B::1%5D:5000``."""
    if not peer or ":" not in peer:
        return "-"
    address = unquote(peer.split(":", 1)[1]).rsplit(":", 1)[0]
    return address.strip("[]") or "-"
