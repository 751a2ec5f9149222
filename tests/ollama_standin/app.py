"""ASGI app speaking Ollama's native REST API over a real GGUF model (llama-cpp-python).

``create_app(config)`` returns the ASGI callable. Model endpoints: ``/api/chat``, ``/api/generate``,
``/api/embed``, ``/api/embeddings``; metadata: ``/``, ``/api/version``, ``/api/tags``, ``/api/show``,
``/api/ps``, ``/api/pull``, ``/api/delete``. Test control (not part of Ollama):
``GET/POST/DELETE /_standin/faults``, ``GET/DELETE /_standin/events``, ``GET /_standin/state``.
See ``faults.py`` for the fault keys and events, and ``prompt.py`` for the forced-output markers
(``[[call:NAME {json}]]``, ``[[say:TEXT]]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request

from . import prompt as P
from .config import StandinConfig, parse_keep_alive
from .engine import NUM_KEEP, GenJob, LlamaEngine, PromptError, too_long_message
from .faults import BUSY_MESSAGE, EventLog, Faults
from .gguf_meta import GGUFInfo, read_gguf
from .model_file import ensure_gguf, gguf_digest

log = logging.getLogger("ollama_standin")

JSON_CT = b"application/json; charset=utf-8"
NDJSON_CT = b"application/x-ndjson"
TEXT_CT = b"text/plain; charset=utf-8"

FLOAT_OPTS = {
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "tfs_z",
    "mirostat_tau",
    "mirostat_eta",
}
INT_OPTS = {
    "num_predict",
    "top_k",
    "seed",
    "num_ctx",
    "num_keep",
    "repeat_last_n",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "mirostat",
    "draft_num_predict",
}
BOOL_OPTS = {
    "numa",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mmap",
    "use_mlock",
    "embedding_only",
    "penalize_newline",
}
SAMPLING_DEFAULTS = {
    "temperature": 0.8,
    "top_p": 0.9,
    "top_k": 40,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
THINK_LEVELS = {"low", "medium", "high", "max"}


class HTTPError(Exception):
    """An error answered with a JSON body and a status (raised before any byte of the body is sent)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def now_rfc3339_ns() -> str:
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def local_iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat()


def normalize_name(name: str) -> str:
    n = name.strip().lower()
    for prefix in ("registry.ollama.ai/library/", "library/"):
        if n.startswith(prefix):
            n = n[len(prefix) :]
    last = n.rsplit("/", 1)[-1]
    if ":" not in last:
        n += ":latest"
    return n


# ----------------------------------------------------------------------------------------------------- ASGI
class Resp:
    """A complete response."""

    def __init__(self, status: int, body: bytes = b"", content_type: bytes | None = JSON_CT):
        self.status = status
        self.body = body
        self.content_type = content_type

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = [(b"content-length", str(len(self.body)).encode())]
        if self.content_type:
            headers.append((b"content-type", self.content_type))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": "http.response.body", "body": body, "more_body": False})


def jresp(obj: Any, status: int = 200) -> Resp:
    return Resp(status, dumps(obj))


def eresp(status: int, message: str) -> Resp:
    return Resp(status, dumps({"error": message}))


class WatchedResponse:
    """Streams chunks from an async iterator while watching for the client's disconnect.

    The status line is sent lazily with the first chunk, so an ``HTTPError`` raised before the first chunk
    becomes a normal JSON error response. On ``http.disconnect`` the producer task is cancelled (which stops
    generation) and a ``disconnect`` event is recorded.
    """

    def __init__(
        self,
        body: AsyncIterator[bytes],
        content_type: bytes,
        on_disconnect: Callable[[int], None],
    ):
        self.body = body
        self.content_type = content_type
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        sent = 0
        disconnected = False

        async def produce() -> None:
            nonlocal sent
            started = False
            try:
                async for chunk in self.body:
                    if not started:
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 200,
                                "headers": [(b"content-type", self.content_type)],
                            }
                        )
                        started = True
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += 1
            except HTTPError as e:
                if started:
                    await send({"type": "http.response.body", "body": dumps({"error": e.message}) + b"\n"})
                    return
                await eresp(e.status, e.message)(scope, receive, send)
                return
            if not started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", self.content_type)],
                    }
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        task = asyncio.ensure_future(produce())

        async def watch() -> None:
            nonlocal disconnected
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    if not task.done():
                        disconnected = True
                        self.on_disconnect(sent)
                        task.cancel()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not disconnected:
                task.cancel()
                raise
        except OSError:
            if not disconnected:
                disconnected = True
                self.on_disconnect(sent)
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.body.aclose()


# ----------------------------------------------------------------------------------------------------- models
class ModelEntry:
    def __init__(self, name: str, kind: str, engine: LlamaEngine, info: GGUFInfo, path: Path):
        self.name = name
        self.kind = kind  # "chat" or "embed"
        self.engine = engine
        self.info = info
        self.path = path

    @property
    def capabilities(self) -> list[str]:
        return ["completion", "tools"] if self.kind == "chat" else ["embedding"]

    @property
    def registry_name(self) -> str:
        return f"registry.ollama.ai/library/{self.name}"


