"""The OpenAI routes over a scripted backend that speaks only ``server.generation``: any generative
runtime gets the whole facade (shapes, status codes, streams, metrics) without knowing OpenAI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import httpx
import pytest

from server import generation as g
from server.app import create_app
from server.errors import UpstreamError, UpstreamUnavailable
from server.model import GenerativeModel, ModelMetadata
from server.settings import Settings


class Scripted:
    """Answers every generation with ``script`` per choice; ``fail_first``/``fail_after`` inject errors."""

    kind: ClassVar[str] = "generative"
    load_before_serving: ClassVar[bool] = False

    def __init__(self, name: str = "chat") -> None:
        self.name = name
        self.ready_flag = True
        self.requests: list[Any] = []
        self.script: list[g.Event] = [g.TextDelta(0, "Hel"), g.TextDelta(0, "lo")]
        self.fail_first: Exception | None = None
        self.fail_after: Exception | None = None
        self.closed = 0

    @property
    def ready(self) -> bool:
        return self.ready_flag

    async def load(self) -> None:
        return None

    async def unload(self) -> None:
        return None

    def metadata(self) -> ModelMetadata:
        return ModelMetadata(platform="scripted")

    def served_models(self) -> list[g.ServedModel]:
        return [g.ServedModel(self.name, 7, "me"), g.ServedModel("embedder", 0, "me")]

    def queue_stats(self) -> tuple[int, int]:
        return 0, 0

    def generate(self, request: g.GenerationRequest) -> AsyncIterator[g.Event]:
        self.requests.append(request)
        return self._events(request)

    async def _events(self, request: g.GenerationRequest) -> AsyncIterator[g.Event]:
        try:
            if self.fail_first is not None:
                raise self.fail_first
            choices = request.n * max(len(request.prompts), 1)
            for i in range(choices):
                yield g.Start(i)
                for ev in self.script:
                    yield dataclasses.replace(ev, index=i)
                if self.fail_after is not None:
                    raise self.fail_after
                yield g.Finish(i, "stop")
            yield g.Usage(5, 2 * choices)
        finally:
            self.closed += 1

    async def embed(self, request: g.EmbeddingRequest) -> g.EmbeddingResult:
        self.requests.append(request)
        return g.EmbeddingResult([[1.0, 0.0]] * len(request.inputs), prompt_tokens=len(request.inputs))


def serve(model: Scripted, test: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    assert isinstance(model, GenerativeModel)
    app = create_app(Settings(access_log=False), [model])

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await test(client)

    asyncio.run(go())


def events(response: httpx.Response) -> list[Any]:
    out = []
    for block in response.text.split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def test_chat_json_and_stream() -> None:
    model = Scripted()

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/chat/completions", json={**CHAT, "n": 2})
        body = r.json()
        assert r.status_code == 200 and body["system_fingerprint"] == "fp_kcr_scripted"
        assert [c["message"]["content"] for c in body["choices"]] == ["Hello", "Hello"]
        assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
        r = await client.post(
            "/openai/v1/chat/completions",
            json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        )
        assert r.headers["content-type"].startswith("text/event-stream")
        got = events(r)
        assert got[-1] == "[DONE]" and got[-2]["usage"]["total_tokens"] == 7
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in got[:-2]) == "Hello"

    serve(model, test)
    assert model.requests[0] == g.GenerationRequest(model="chat", messages=(g.Message("user", "hi"),), n=2)
    assert model.closed == 2


def test_completions_and_embeddings() -> None:
    model = Scripted()

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/completions", json={"model": "chat", "prompt": ["a", "b"], "echo": True})
        assert [c["text"] for c in r.json()["choices"]] == ["aHello", "bHello"]
        r = await client.post("/v1/completions", json={"model": "chat", "prompt": "a", "stream": True})
        assert "".join(c["choices"][0]["text"] for c in events(r)[:-1]) == "Hello"
        r = await client.post("/v1/embeddings", json={"model": "embedder", "input": ["x", "y"]})
        assert [d["embedding"] for d in r.json()["data"]] == [[1.0, 0.0], [1.0, 0.0]]
        assert r.json()["usage"] == {"prompt_tokens": 2, "total_tokens": 2}

    serve(model, test)


def test_models() -> None:
    model = Scripted()

    async def test(client: httpx.AsyncClient) -> None:
        listed = (await client.get("/v1/models")).json()
        assert listed["models"] == ["chat", "embedder"]
        assert listed["data"][0] == {"id": "chat", "object": "model", "created": 7, "owned_by": "me"}
        one = (await client.get("/openai/v1/models/chat")).json()
        assert one == {**listed["data"][0], "name": "chat", "ready": True}
        r = await client.get("/v1/models/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        model.ready_flag = False
        r = await client.get("/v1/models/chat")
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_not_ready"

    serve(model, test)


@pytest.mark.parametrize("stream", [False, True])
def test_a_backend_failing_at_once_is_a_real_status(stream: bool) -> None:
    model = Scripted()
    model.fail_first = UpstreamUnavailable("Ollama is busy: try later", retry_after=1)

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "upstream_unavailable"
        metrics = (await client.get("/metrics")).text
        assert 'kcr_openai_upstream_errors_total{kind="unavailable",model="chat"} 1.0' in metrics

    serve(model, test)


def test_a_backend_failing_mid_stream_is_the_last_event() -> None:
    model = Scripted()
    model.fail_after = UpstreamError("Connection to Ollama lost during generation (ClientPayloadError).")

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        got = events(r)
        assert r.status_code == 200 and "[DONE]" not in got
        assert got[-1]["error"]["type"] == "api_error" and "lost" in got[-1]["error"]["message"]
        metrics = (await client.get("/metrics")).text
        assert 'kcr_openai_upstream_errors_total{kind="error",model="chat"} 1.0' in metrics
        assert 'kcr_openai_requests_total{code="200",model="chat",route="/chat/completions"} 1.0' in metrics

    serve(model, test)
    assert model.closed == 1


def test_an_empty_stream_is_a_bad_gateway() -> None:
    model = Scripted()

    async def nothing(request: g.GenerationRequest) -> AsyncIterator[g.Event]:
        return
        yield

    model._events = nothing  # type: ignore[method-assign]

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert r.status_code == 502 and r.json()["error"]["message"] == "The model produced an empty stream."

    serve(model, test)


def test_refusals_happen_before_the_backend_is_called() -> None:
    model = Scripted()

    async def test(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/chat/completions", json={**CHAT, "logit_bias": {"1": 1.0}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "logit_bias"
        r = await client.post("/v1/chat/completions", json={**CHAT, "tool_choice": "required"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "tool_choice"  # no tools to force
        r = await client.post(
            "/v1/responses", json={"model": "chat", "input": "hi", "previous_response_id": "r"}
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "previous_response_id"
        r = await client.post(
            "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        r = await client.post("/v1/chat/completions", json={**CHAT, "model": "nope", "logit_bias": {"1": 1}})
        assert r.status_code == 404  # the model is resolved first, as before
        r = await client.get("/v1/chat/completions")
        assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"
        assert r.headers["allow"] == "POST"

    serve(model, test)
    assert model.requests == []
