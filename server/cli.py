"""``kcr`` / ``python -m server``: argparse with KServe's flag spellings → Settings → models → uvicorn.

Drop-in for KServe's sklearnserver: the args of its ClusterServingRuntime (``--model_name=...
--model_dir=/mnt/models --http_port=8080``) work unchanged, and unknown flags are ignored with a
warning (KServe uses ``parse_known_args`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType, ModuleType
from typing import Any

from server.deferred_imports import defer
from server.errors import GRPC_INSTALL, KcrError, ModelLoadError
from server.settings import Settings

logger = logging.getLogger("kcr")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _bool(value: str | None) -> bool:
    if value is None:
        return True
    return value.strip().lower() in ("1", "true", "t", "yes", "y", "on")


def build_parser(runtime: ModuleType | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kcr",
        description="Serve models over KServe v1/v2 (sklearn) or the OpenAI API (ollama).",
        usage="kcr [serve] [sklearn|ollama] [options]",
    )
    g = p.add_argument_group("server (KServe spellings accepted)")
    g.add_argument("--model-name", "--model_name", dest="model_name", help="name clients use for the model")
    g.add_argument("--model-dir", "--model_dir", dest="model_dir", help="default /mnt/models")
    g.add_argument("--http-port", "--http_port", dest="http_port", type=int, help="default 8080")
    g.add_argument("--host", dest="host", help="bind address, default 0.0.0.0")
    g.add_argument("--workers", type=int, help="uvicorn worker processes, default 1")
    g.add_argument(
        "--timeout-keep-alive",
        "--timeout_keep_alive",
        dest="timeout_keep_alive",
        type=int,
        help="seconds an idle keep-alive connection stays open, default 65 (as KServe)",
    )
    g.add_argument(
        "--enable-grpc",
        "--enable_grpc",
        dest="enable_grpc",
        nargs="?",
        const="true",
        type=str,
        help="serve the Open Inference Protocol over gRPC too, on --grpc-port (default off, unlike "
        "KServe: +0.1 s cold start and +14 MB; needs the grpc extra)",
    )
    g.add_argument("--grpc-port", "--grpc_port", dest="grpc_port", type=int, help="default 8081")
    g.add_argument("--log-level", "--log_level", dest="log_level", help="debug, info, warning, error")
    g.add_argument(
        "--access-log",
        dest="access_log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one log line per request (default on)",
    )
    g.add_argument(
        "--graceful-timeout",
        dest="graceful_timeout",
        type=float,
        help="seconds to finish in-flight requests after SIGTERM, default 30",
    )
    g.add_argument("--max-body-bytes", dest="max_body_bytes", type=int, help="largest request body")
    g.add_argument(
        "--header-timeout",
        dest="header_timeout",
        type=float,
        help="seconds a client has to send a request's headers, default 10 (0: no limit)",
    )
    g.add_argument(
        "--body-timeout",
        dest="body_timeout",
        type=float,
        help="seconds a request body may stall between chunks before a 408, default 30 (0: no limit)",
    )
    g.add_argument(
        "--max-connections",
        dest="max_connections",
        type=int,
        help="open connections beyond this get a 503 and are closed, default 1000",
    )
    g.add_argument(
        "--max-batch-size",
        dest="max_batch_size",
        type=int,
        help="micro-batching: most requests merged into one predict call (1 = off)",
    )
    g.add_argument(
        "--max-batch-wait-ms",
        dest="max_batch_wait_ms",
        type=float,
        help="micro-batching: longest a request waits for company (default 0: only merge "
        "requests that are already queued)",
    )
    g.add_argument(
        "--inline-predict-ms",
        dest="inline_predict_ms",
        type=float,
        help="predict calls that typically take less CPU time than this run on the event loop, "
        "longer ones in a worker thread (default 20)",
    )
    if runtime is not None:
        runtime.add_arguments(p.add_argument_group(f"{runtime.__name__.split('.')[-1]} runtime"))
    return p


_CORE_FIELDS = set(Settings.model_fields)


def parse(argv: Sequence[str], environ: dict[str, str]) -> tuple[Settings, argparse.Namespace, ModuleType]:
    from runtimes import RUNTIMES, load_runtime

    args = list(argv)
    if args and args[0] == "serve":
        args.pop(0)
    runtime_name = environ.get("KCR_RUNTIME", "sklearn")
    if args and args[0] in RUNTIMES:
        runtime_name = args.pop(0)
    runtime = load_runtime(runtime_name)
    parser = build_parser(runtime)
    options, unknown = parser.parse_known_args(args)
    if unknown:
        logger.warning("ignoring unknown arguments: %s", " ".join(unknown))
    if options.enable_grpc is not None:
        options.enable_grpc = _bool(options.enable_grpc)
    core = {k: v for k, v in vars(options).items() if k in _CORE_FIELDS and v is not None}
    settings = Settings.from_env(environ, runtime=runtime_name, **core)
    if settings.enable_grpc:
        from server.app import grpc_installed

        if not grpc_installed():
            raise KcrError(f"--enable-grpc: grpcio is not installed ({GRPC_INSTALL})")
    return settings, options, runtime


def _one_line(exc: Exception) -> str:
    """A pydantic ValidationError (settings) as one line: ``field: message; ...``."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors():
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT, stream=sys.stderr, force=True)