class Standin:
    def __init__(self, config: StandinConfig):
        self.config = config
        self.events = EventLog()
        self.faults = Faults(config.faults)
        path = Path(config.gguf_path) if config.gguf_path else ensure_gguf(config.models_dir)
        self.path = path
        self.info = read_gguf(path)
        self.size = path.stat().st_size
        self.mtime = path.stat().st_mtime
        self._digest: str | None = None
        self.chat_engine = LlamaEngine(
            str(path), config.num_ctx, config.n_threads, self.events, embedding=False, label="chat"
        )
        self.embed_engine = LlamaEngine(
            str(path), config.embed_num_ctx, config.n_threads, self.events, embedding=True, label="embed"
        )
        self.chat_engine.keep_alive = self.embed_engine.keep_alive = config.keep_alive
        self.models: dict[str, ModelEntry] = {}
        for n in config.chat_models:
            self.models[normalize_name(n)] = ModelEntry(n, "chat", self.chat_engine, self.info, path)
        for n in config.embed_models:
            self.models[normalize_name(n)] = ModelEntry(n, "embed", self.embed_engine, self.info, path)
        if config.absent is True:
            self.absent = set(self.models)
        elif config.absent:
            self.absent = {normalize_name(n) for n in config.absent}
        else:
            self.absent = set()
        self.pulled_at: dict[str, float] = {}
        self.ids = itertools.count(1)
        self.in_flight = 0
        self.routes: dict[str, dict[str, Callable[[Request], Awaitable[Any]]]] = {
            "/": {"GET": self.root, "HEAD": self.root},
            "/api/version": {"GET": self.version, "HEAD": self.version},
            "/api/tags": {"GET": self.tags, "HEAD": self.tags},
            "/api/ps": {"GET": self.ps},
            "/api/show": {"POST": self.show},
            "/api/pull": {"POST": self.pull},
            "/api/delete": {"DELETE": self.delete},
            "/api/chat": {"POST": self.chat},
            "/api/generate": {"POST": self.generate},
            "/api/embed": {"POST": self.embed},
            "/api/embeddings": {"POST": self.embeddings},
            "/_standin/faults": {
                "GET": self.get_faults,
                "POST": self.set_faults,
                "DELETE": self.reset_faults,
            },
            "/_standin/events": {"GET": self.get_events, "DELETE": self.clear_events},
            "/_standin/state": {"GET": self.state},
        }
        if config.preload:
            self.chat_engine.preload_async()

    # ------------------------------------------------------------------ ASGI entry
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if len(path) > 1:
            path = path.rstrip("/")
        methods = self.routes.get(path)
        if methods is None:
            await Resp(404, b"404 page not found", TEXT_CT)(scope, receive, send)
            return
        handler = methods.get(scope["method"])
        if handler is None:
            await Resp(405, b"405 method not allowed", TEXT_CT)(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except HTTPError as e:
            response = eresp(e.status, e.message)
        except Exception as e:  # pragma: no cover - defensive
            log.exception("handler failed")
            response = eresp(500, str(e))
        await response(scope, receive, send)

    # ------------------------------------------------------------------ helpers
    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = gguf_digest(self.path)
        return self._digest

    def lookup(self, name: Any) -> ModelEntry | None:
        if not isinstance(name, str) or not name:
            return None
        key = normalize_name(name)
        if key in self.absent:
            return None
        return self.models.get(key)

    async def body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            raise HTTPError(400, "missing request body")
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise HTTPError(400, f"invalid character in JSON body: {e.msg}") from e
        if not isinstance(obj, dict):
            raise HTTPError(400, "json: cannot unmarshal into Go value of type api.Request")
        return obj

    def details(self, entry: ModelEntry) -> dict[str, Any]:
        arch = self.info.architecture
        return {
            "parent_model": "",
            "format": "gguf",
            "family": arch,
            "families": [arch],
            "parameter_size": self.info.parameter_size,
            "quantization_level": self.info.quantization_level,
            "context_length": self.info.context_length,
            "embedding_length": self.info.embedding_length,
        }

    def modified(self, entry: ModelEntry) -> float:
        return self.pulled_at.get(normalize_name(entry.name), self.mtime)

    def listed(self) -> list[ModelEntry]:
        return [e for k, e in self.models.items() if k not in self.absent]

    def keep_alive_of(self, body: dict[str, Any]) -> float | None:
        if "keep_alive" not in body or body["keep_alive"] is None:
            return None
        try:
            return parse_keep_alive(body["keep_alive"])
        except ValueError as e:
            raise HTTPError(400, str(e)) from e

    def check_busy(self, endpoint: str, rid: int) -> None:
        if self.faults.take_busy(endpoint):
            self.events.add("fault", id=rid, fault="busy")
            raise HTTPError(503, BUSY_MESSAGE)
        engine_waiting = self.chat_engine.waiting + self.embed_engine.waiting
        if engine_waiting >= self.config.max_queue:
            raise HTTPError(503, BUSY_MESSAGE)

    @staticmethod
    def validate_think(body: dict[str, Any], name: str) -> None:
        think = body.get("think")
        if think is None or think is False:
            return
        if think is True or (isinstance(think, str) and think in THINK_LEVELS):
            raise HTTPError(400, f'"{name}" does not support thinking')
        if isinstance(think, str) and think in ("", "false", "none"):
            return
        raise HTTPError(400, f"invalid think value: {json.dumps(think)}")

    @staticmethod
    def validate_logprobs(body: dict[str, Any]) -> None:
        tl = body.get("top_logprobs")
        if tl is not None and (isinstance(tl, bool) or not isinstance(tl, int) or not 0 <= tl <= 20):
            raise HTTPError(400, "top_logprobs must be between 0 and 20")

    @staticmethod
    def logprobs_of(body: dict[str, Any]) -> int | None:
        """Ollama's ``logprobs: true`` (+ ``top_logprobs``): alternatives per token; None when off."""
        if body.get("logprobs") is not True:
            return None
        return int(body.get("top_logprobs") or 0)

    @staticmethod
    def parse_options(body: dict[str, Any]) -> tuple[dict[str, Any], int | None, int | None]:
        """Validate ``options``; returns (llama-cpp sampling kwargs, max_tokens, num_ctx)."""
        opts = body.get("options") or {}
        if not isinstance(opts, dict):
            raise HTTPError(400, "json: cannot unmarshal options")
        clean: dict[str, Any] = {}
        for k, v in opts.items():
            if v is None:
                continue
            if k in FLOAT_OPTS:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise HTTPError(500, f'option "{k}" must be of type float32')
                clean[k] = float(v)
            elif k in INT_OPTS:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise HTTPError(500, f'option "{k}" must be of type integer')
                clean[k] = int(v)
            elif k in BOOL_OPTS:
                if not isinstance(v, bool):
                    raise HTTPError(500, f'option "{k}" must be of type boolean')
                clean[k] = v
            elif k == "stop":
                if isinstance(v, str):
                    v = [v]
                if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                    raise HTTPError(500, 'option "stop" must be of type array of strings')
                clean[k] = v
            else:
                log.warning("invalid option provided: %s", k)
        sampling = dict(SAMPLING_DEFAULTS)
        for k in SAMPLING_DEFAULTS:
            if k in clean:
                sampling[k] = clean[k]
        seed = clean.get("seed", -1)
        sampling["seed"] = seed if seed >= 0 else None
        sampling["stop"] = list(P.STOP_STRINGS) + [s for s in clean.get("stop", []) if s]
        n = clean.get("num_predict", -1)
        max_tokens = n if n > 0 else None
        num_ctx = clean.get("num_ctx")
        if num_ctx is not None and num_ctx < 1:
            num_ctx = None
        return sampling, max_tokens, num_ctx

    @staticmethod
    def parse_format(body: dict[str, Any]) -> Any:
        fmt = body.get("format")
        if fmt is None or fmt == "":
            return None
        if fmt == "json" or isinstance(fmt, dict):
            return fmt
        raise HTTPError(400, 'invalid format: expected "json" or a valid JSON schema')

    def stream_flag(self, body: dict[str, Any]) -> bool:
        s = body.get("stream")
        return True if s is None else bool(s)

    def base(self, name: str) -> dict[str, Any]:
        return {"model": name, "created_at": now_rfc3339_ns()}

    def record_request(self, path: str, body: dict[str, Any]) -> int:
        rid = next(self.ids)
        self.events.add(
            "request",
            id=rid,
            path=path,
            model=body.get("model") or body.get("name"),
            stream=self.stream_flag(body) if path != "/api/embed" else None,
            body=body,
        )
        return rid

    # ------------------------------------------------------------------ model runs
    async def model_events(self, engine: LlamaEngine, job: GenJob) -> AsyncIterator[tuple[Any, ...]]:
        """Run a generation in a worker thread; yields its events. Closing the iterator stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: tuple[Any, ...]) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        thread = threading.Thread(
            target=engine.generate, args=(job, emit, stop), name=f"standin-gen-{job.rid}", daemon=True
        )
        self.in_flight += 1
        thread.start()
        finished = False
        try:
            while True:
                item = await queue.get()
                if item[0] in ("done", "error", "cancelled"):
                    finished = True
                yield item
                if finished:
                    return
        finally:
            self.in_flight -= 1
            if not finished:
                stop.set()

    async def with_faults(
        self, lines: AsyncIterator[bytes], plan: dict[str, Any], rid: int
    ) -> AsyncIterator[bytes]:
        n = 0
        async with contextlib.aclosing(lines) as it:
            async for line in it:
                delay = plan.get("delay_first", 0.0) if n == 0 else plan.get("delay_between", 0.0)
                if delay:
                    await asyncio.sleep(delay)
                if "die_after" in plan and n >= plan["die_after"]:
                    self.events.add("fault", id=rid, fault="die", after=n)
                    await asyncio.sleep(0.05)
                    os.kill(os.getpid(), signal.SIGKILL)
                if "error_after" in plan and n >= plan["error_after"]:
                    self.events.add("fault", id=rid, fault="error", after=n)
                    yield dumps({"error": plan["error_message"]}) + b"\n"
                    return
                if "garbage_after" in plan and n >= plan["garbage_after"]:
                    self.events.add("fault", id=rid, fault="garbage", after=n)
                    yield b'{"model":"garbage","created_at":"2026-01-01T00:00:00Z","message":{"role":\n'
                    return
                yield line
                n += 1

    async def nonstream_faults(self, plan: dict[str, Any], rid: int) -> Resp | None:
        if plan.get("delay_first"):
            await asyncio.sleep(plan["delay_first"])
        if "die_after" in plan:
            self.events.add("fault", id=rid, fault="die", after=0)
            os.kill(os.getpid(), signal.SIGKILL)
        if "error_after" in plan:
            self.events.add("fault", id=rid, fault="error", after=0)
            return eresp(500, plan["error_message"])
        if "garbage_after" in plan:
            self.events.add("fault", id=rid, fault="garbage", after=0)
            return Resp(200, b'{"model":"garbage","created_at":', JSON_CT)
        return None

    def watched(
        self, body: AsyncIterator[bytes], ct: bytes, rid: int, path: str, model: str
    ) -> WatchedResponse:
        def on_disconnect(sent: int) -> None:
            self.events.add("disconnect", id=rid, path=path, model=model, lines_sent=sent)

        return WatchedResponse(body, ct, on_disconnect)

    async def load_only(
        self, entry: ModelEntry, rid: int, name: str, keep_alive: float | None, key: str
    ) -> Resp:
        """Empty messages / prompt: load (or unload) the model and answer done_reason load/unload."""
        t0 = time.perf_counter_ns()
        if keep_alive is not None and keep_alive == 0:
            await asyncio.to_thread(entry.engine.unload)
            reason = "unload"
            extra: dict[str, Any] = {}
        else:
            load_ns = await asyncio.to_thread(entry.engine.load, None, t0)
            entry.engine.touch(name, keep_alive)
            reason = "load"
            extra = {}
            if load_ns:
                extra["load_duration"] = load_ns
        obj = self.base(name)
        if key == "message":
            obj["message"] = {"role": "assistant", "content": ""}
        else:
            obj["response"] = ""
        obj.update(done=True, done_reason=reason, **extra)
        self.events.add("complete", id=rid, done_reason=reason, eval_count=0)
        return jresp(obj)

    @staticmethod
    def fit_tokens(toks: list[int], n_ctx: int, truncate: bool) -> list[int]:
        if len(toks) < n_ctx:
            return toks
        if not truncate:
            raise PromptError(400, too_long_message(len(toks), n_ctx))
        keep = max(1, (n_ctx * 3) // 4)
        return toks[:NUM_KEEP] + toks[len(toks) - (keep - NUM_KEEP) :]

    # ------------------------------------------------------------------ /api/chat
    async def chat(self, request: Request) -> Any:
        body = await self.body(request)
        rid = self.record_request("/api/chat", body)
        name = body.get("model")
        if not name or not isinstance(name, str):
            raise HTTPError(400, "model is required")
        self.validate_logprobs(body)
        entry = self.lookup(name)
        if entry is None:
            raise HTTPError(404, f"model '{name}' not found")
        if entry.kind != "chat":
            raise HTTPError(400, f'"{name}" does not support chat')
        self.validate_think(body, name)
        sampling, max_tokens, num_ctx = self.parse_options(body)
        fmt = self.parse_format(body)
        keep_alive = self.keep_alive_of(body)
        stream = self.stream_flag(body)
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise HTTPError(400, "invalid message format")
        tools = body.get("tools") or []
        if not isinstance(tools, list):
            raise HTTPError(400, "invalid tools format")
        self.check_busy("chat", rid)
        if not messages:
            return await self.load_only(entry, rid, name, keep_alive, "message")
        msgs = [{**m, "role": str(m.get("role", "user")).lower()} for m in messages]
        last_user = next((m for m in reversed(msgs) if m["role"] == "user"), None)
        forced = P.forced_output(P._content(last_user)) if last_user else None
        truncate = body.get("truncate", True) is not False

        def build(llm: Any, n_ctx: int) -> list[int]:
            cur = list(msgs)
            while True:
                toks = llm.tokenize(P.render_chat(cur, tools).encode("utf-8"), add_bos=True, special=True)
                if len(toks) < n_ctx or not truncate:
                    return self.fit_tokens(toks, n_ctx, truncate)
                idx = next((i for i, m in enumerate(cur[:-1]) if m["role"] != "system"), None)
                if idx is None:
                    return self.fit_tokens(toks, n_ctx, truncate)
                del cur[idx]

        job = GenJob(
            rid=rid,
            name=name,
            build_tokens=build,
            sampling=sampling,
            max_tokens=max_tokens,
            fmt=fmt,
            forced=forced,
            num_ctx=num_ctx,
            unload_after=keep_alive == 0,
            logprobs=self.logprobs_of(body),
        )
        entry.engine.touch(name, keep_alive)
        plan = self.faults.plan("chat")
        t0 = job.t_start

        async def pieces() -> AsyncIterator[tuple[str, Any]]:
            """("content", str) / ("tool", call) / ("done", stats) / ("error", msg) after start."""
            parser = P.ToolCallParser(enabled=bool(tools))
            emitted = False
            async with contextlib.aclosing(self.model_events(entry.engine, job)) as events:
                async for ev in events:
                    if ev[0] == "text":
                        for item in parser.feed(ev[1]):
                            emitted = True
                            yield item
                    elif ev[0] == "logprobs":
                        yield ("logprobs", ev[1])
                    elif ev[0] == "error":
                        if not emitted:
                            raise HTTPError(ev[1], ev[2])
                        yield ("error", ev[2])
                        return
                    elif ev[0] == "done":
                        for item in parser.flush():
                            yield item
                        yield ("done", ev[1])
                        return
                    elif ev[0] == "cancelled":
                        return

        def final(
            stats: dict[str, Any], content: str, calls: list[dict[str, Any]], lps: list[dict[str, Any]]
        ) -> dict[str, Any]:
            obj = self.base(name)
            msg: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                msg["tool_calls"] = calls
            obj["message"] = msg
            if lps:
                obj["logprobs"] = lps
            obj["done"] = True
            obj["done_reason"] = stats["done_reason"]
            obj["total_duration"] = time.perf_counter_ns() - t0
            for k in (
                "load_duration",
                "prompt_eval_count",
                "prompt_eval_duration",
                "eval_count",
                "eval_duration",
            ):
                if stats.get(k):
                    obj[k] = stats[k]
            self.events.add(
                "complete",
                id=rid,
                done_reason=stats["done_reason"],
                eval_count=stats.get("eval_count", 0),
                prompt_eval_count=stats.get("prompt_eval_count", 0),
                tool_calls=len(calls),
                llama={"max_tokens": max_tokens, "format": fmt, "forced": forced is not None, **sampling},
            )
            entry.engine.touch(name, keep_alive)
            return obj

        if not stream:
            content: list[str] = []
            calls: list[dict[str, Any]] = []
            all_lps: list[dict[str, Any]] = []

            async def single() -> AsyncIterator[bytes]:
                async with contextlib.aclosing(pieces()) as it:
                    async for kind, val in it:
                        if kind == "content":
                            content.append(val)
                        elif kind == "logprobs":
                            all_lps.extend(val)
                        elif kind == "tool":
                            calls.append(val)
                        elif kind == "error":
                            raise HTTPError(500, val)
                        elif kind == "done":
                            bad = await self.nonstream_faults(plan, rid)
                            if bad is not None:
                                if bad.status != 200:
                                    raise HTTPError(bad.status, json.loads(bad.body)["error"])
                                yield bad.body
                                return
                            yield dumps(final(val, "".join(content), calls, all_lps))
                            return

            return self.watched(single(), JSON_CT, rid, "/api/chat", name)

        async def lines() -> AsyncIterator[bytes]:
            pending: list[dict[str, Any]] = []  # logprobs of text the tool parser still holds
            async with contextlib.aclosing(pieces()) as it:
                async for kind, val in it:
                    if kind == "logprobs":
                        pending.extend(val)
                    elif kind == "content":
                        obj = self.base(name)
                        obj["message"] = {"role": "assistant", "content": val}
                        if pending:
                            obj["logprobs"], pending = pending, []
                        obj["done"] = False
                        yield dumps(obj) + b"\n"
                    elif kind == "tool":
                        obj = self.base(name)
                        obj["message"] = {"role": "assistant", "content": "", "tool_calls": [val]}
                        if pending:
                            obj["logprobs"], pending = pending, []
                        obj["done"] = False
                        yield dumps(obj) + b"\n"
                    elif kind == "error":
                        yield dumps({"error": val}) + b"\n"
                        return
                    elif kind == "done":
                        yield dumps(final(val, "", [], pending)) + b"\n"
                        return

        return self.watched(self.with_faults(lines(), plan, rid), NDJSON_CT, rid, "/api/chat", name)

    # ------------------------------------------------------------------ /api/generate
    async def generate(self, request: Request) -> Any:
        body = await self.body(request)
        rid = self.record_request("/api/generate", body)
        name = body.get("model")
        if not name or not isinstance(name, str):
            raise HTTPError(404, "model '' not found")
        self.validate_logprobs(body)
        entry = self.lookup(name)
        if entry is None:
            raise HTTPError(404, f"model '{name}' not found")
        if entry.kind != "chat":
            raise HTTPError(400, f'"{name}" does not support generate')
        raw = bool(body.get("raw"))
        if raw and (body.get("template") or body.get("system") or body.get("context")):
            raise HTTPError(400, "raw mode does not support template, system, or context")
        if body.get("suffix"):
            raise HTTPError(400, f"{entry.registry_name} does not support insert")
        if body.get("images"):
            raise HTTPError(400, f"{entry.registry_name} does not support vision")
        self.validate_think(body, name)
        sampling, max_tokens, num_ctx = self.parse_options(body)
        fmt = self.parse_format(body)
        keep_alive = self.keep_alive_of(body)
        stream = self.stream_flag(body)
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise HTTPError(400, "json: cannot unmarshal prompt into Go value of type string")
        context = body.get("context") or []
        self.check_busy("generate", rid)
        if not prompt and not context:
            return await self.load_only(entry, rid, name, keep_alive, "response")
        forced = P.forced_output(prompt)
        truncate = body.get("truncate", True) is not False
        text = prompt if raw else P.render_generate(prompt, body.get("system"))

        def build(llm: Any, n_ctx: int) -> list[int]:
            toks = [int(t) for t in context] + llm.tokenize(
                text.encode("utf-8"), add_bos=not context, special=True
            )
            return self.fit_tokens(toks, n_ctx, truncate)

        job = GenJob(
            rid=rid,
            name=name,
            build_tokens=build,
            sampling=sampling,
            max_tokens=max_tokens,
            fmt=fmt,
            forced=forced,
            num_ctx=num_ctx,
            unload_after=keep_alive == 0,
            want_context=not raw,
            logprobs=self.logprobs_of(body),
        )
        entry.engine.touch(name, keep_alive)
        plan = self.faults.plan("generate")
        t0 = job.t_start

        def final(stats: dict[str, Any], response: str, lps: list[dict[str, Any]]) -> dict[str, Any]:
            obj = self.base(name)
            obj["response"] = response
            if lps:
                obj["logprobs"] = lps
            obj["done"] = True
            obj["done_reason"] = stats["done_reason"]
            if "context" in stats:
                obj["context"] = stats["context"]
            obj["total_duration"] = time.perf_counter_ns() - t0
            for k in (
                "load_duration",
                "prompt_eval_count",
                "prompt_eval_duration",
                "eval_count",
                "eval_duration",
            ):
                if stats.get(k):
                    obj[k] = stats[k]
            self.events.add(
                "complete",
                id=rid,
                done_reason=stats["done_reason"],
                eval_count=stats.get("eval_count", 0),
                prompt_eval_count=stats.get("prompt_eval_count", 0),
                llama={"max_tokens": max_tokens, "format": fmt, "forced": forced is not None, **sampling},
            )
            entry.engine.touch(name, keep_alive)
            return obj

        async def pieces() -> AsyncIterator[tuple[str, Any]]:
            emitted = False
            async with contextlib.aclosing(self.model_events(entry.engine, job)) as events:
                async for ev in events:
                    if ev[0] == "text":
                        emitted = True
                        yield ("text", ev[1])
                    elif ev[0] == "logprobs":
                        yield ("logprobs", ev[1])
                    elif ev[0] == "error":
                        if not emitted:
                            raise HTTPError(ev[1], ev[2])
                        yield ("error", ev[2])
                        return
                    elif ev[0] == "done":
                        yield ("done", ev[1])
                        return
                    else:
                        return

        if not stream:
            acc: list[str] = []
            gen_lps: list[dict[str, Any]] = []

            async def single() -> AsyncIterator[bytes]:
                async with contextlib.aclosing(pieces()) as it:
                    async for kind, val in it:
                        if kind == "text":
                            acc.append(val)
                        elif kind == "logprobs":
                            gen_lps.extend(val)
                        elif kind == "error":
                            raise HTTPError(500, val)
                        elif kind == "done":
                            bad = await self.nonstream_faults(plan, rid)
                            if bad is not None:
                                if bad.status != 200:
                                    raise HTTPError(bad.status, json.loads(bad.body)["error"])
                                yield bad.body
                                return
                            yield dumps(final(val, "".join(acc), gen_lps))
                            return

            return self.watched(single(), JSON_CT, rid, "/api/generate", name)

        async def lines() -> AsyncIterator[bytes]:
            pending: list[dict[str, Any]] = []
            async with contextlib.aclosing(pieces()) as it:
                async for kind, val in it:
                    if kind == "logprobs":
                        pending.extend(val)
                    elif kind == "text":
                        obj = self.base(name)
                        obj["response"] = val
                        if pending:
                            obj["logprobs"], pending = pending, []
                        obj["done"] = False
                        yield dumps(obj) + b"\n"
                    elif kind == "error":
                        yield dumps({"error": val}) + b"\n"
                        return
                    elif kind == "done":
                        yield dumps(final(val, "", pending)) + b"\n"
                        return

        return self.watched(self.with_faults(lines(), plan, rid), NDJSON_CT, rid, "/api/generate", name)

    # ------------------------------------------------------------------ /api/embed
    async def embed(self, request: Request) -> Any:
        t0 = time.perf_counter_ns()
        body = await self.body(request)
        rid = self.record_request("/api/embed", body)
        name = body.get("model")
        entry = self.lookup(name)
        if entry is None:
            raise HTTPError(404, f"model '{name or ''}' not found")
        inp = body.get("input")
        if inp is None or inp == "" or inp == []:
            return jresp({"model": name, "embeddings": []})
        if isinstance(inp, str):
            texts = [inp]
        elif isinstance(inp, list) and all(isinstance(x, str) for x in inp):
            texts = list(inp)
        else:
            raise HTTPError(400, "invalid input type")
        self.parse_options(body)
        keep_alive = self.keep_alive_of(body)
        dims = body.get("dimensions")
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 0):
            raise HTTPError(400, "dimensions must be a positive integer")
        self.check_busy("embed", rid)
        plan = self.faults.plan("embed")
        bad = await self.nonstream_faults(plan, rid)
        if bad is not None:
            return bad
        truncate = body.get("truncate", True) is not False
        try:
            vecs, count, load_ns = await asyncio.to_thread(self.embed_engine.embed, texts, truncate, True)
        except PromptError as e:
            raise HTTPError(e.status, e.message) from e
        if dims:
            out = []
            for v in vecs:
                v = v[:dims]
                n = sum(x * x for x in v) ** 0.5 or 1.0
                out.append([x / n for x in v])
            vecs = out
        self.embed_engine.touch(name, keep_alive)
        if keep_alive == 0:
            await asyncio.to_thread(self.embed_engine.unload)
        res: dict[str, Any] = {
            "model": name,
            "embeddings": vecs,
            "total_duration": time.perf_counter_ns() - t0,
        }
        if load_ns:
            res["load_duration"] = load_ns
        res["prompt_eval_count"] = count
        self.events.add("complete", id=rid, done_reason="embed", prompt_eval_count=count)
        return jresp(res)

    async def embeddings(self, request: Request) -> Any:
        body = await self.body(request)
        rid = self.record_request("/api/embeddings", body)
        name = body.get("model")
        entry = self.lookup(name)
        if entry is None:
            raise HTTPError(404, f"model '{name or ''}' not found")
        prompt = body.get("prompt") or ""
        if not prompt:
            return jresp({"embedding": []})
        self.check_busy("embed", rid)
        vecs, _count, _ = await asyncio.to_thread(self.embed_engine.embed, [prompt], True, False)
        return jresp({"embedding": vecs[0]})

    # ------------------------------------------------------------------ metadata endpoints
    async def root(self, request: Request) -> Resp:
        return Resp(200, b"Ollama is running", TEXT_CT)

    async def version(self, request: Request) -> Resp:
        return jresp({"version": self.config.version})

    async def tags(self, request: Request) -> Resp:
        models = []
        for e in self.listed():
            models.append(
                {
                    "name": e.name,
                    "model": e.name,
                    "modified_at": local_iso(self.modified(e)),
                    "size": self.size,
                    "digest": self.digest,
                    "details": self.details(e),
                    "capabilities": e.capabilities,
                }
            )
        models.sort(key=lambda m: m["modified_at"], reverse=True)
        return jresp({"models": models})

    async def show(self, request: Request) -> Resp:
        body = await self.body(request)
        name = body.get("model") or body.get("name")
        if not name:
            raise HTTPError(400, "model is required")
        entry = self.lookup(name)
        if entry is None:
            raise HTTPError(404, f"model '{name}' not found")
        verbose = bool(body.get("verbose"))
        if entry.kind == "chat":
            template, params = P.OLLAMA_TEMPLATE, P.OLLAMA_PARAMETERS
        else:
            template, params = "{{ .Prompt }}", ""
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {entry.name}\n\nFROM {self.path}\n"
            f'TEMPLATE """{template}"""\n'
            + "".join(f"PARAMETER {line}\n" for line in params.splitlines())
            + f'LICENSE """{self.info.metadata.get("general.license", "")}"""\n'
        )
        return jresp(
            {
                "license": str(self.info.metadata.get("general.license", "")),
                "modelfile": modelfile,
                "parameters": params,
                "template": template,
                "details": self.details(entry),
                "model_info": self.info.model_info(verbose=verbose),
                "capabilities": entry.capabilities,
                "modified_at": local_iso(self.modified(entry)),
            }
        )

    async def ps(self, request: Request) -> Resp:
        models = []
        for engine in (self.chat_engine, self.embed_engine):
            if not engine.loaded:
                continue
            name = engine.last_name
            entry = self.lookup(name) if name else None
            if entry is None:
                entry = next((e for e in self.listed() if e.engine is engine), None)
            if entry is None:
                continue
            if engine.keep_alive < 0:
                expires = dt.datetime(2318, 1, 1, tzinfo=dt.UTC).astimezone()
            else:
                expires = dt.datetime.fromtimestamp(
                    (engine.last_used or time.time()) + engine.keep_alive
                ).astimezone()
            models.append(
                {
                    "name": entry.name,
                    "model": entry.name,
                    "size": self.size,
                    "digest": self.digest,
                    "details": self.details(entry),
                    "expires_at": expires.isoformat(),
                    "size_vram": 0,
                    "context_length": engine.n_ctx,
                }
            )
        return jresp({"models": models})

    async def pull(self, request: Request) -> Any:
        body = await self.body(request)
        rid = self.record_request("/api/pull", body)
        name = body.get("model") or body.get("name")
        if not name or not isinstance(name, str):
            raise HTTPError(400, "model is required")
        key = normalize_name(name)
        if key not in self.models:
            self.events.add("pull", id=rid, model=name, ok=False)
            raise HTTPError(500, "pull model manifest: file does not exist")
        digest = self.digest
        total = self.size
        steps: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        short = digest[:12]
        steps.append({"status": f"pulling {short}", "digest": f"sha256:{digest}", "total": total})
        for frac in (0.25, 0.5, 0.75, 1.0):
            steps.append(
                {
                    "status": f"pulling {short}",
                    "digest": f"sha256:{digest}",
                    "total": total,
                    "completed": int(total * frac),
                }
            )
        steps += [
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        delay = self.config.pull_delay

        def done() -> None:
            self.absent.discard(key)
            self.pulled_at[key] = time.time()
            self.events.add("pull", id=rid, model=name, ok=True)

        if not self.stream_flag(body):
            if delay:
                await asyncio.sleep(delay * len(steps))
            done()
            return jresp({"status": "success"})

        async def lines() -> AsyncIterator[bytes]:
            for i, step in enumerate(steps):
                if delay and i:
                    await asyncio.sleep(delay)
                if step["status"] == "success":
                    done()
                yield dumps(step) + b"\n"

        return self.watched(lines(), NDJSON_CT, rid, "/api/pull", name)

    async def delete(self, request: Request) -> Resp:
        body = await self.body(request)
        name = body.get("model") or body.get("name")
        if not name:
            raise HTTPError(400, "model is required")
        entry = self.lookup(name)
        if entry is None:
            raise HTTPError(404, f"model '{name}' not found")
        self.absent.add(normalize_name(name))
        return Resp(200, b"", None)

    # ------------------------------------------------------------------ control endpoints
    async def get_faults(self, request: Request) -> Resp:
        return jresp({"faults": self.faults.snapshot()})

    async def set_faults(self, request: Request) -> Resp:
        raw = await request.body()
        patch = json.loads(raw) if raw.strip() else {}
        if not isinstance(patch, dict):
            raise HTTPError(400, "faults must be a JSON object")
        try:
            state = self.faults.update(patch)
        except (ValueError, TypeError) as e:
            raise HTTPError(400, str(e)) from e
        return jresp({"faults": state})

    async def reset_faults(self, request: Request) -> Resp:
        self.faults.reset()
        return jresp({"faults": {}})

    async def get_events(self, request: Request) -> Resp:
        q = request.query_params
        since = int(q.get("since", "0") or 0)
        return jresp({"events": self.events.list(q.get("type") or None, since)})

    async def clear_events(self, request: Request) -> Resp:
        self.events.clear()
        return jresp({"events": []})

    async def state(self, request: Request) -> Resp:
        return jresp(
            {
                "pid": os.getpid(),
                "gguf": str(self.path),
                "in_flight": self.in_flight,
                "waiting": self.chat_engine.waiting + self.embed_engine.waiting,
                "running": self.chat_engine.running + self.embed_engine.running,
                "loaded": {"chat": self.chat_engine.loaded, "embed": self.embed_engine.loaded},
                "absent": sorted(self.absent),
                "models": [e.name for e in self.models.values()],
                "faults": self.faults.snapshot(),
            }
        )


def create_app(config: StandinConfig | None = None) -> Standin:
    """Build the stand-in ASGI app (``config`` defaults to :meth:`StandinConfig.from_env`)."""
    return Standin(config or StandinConfig.from_env())
