"""The Ollama runtime: a generative model backed by Ollama's native API.

Two modes: *external* (``--ollama-host URL``) and *managed* (the default without a host: the runtime
runs ``ollama serve`` on 127.0.0.1, restarts it with back-off when it dies, stops it on shutdown).
A keeper task owns readiness: Ollama answering, model present (pulled unless ``--no-pull``), model
warmed with the configured ``keep_alive``/``num_ctx``. It never sees HTTP nor a protocol: neutral
``server.generation`` requests in, its events and vectors out, ``server.errors`` types raised.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from runtimes.ollama_process import OllamaProcess
from runtimes.ollama_serving import OllamaServing
from runtimes.ollama_upstream import Limiter, Upstream, translate
from server.errors import KcrError, ModelLoadError, UpstreamUnavailable
from server.generation import ServedModel
from server.model import Kind, ModelMetadata
from server.settings import Settings

logger = logging.getLogger("kcr.ollama")

DEFAULT_MODEL = "qwen2.5:0.5b"
DEFAULT_HOST = "http://127.0.0.1:11434"


@dataclass(frozen=True)
class OllamaOptions:
    model: str = DEFAULT_MODEL
    served_name: str | None = None
    embedding_model: str | None = None
    host: str = DEFAULT_HOST
    managed: bool = True
    binary: str = "ollama"
    pull: bool = True
    keep_alive: float | str = -1
    num_ctx: int | None = None
    max_concurrency: int = 1
    max_queue: int = 32
    queue_timeout: float = 30.0
    first_token_timeout: float = 60.0
    request_timeout: float = 600.0
    connect_timeout: float = 5.0
    start_timeout: float = 60.0
    health_interval: float = 2.0


def add_arguments(group: argparse._ArgumentGroup) -> None:
    a = group.add_argument
    a(
        "--model",
        dest="ollama_model",
        default=os.environ.get("KCR_OLLAMA_MODEL", DEFAULT_MODEL),
        help=f"Ollama tag, full (default: $KCR_OLLAMA_MODEL, else {DEFAULT_MODEL})",
    )
    a("--served-model-name", dest="served_model_name", help="name clients send (alias for the tag)")
    a("--embedding-model", dest="embedding_model", help="Ollama tag served by /v1/embeddings")
    a("--ollama-host", dest="ollama_host", help="external Ollama URL; without it Ollama is managed")
    a("--ollama-mode", dest="ollama_mode", choices=["managed", "external"], help="override the mode")
    a("--ollama-bin", dest="ollama_bin", default="ollama", help="managed mode: the ollama executable")
    a("--no-pull", dest="pull", action="store_false", default=True, help="fail instead of pulling")
    a("--keep-alive", dest="keep_alive", default="-1", help="Ollama keep_alive (default -1: stay loaded)")
    a("--num-ctx", dest="num_ctx", type=int, help="context window sent as options.num_ctx")
    a("--max-concurrency", dest="max_concurrency", type=int, default=1, help="requests upstream at once")
    a("--max-queue", dest="max_queue", type=int, default=32, help="requests waiting; beyond: 503")
    a("--queue-timeout", dest="queue_timeout", type=float, default=30.0, help="longest wait for a slot, s")
    a("--first-token-timeout", dest="first_token_timeout", type=float, default=60.0, help="seconds")
    a("--request-timeout", dest="request_timeout", type=float, default=600.0, help="total, seconds")
    a("--ollama-start-timeout", dest="start_timeout", type=float, default=60.0, help="seconds")


def _full_tag(name: str) -> str:
    if ":" not in name.rsplit("/", 1)[-1]:
        logger.warning("model %r has no tag; using %s:latest (prefer an explicit tag)", name, name)
        return f"{name}:latest"
    return name


def _keep_alive(raw: str) -> float | str:
    try:
        value = float(raw)
    except ValueError:
        return raw  # a Go duration such as "30m"
    return int(value) if value.is_integer() else value


def options_from(settings: Settings, ns: argparse.Namespace) -> OllamaOptions:
    mode = ns.ollama_mode or ("external" if ns.ollama_host else "managed")
    host = ns.ollama_host or DEFAULT_HOST
    if "://" not in host:
        host = "http://" + host
    embedding = _full_tag(ns.embedding_model) if ns.embedding_model else None
    return OllamaOptions(
        model=_full_tag(ns.ollama_model),
        served_name=ns.served_model_name or settings.model_name,
        embedding_model=embedding,
        host=host,
        managed=mode == "managed",
        binary=ns.ollama_bin,
        pull=ns.pull,
        keep_alive=_keep_alive(str(ns.keep_alive)),
        num_ctx=ns.num_ctx,
        max_concurrency=ns.max_concurrency,
        max_queue=ns.max_queue,
        queue_timeout=ns.queue_timeout,
        first_token_timeout=ns.first_token_timeout,
        request_timeout=ns.request_timeout,
        start_timeout=ns.start_timeout,
    )


def build(settings: Settings, options: argparse.Namespace) -> list[OllamaModel]:
    # httpx logs every request at INFO: with a health check every 2 s that drowns the access log.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
    return [OllamaModel(options_from(settings, options))]


class OllamaModel(OllamaServing):
    kind: ClassVar[Kind] = "generative"
    load_before_serving: ClassVar[bool] = False

    def __init__(self, opts: OllamaOptions) -> None:
        self.opts = opts
        self.name = opts.served_name or opts.model
        self._tags = {self.name: opts.model}
        if opts.embedding_model:
            self._tags.setdefault(opts.embedding_model, opts.embedding_model)
        self._created: dict[str, int] = {}
        self._limiter = Limiter(opts.max_concurrency, opts.max_queue, opts.queue_timeout)
        self.upstream: Upstream | None = None
        self.process: OllamaProcess | None = None
        self._ready = False
        self._keeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(platform="ollama")

    def served_models(self) -> list[ServedModel]:
        return [ServedModel(i, self._created.get(t, 0), "ollama") for i, t in self._tags.items()]

    def queue_stats(self) -> tuple[int, int]:
        return self._limiter.in_flight, self._limiter.queued

    async def load(self) -> None:
        """Start the keeper and return once the model first answers (readiness true)."""
        self.upstream = Upstream(
            self.opts.host, connect_timeout=self.opts.connect_timeout, read_timeout=self.opts.request_timeout
        )
        if self.opts.managed:
            bind = urlsplit(self.opts.host).netloc
            env = {"OLLAMA_NUM_PARALLEL": str(self.opts.max_concurrency)}
            self.process = OllamaProcess(self.opts.binary, bind, env)
        first_ready = asyncio.get_running_loop().create_future()
        self._keeper = asyncio.create_task(self._keep(first_ready), name=f"ollama-keeper-{self.name}")
        await first_ready

    async def unload(self) -> None:
        self._ready = False
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keeper
        if self.process is not None:
            await self.process.stop()
        if self.upstream is not None:
            await self.upstream.close()

    async def _keep(self, first_ready: asyncio.Future[None]) -> None:
        backoff = 0.5
        while True:
            try:
                if self.process is not None and not self.process.running:
                    await self.process.start()
                await self._wait_for_ollama()
                await self._ensure_models()
                self._ready = True
                backoff = 0.5
                logger.info("model %s (%s) is ready", self.name, self.opts.model)
                if not first_ready.done():
                    first_ready.set_result(None)
                await self._watch()
            except asyncio.CancelledError:
                raise
            except ModelLoadError as exc:
                self._ready = False
                if first_ready.done():
                    logger.error("%s", exc)
                else:
                    first_ready.set_exception(exc)  # load() raises it; the core logs it once
                return
            except Exception as exc:
                logger.warning("ollama not usable (%s); retrying in %.1fs", exc, backoff)
            self._ready = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _wait_for_ollama(self) -> None:
        assert self.upstream is not None
        deadline = time.monotonic() + self.opts.start_timeout
        while True:
            try:
                version = await self.upstream.version()
                logger.info("ollama %s answering at %s", version, self.opts.host)
                return
            except Exception as exc:
                if self.process is not None and not self.process.running:
                    raise UpstreamUnavailable(f"ollama exited with {self.process.returncode}") from exc
                if self.process is not None and time.monotonic() > deadline:
                    await self.process.stop(timeout=2)
                    raise UpstreamUnavailable("ollama did not start in time") from exc
                await asyncio.sleep(0.2)

    async def _ensure_models(self) -> None:
        assert self.upstream is not None
        client = self.upstream.client
        listed = await asyncio.wait_for(client.list(), 30)
        present = {m.model: m for m in listed.models}
        for tag in dict.fromkeys(self._tags.values()):
            if tag not in present:
                if not self.opts.pull:
                    raise ModelLoadError(f"model {tag} is not in Ollama and --no-pull is set")
                await self._pull(tag)
            elif (modified := present[tag].modified_at) is not None:
                self._created[tag] = int(modified.timestamp())
        await asyncio.wait_for(
            client.chat(
                model=self.opts.model, messages=[], keep_alive=self.opts.keep_alive, options=self._load_opts()
            ),
            self.opts.request_timeout,
        )
        if self.opts.embedding_model and self.opts.embedding_model != self.opts.model:
            await asyncio.wait_for(
                client.embed(
                    model=self.opts.embedding_model, input="warm-up", keep_alive=self.opts.keep_alive
                ),
                self.opts.request_timeout,
            )

    def _load_opts(self) -> dict[str, Any] | None:
        return {"num_ctx": self.opts.num_ctx} if self.opts.num_ctx else None

    async def _pull(self, tag: str) -> None:
        assert self.upstream is not None
        logger.info("pulling %s", tag)
        last_log, last_status, last_pct = 0.0, "", -10
        try:
            async for p in await self.upstream.client.pull(tag, stream=True):
                pct = int(100 * p.completed / p.total) if p.total and p.completed else -1
                now = time.monotonic()
                if p.status != last_status or pct >= last_pct + 10 or now - last_log > 5:
                    size = (
                        f" {pct}% ({(p.completed or 0) / 1e6:.1f}/{p.total / 1e6:.1f} MB)" if p.total else ""
                    )
                    logger.info("pull %s: %s%s", tag, p.status, size)
                    last_log, last_status, last_pct = now, p.status or "", pct
        except Exception as exc:
            err = translate(exc, tag)
            raise ModelLoadError(f"pulling {tag} failed: {err}") from exc

    async def _watch(self) -> None:
        """Return when Ollama stops answering (two failed checks) or the managed process exits."""
        assert self.upstream is not None
        failures = 0
        while True:
            waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wake.wait())]
            if self.process is not None:
                waiters.append(asyncio.create_task(self.process.wait()))
            try:
                await asyncio.wait(
                    waiters, timeout=self.opts.health_interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waiters:
                    w.cancel()
            self._wake.clear()
            if self.process is not None and not self.process.running:
                self._ready = False
                logger.error("ollama exited (code %s); restarting", self.process.returncode)
                return
            try:
                await self.upstream.version()
                failures = 0
            except Exception:
                failures += 1
                if failures >= 2:
                    self._ready = False
                    logger.error("ollama stopped answering at %s", self.opts.host)
                    return

    def _on_failure(self, err: KcrError) -> None:
        if isinstance(err, UpstreamUnavailable) or "Connection to Ollama lost" in err.message:
            self._wake.set()