async def _load_eager(models: Sequence[Any]) -> dict[str, float]:
    times = {}
    for model in models:
        if model.load_before_serving:
            start = time.perf_counter()
            await model.load()
            times[model.name] = time.perf_counter() - start
            logger.info("model %s loaded in %.3fs", model.name, times[model.name])
    return times


def build_models(
    settings: Settings, options: argparse.Namespace, runtime: ModuleType
) -> tuple[list[Any], dict[str, float]]:
    """Discover and, for fast runtimes, load models before binding; raises ModelLoadError."""
    models = runtime.build(settings, options)
    return models, asyncio.run(_load_eager(models))


def main(argv: Sequence[str] | None = None) -> int:
    # Start-up allocates ~1M long-lived objects (numpy, scipy, sklearn, FastAPI): collecting during
    # those imports finds next to nothing and costs ~0.1 s of cold start. The app's lifespan freezes
    # everything and turns the collector back on just before serving.
    gc.disable()
    argv = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ)
    _configure_logging(environ.get("KCR_LOG_LEVEL", environ.get("KSERVE_LOGLEVEL", "info")))
    try:
        settings, options, runtime = parse(argv, environ)
    except (ValueError, KcrError) as exc:
        logger.error("%s", _one_line(exc))
        return 2
    _configure_logging(settings.log_level)
    try:
        models, load_times = build_models(settings, options, runtime)
    except ModelLoadError as exc:
        logger.error("%s", exc)
        return 1
    if settings.workers > 1:
        # The models loaded here only proved they load; each worker process loads its own copy.
        del models
        gc.enable()  # this process only supervises; each worker's lifespan does its own freeze
        return _serve_workers(settings, options)
    return serve(settings, models, load_times)


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn with our HTTP protocol (``server.web.protocol``: header cap, read timeouts, connection
    cap, a SIGTERM that answers what has started arriving). The dispatcher writes the access log."""
    from server.web.protocol import KcrHttpProtocol, Limits

    Limits.header_timeout = settings.header_timeout
    Limits.body_timeout = settings.body_timeout
    Limits.max_connections = settings.max_connections
    return {
        "http": KcrHttpProtocol,
        "host": settings.host,
        "port": settings.http_port,
        "timeout_keep_alive": settings.timeout_keep_alive,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }


def _import_uvicorn() -> None:
    """Import uvicorn without its command line (``uvicorn.main``: click, the supervisors; ~15 ms and
    ~1.7 MB), which serving from Python never uses. The package's ``__init__`` re-exports
    ``main``/``run``/``Server`` from it; those names become forwarders until something calls them
    (``uvicorn.run`` in ``--workers`` mode does). We use ``uvicorn.server.Server`` directly, since a
    forwarder cannot be subclassed."""
    defer("uvicorn.main", {"main", "run", "Server"})
    import uvicorn.config
    import uvicorn.server  # noqa: F401


def serve(settings: Settings, models: Sequence[Any], load_times: dict[str, float] | None = None) -> int:
    _import_uvicorn()
    import uvicorn.config

    from server.app import create_app

    app = create_app(settings, models, load_times)
    server = _DrainingServer(uvicorn.config.Config(app, **_uvicorn_options(settings)), app)
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    server.run()
    return 1 if app.state.fatal else 0


class _DrainingServer:
    """uvicorn.Server that flips readiness to false the moment SIGTERM/SIGINT arrives."""

    def __new__(cls, config: Any, app: Any) -> Any:
        import uvicorn.server

        class Server(uvicorn.server.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                if not app.state.draining:
                    logger.info("received %s: draining in-flight requests", signal.Signals(sig).name)
                app.state.draining = True
                super().handle_exit(sig, frame)
                # A drained shutdown is a success: exit 0 instead of re-raising the signal.
                self._captured_signals.clear()

        return Server(config)


# --- multi-process mode -------------------------------------------------------------------------

_WORKER_ENV = "KCR_WORKER_CONFIG"


def _serve_workers(settings: Settings, options: argparse.Namespace) -> int:
    """``--workers N``: every worker process builds its own copy of the models (as KServe does)."""
    import uvicorn

    os.environ[_WORKER_ENV] = json.dumps(
        {"settings": settings.model_dump(mode="json"), "options": vars(options)}
    )
    uvicorn.run("server.cli:worker_app", factory=True, workers=settings.workers, **_uvicorn_options(settings))
    return 0


def worker_app() -> Any:
    from runtimes import load_runtime
    from server.app import create_app

    payload = json.loads(os.environ[_WORKER_ENV])
    settings = Settings(**payload["settings"])
    _configure_logging(settings.log_level)
    _uvicorn_options(settings)  # this process's protocol limits
    runtime = load_runtime(settings.runtime)
    # Called inside the worker's running event loop: the app's lifespan loads the models.
    return create_app(settings, runtime.build(settings, argparse.Namespace(**payload["options"])))
