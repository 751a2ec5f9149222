"""A tiny scripted Ollama (native API) for fast, deterministic tests of the facade's semantics.

Every request body is recorded; replies come from ``FakeOllama.script`` (a list of native chunks) or a
default three-token answer; faults: ``fail_status`` (HTTP error before streaming), ``error_after``
(NDJSON error line after K lines), ``delay_between`` (seconds between lines). Client disconnects are
recorded in ``disconnects``. As Ollama: ``logprobs: true`` adds chunk-level ``logprobs``; a JSON-schema
``format`` is answered with the smallest JSON that satisfies it (what constrained decoding guarantees);
``think`` is a 400 unless ``thinking`` is set, then a trace comes first in ``message.thinking``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.procs import free_port

TOKENS = ["Hel", "lo", " there", "!"]


class FakeOllama:
    def __init__(self, models: tuple[str, ...] = ("smollm2:135m", "embed:1")) -> None:
        self.models = set(models)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.script: list[dict[str, Any]] | None = None
        self.fail_status: int | None = None
        self.fail_message = "server busy, please try again.  maximum pending requests exceeded"
        self.error_after: int | None = None
        self.delay_between = 0.0
        self.delay_first = 0.0
        #: Seconds between the last line and the end of the body (Ollama ends it at once).
        self.delay_end = 0.0
        #: A raw answer to generation requests: (status, content type, body chunks), sent as is.
        self.raw: tuple[int, str, list[bytes]] | None = None
        self.disconnects = 0
        self.completed = 0
        #: The model "can think": ``think`` is accepted and answered with a trace first.
        self.thinking = False
        #: Client port of every generation request: one port for many requests = a reused connection.
        self.peer_ports: list[int] = []
        self.port = free_port()
        self.app = Starlette(
            routes=[
                Route("/", lambda r: PlainTextResponse("Ollama is running")),
                Route("/api/version", lambda r: JSONResponse({"version": "0.33.0"})),
                Route("/api/tags", self.tags),
                Route("/api/pull", self.pull, methods=["POST"]),
                Route("/api/chat", self.chat, methods=["POST"]),
                Route("/api/generate", self.generate, methods=["POST"]),
                Route("/api/embed", self.embed, methods=["POST"]),
            ]
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.requests.clear()
        self.peer_ports.clear()
        self.script = None
        self.raw = None
        self.fail_status = None
        self.thinking = False
        self.error_after = None
        self.delay_between = self.delay_first = self.delay_end = 0.0

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in self.requests if p == path]

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeOllama:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(10)

    # --- endpoints -----------------------------------------------------------------------------------

    async def tags(self, request: Request) -> Response:
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": "2026-08-01T12:00:00+02:00",
                "size": 1,
                "digest": "d" * 64,
                "details": {"format": "gguf"},
            }
            for m in sorted(self.models)
        ]
        return JSONResponse({"models": models})

    async def pull(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("/api/pull", body))
        name = body["model"]

        async def lines() -> AsyncIterator[bytes]:
            yield b'{"status":"pulling manifest"}\n'
            for done in (0, 50, 100):
                yield (
                    json.dumps(
                        {"status": "pulling abc", "digest": "sha256:abc", "total": 100, "completed": done}
                    ).encode()
                    + b"\n"
                )
            self.models.add(name)
            yield b'{"status":"success"}\n'

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    def _reply(self, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
        if self.script is not None:
            return [dict(c) for c in self.script]
        limit = (body.get("options") or {}).get("num_predict", -1)
        words = TOKENS
        if isinstance(body.get("format"), dict):
            text = json.dumps(satisfy(body["format"]))
            words = [text[: len(text) // 2], text[len(text) // 2 :]]
        tokens = words if limit is None or limit < 0 else words[:limit]
        reason = "length" if 0 <= limit < len(words) else "stop"
        chunks = [self._piece(key, t) for t in tokens]
        if body.get("logprobs") is True:
            top = int(body.get("top_logprobs") or 0)
            for c, t in zip(chunks, tokens, strict=True):
                alternatives = [{"token": t, "logprob": -0.25}, {"token": "x", "logprob": -2.5}][:top]
                c["logprobs"] = [{"token": t, "logprob": -0.25, "top_logprobs": alternatives}]
        if self.thinking and body.get("think") not in (None, False) and key == "message":
            chunks.insert(
                0,
                {
                    **self._piece(key, ""),
                    "message": {"role": "assistant", "content": "", "thinking": "Let me think."},
                },
            )
        final = self._piece(key, "")
        final.update(
            done=True,
            done_reason=reason,
            prompt_eval_count=7,
            eval_count=len(tokens),
            eval_duration=len(tokens) * 20_000_000,
            total_duration=100_000_000,
        )
        return [*chunks, final]

    @staticmethod
    def _piece(key: str, text: str) -> dict[str, Any]:
        base: dict[str, Any] = {"model": "m", "created_at": "2026-09-01T10:00:00Z", "done": False}
        base[key] = {"role": "assistant", "content": text} if key == "message" else text
        return base

    async def _answer(self, request: Request, path: str, key: str) -> Response:
        body = await request.json()
        self.requests.append((path, body))
        if request.client is not None:
            self.peer_ports.append(request.client.port)
        if body.get("model") not in self.models:
            return JSONResponse({"error": f"model '{body.get('model')}' not found"}, status_code=404)
        if key == "message" and not body.get("messages"):
            return JSONResponse(
                {
                    "model": body["model"],
                    "created_at": "2026-09-01T10:00:00Z",
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "load",
                }
            )
        if self.fail_status is not None:
            return JSONResponse({"error": self.fail_message}, status_code=self.fail_status)
        if body.get("think") not in (None, False) and not self.thinking:
            return JSONResponse({"error": f'"{body["model"]}" does not support thinking'}, status_code=400)
        if self.raw is not None:
            status, media_type, pieces = self.raw

            async def raw() -> AsyncIterator[bytes]:
                for piece in pieces:
                    yield piece

            return StreamingResponse(raw(), status_code=status, media_type=media_type)
        chunks = self._reply(body, key)
        for c in chunks:
            c["model"] = body["model"]
        if body.get("stream") is False:
            merged = dict(chunks[-1])
            merged_lps = [lp for c in chunks for lp in c.get("logprobs", ())]
            if merged_lps:
                merged["logprobs"] = merged_lps
            if key == "message":
                merged["message"] = {
                    "role": "assistant",
                    "content": "".join(c[key]["content"] for c in chunks),
                }
                thinking = "".join(c[key].get("thinking", "") for c in chunks)
                if thinking:
                    merged["message"]["thinking"] = thinking
            else:
                merged["response"] = "".join(c[key] for c in chunks)
            return JSONResponse(merged)

        async def lines() -> AsyncIterator[bytes]:
            sent = 0
            try:
                await asyncio.sleep(self.delay_first)
                for c in chunks:
                    if self.error_after is not None and sent >= self.error_after:
                        yield b'{"error":"an error was encountered while running the model"}\n'
                        return
                    yield json.dumps(c).encode() + b"\n"
                    sent += 1
                    if self.delay_between:
                        await asyncio.sleep(self.delay_between)
                self.completed += 1
                await asyncio.sleep(self.delay_end)
            except (asyncio.CancelledError, GeneratorExit):
                self.disconnects += 1
                raise

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def chat(self, request: Request) -> Response:
        return await self._answer(request, "/api/chat", "message")

    async def generate(self, request: Request) -> Response:
        return await self._answer(request, "/api/generate", "response")

    async def embed(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("/api/embed", body))
        if body.get("model") not in self.models:
            return JSONResponse({"error": f"model '{body.get('model')}' not found"}, status_code=404)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = []
        for i, _ in enumerate(inputs):
            raw = [float(i + 1), 2.0, -1.0, 0.5]
            norm = math.sqrt(sum(x * x for x in raw))
            vectors.append([x / norm for x in raw])
        return JSONResponse(
            {"model": body["model"], "embeddings": vectors, "prompt_eval_count": 3 * len(inputs)}
        )


def satisfy(schema: dict[str, Any]) -> Any:
    """The smallest value of ``schema``: the first alternative, required properties only."""
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return satisfy(schema[key][0])
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: satisfy(props.get(k, {"type": "string"})) for k in schema.get("required", [])}
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}.get(
        kind, "x"
    )
