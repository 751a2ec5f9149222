"""The Ollama runtime's generation as neutral events, over scripted native streams (no Ollama)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from runtimes.ollama_serving import OllamaServing
from runtimes.ollama_upstream import Limiter
from server import generation as g
from server.errors import ModelNotFound, UpstreamError, UpstreamUnavailable


@dataclass
class Opts:
    keep_alive: float | str = -1
    num_ctx: int | None = None
    first_token_timeout: float = 5.0
    request_timeout: float = 10.0


class FakeUpstream:
    """Stands in for ``Upstream``: records payloads, answers each with ``lines``."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.lines = lines
        self.payloads: list[tuple[str, dict[str, Any]]] = []
        self.closed = 0

    def _source(self, path: str, payload: dict[str, Any]) -> Any:
        async def start() -> AsyncIterator[dict[str, Any]]:
            self.payloads.append((path, payload))
            return self._lines()

        return start

    async def _lines(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for line in self.lines:
                if "raise" in line:
                    raise line["raise"]
                yield line
        finally:
            self.closed += 1

    @property
    def client(self) -> Any:
        return self

    async def embed(self, **kw: Any) -> Any:
        self.payloads.append(("/api/embed", kw))
        return SimpleNamespace(embeddings=[[0.5, 1.0]] * len(kw["input"]), prompt_eval_count=3)

    def chat_source(self, payload: dict[str, Any]) -> Any:
        return self._source("/api/chat", payload)

    def generate_source(self, payload: dict[str, Any]) -> Any:
        return self._source("/api/generate", payload)


class Runtime(OllamaServing):
    def __init__(self, upstream: FakeUpstream | None) -> None:
        self.opts = Opts()
        self.upstream = upstream  # type: ignore[assignment]
        self._tags = {"alias": "tag:1"}
        self._limiter = Limiter(1, 0, 1.0)
        self.failures: list[Any] = []

    def _on_failure(self, err: Any) -> None:
        self.failures.append(err)


def msg(text: str = "", **extra: Any) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": text, **extra}, "done": False}


DONE = {
    "message": {"content": ""},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 7,
    "eval_count": 3,
}


def collect(runtime: Runtime, request: g.GenerationRequest) -> list[g.Event]:
    async def go() -> list[g.Event]:
        return [ev async for ev in runtime.generate(request)]

    return asyncio.run(go())


def test_chat_events() -> None:
    call = {"function": {"index": 0, "name": "f", "arguments": {"city": "Tokyo"}}}
    upstream = FakeUpstream([msg("Hel"), msg(thinking="hmm"), msg("lo", tool_calls=[call, call]), DONE])
    runtime = Runtime(upstream)
    request = g.GenerationRequest(model="alias", messages=(g.Message("user", "hi"),), n=2)
    events = collect(runtime, request)
    one = [
        g.TextDelta(0, "Hel"),
        g.ReasoningDelta(0, "hmm"),
        g.TextDelta(0, "lo"),
        g.ToolCallDelta(0, g.ToolCall("", "f", '{"city": "Tokyo"}')),
        g.ToolCallDelta(0, g.ToolCall("", "f", '{"city": "Tokyo"}')),
    ]
    second = [g.TextDelta(1, "Hel"), g.ReasoningDelta(1, "hmm"), g.TextDelta(1, "lo")]
    assert events[:7] == [g.Start(0), *one, g.Finish(0, "tool_calls")]
    assert events[7:11] == [g.Start(1), *second]
    assert events[-2:] == [g.Finish(1, "tool_calls"), g.Usage(7, 6)]  # prompt once, completions summed
    assert [p for p, _ in upstream.payloads] == ["/api/chat", "/api/chat"]
    assert upstream.payloads[0][1]["model"] == "tag:1" and upstream.closed == 2
    assert runtime._limiter.in_flight == 0


def test_prompts_are_one_stream_each() -> None:
    upstream = FakeUpstream(
        [{"response": "x", "done": False}, {"response": "", "done": True, "eval_count": 1}]
    )
    runtime = Runtime(upstream)
    events = collect(runtime, g.GenerationRequest(model="alias", prompts=("a", "b"), n=2))
    assert [ev.index for ev in events if isinstance(ev, g.Finish)] == [0, 1, 2, 3]
    assert [payload["prompt"] for _, payload in upstream.payloads] == ["a", "a", "b", "b"]
    assert events[-1] == g.Usage(0, 4)


def test_errors_before_the_first_event() -> None:
    runtime = Runtime(FakeUpstream([DONE]))
    with pytest.raises(ModelNotFound):
        runtime.generate(g.GenerationRequest(model="nope", messages=(g.Message("user", "hi"),)))
    with pytest.raises(UpstreamUnavailable):
        Runtime(None).generate(g.GenerationRequest(model="alias", messages=(g.Message("user", "hi"),)))
    broken = Runtime(FakeUpstream([{"raise": ConnectionError("refused")}]))
    with pytest.raises(UpstreamUnavailable):
        collect(broken, g.GenerationRequest(model="alias", messages=(g.Message("user", "hi"),)))
    assert broken.failures and broken._limiter.in_flight == 0


def test_a_stream_without_its_final_chunk_fails() -> None:
    runtime = Runtime(FakeUpstream([msg("Hel")]))
    with pytest.raises(UpstreamError, match="without a final chunk"):
        collect(runtime, g.GenerationRequest(model="alias", messages=(g.Message("user", "hi"),)))


def test_stopping_early_closes_the_upstream_stream_and_frees_the_slot() -> None:
    upstream = FakeUpstream([msg("a"), msg("b"), DONE])
    runtime = Runtime(upstream)

    async def go() -> None:
        events = runtime.generate(g.GenerationRequest(model="alias", messages=(g.Message("user", "hi"),)))
        assert await anext(events) == g.Start(0)
        assert runtime._limiter.in_flight == 1
        await events.aclose()  # type: ignore[attr-defined]

    asyncio.run(go())
    assert upstream.closed == 1 and runtime._limiter.in_flight == 0


def test_embed() -> None:
    upstream = FakeUpstream([])
    runtime = Runtime(upstream)
    result = asyncio.run(runtime.embed(g.EmbeddingRequest("alias", ("a", "b"), dimensions=2)))
    assert result == g.EmbeddingResult([[0.5, 1.0], [0.5, 1.0]], prompt_tokens=3)
    assert upstream.payloads == [
        ("/api/embed", {"model": "tag:1", "input": ["a", "b"], "dimensions": 2, "keep_alive": -1})
    ]
