"""Chat semantics against the scripted fake Ollama: what is sent upstream and what the SDK receives."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import orjson
import pytest

from server.openai.types import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from tests.openai.conftest import MODEL, Facade
from tests.openai.fake_ollama import FakeOllama
from tests.openai.schema import validate

USER = [{"role": "user", "content": "hi"}]


def raw_chat(facade: Facade, **body: Any) -> httpx.Response:
    return httpx.post(
        facade.base + "/chat/completions", json={"model": MODEL, "messages": USER, **body}, timeout=10
    )


def sse_events(response: httpx.Response) -> list[Any]:
    events = []
    for block in response.text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def tool_script(*calls: tuple[str, dict[str, Any]], text: str = "") -> list[dict[str, Any]]:
    """Like Ollama: the tool calls arrive in a chunk of their own, the done chunk follows separately."""
    tool_calls = [{"function": {"index": i, "name": n, "arguments": a}} for i, (n, a) in enumerate(calls)]
    return [
        {"message": {"role": "assistant", "content": text}, "done": False},
        {"message": {"role": "assistant", "content": "", "tool_calls": tool_calls}, "done": False},
        {
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 30,
            "eval_count": 12,
        },
    ]


def test_non_stream_validates_and_usage_is_ollamas(facade: Facade, fake: FakeOllama) -> None:
    r = raw_chat(facade)
    assert r.status_code == 200
    body = r.json()
    validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "Hello there!"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    assert r.headers["x-request-id"]


def test_stream_sequence_and_include_usage(facade: Facade) -> None:
    r = raw_chat(facade, stream=True, stream_options={"include_usage": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
    finals = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finals == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(facade: Facade) -> None:
    chunks = sse_events(raw_chat(facade, stream=True))[:-1]
    assert all(c["choices"] and "usage" not in c for c in chunks)


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
def test_token_limit_becomes_num_predict(facade: Facade, fake: FakeOllama, field: str) -> None:
    r = facade.client().chat.completions.create(model=MODEL, messages=USER, **{field: 2})
    assert fake.bodies("/api/chat")[-1]["options"]["num_predict"] == 2
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens <= 2


def test_sampling_options_forwarded_only_when_given(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    client.chat.completions.create(model=MODEL, messages=USER)
    assert "temperature" not in (fake.bodies("/api/chat")[-1].get("options") or {})
    client.chat.completions.create(
        model=MODEL,
        messages=USER,
        temperature=0.1,
        top_p=0.5,
        seed=3,
        stop="\n",
        presence_penalty=0.2,
        frequency_penalty=0.3,
    )
    options = fake.bodies("/api/chat")[-1]["options"]
    assert options == {
        "temperature": 0.1,
        "top_p": 0.5,
        "seed": 3,
        "stop": ["\n"],
        "presence_penalty": 0.2,
        "frequency_penalty": 0.3,
    }


def test_response_format_maps_to_format(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    client.chat.completions.create(model=MODEL, messages=USER, response_format={"type": "json_object"})
    assert fake.bodies("/api/chat")[-1]["format"] == "json"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    client.chat.completions.create(
        model=MODEL,
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert fake.bodies("/api/chat")[-1]["format"] == schema
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=MODEL, messages=USER, response_format={"type": "json_schema", "json_schema": {"name": "x"}}
        )
    assert err.value.param == "response_format"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {
            "type": "object",
            "properties": {
                "where": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            },
            "required": ["where"],
        },
    },
}


def test_tool_calls_non_stream(facade: Facade, fake: FakeOllama) -> None:
    fake.script = tool_script(
        ("get_weather", {"where": {"city": "Tokyo"}}), ("get_weather", {"where": {"city": "Oslo"}})
    )
    r = raw_chat(facade, tools=[WEATHER])
    body = r.json()
    validate("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"where": {"city": "Tokyo"}},
        {"where": {"city": "Oslo"}},
    ]
    assert all(c["id"].startswith("call_") for c in calls) and len({c["id"] for c in calls}) == 2
    assert choice["message"]["content"] is None
    # The nested schema reached Ollama untouched (the typed client would have stripped it).
    assert fake.bodies("/api/chat")[-1]["tools"][0] == WEATHER


def test_tool_calls_stream_finish_reason_even_when_call_precedes_done(
    facade: Facade, fake: FakeOllama
) -> None:
    fake.script = tool_script(("get_weather", {"where": {"city": "Tokyo"}}))
    events = sse_events(raw_chat(facade, tools=[WEATHER], stream=True))
    chunks = events[:-1]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    call = next(d["tool_calls"][0] for d in deltas if d.get("tool_calls"))
    assert call["index"] == 0 and call["id"].startswith("call_") and call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"where": {"city": "Tokyo"}}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_round_trip_maps_tool_call_id_to_tool_name(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    fake.script = tool_script(("get_weather", {"where": {"city": "Tokyo"}}))
    first = client.chat.completions.create(model=MODEL, messages=USER, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    fake.script = None
    second = client.chat.completions.create(
        model=MODEL,
        tools=[WEATHER],
        messages=[
            *USER,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    sent = fake.bodies("/api/chat")[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"where": {"city": "Tokyo"}}
    assert sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_name": "get_weather",
        "tool_call_id": call.id,
    }


def test_invalid_tool_arguments_is_400(facade: Facade) -> None:
    bad = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{nope"}}],
    }
    r = raw_chat(facade, messages=[*USER, bad])
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("messages[1]")


def test_n_choices_served(facade: Facade, fake: FakeOllama) -> None:
    r = facade.client().chat.completions.create(model=MODEL, messages=USER, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len(fake.bodies("/api/chat")) == 3
    assert r.usage is not None and r.usage.completion_tokens == 12
    chunks = sse_events(raw_chat(facade, n=2, stream=True))[:-1]
    finished = sorted(c["choices"][0]["index"] for c in chunks if c["choices"][0]["finish_reason"])
    assert finished == [0, 1]


def test_developer_role_and_text_parts(facade: Facade, fake: FakeOllama) -> None:
    facade.client().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}],
            },
        ],
    )
    assert fake.bodies("/api/chat")[-1]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "line one\nline two"},
    ]


def test_unknown_model_is_404_model_not_found(facade: Facade) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        facade.client().chat.completions.create(model="gpt-4o", messages=USER)
    assert err.value.code == "model_not_found"
    validate("ErrorResponse", err.value.response.json())


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"temperature": "hot"},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"n": 0},
        # int64 per OpenAI's schema; found by fuzzing (it used to reach the upstream call as a 502).
        {"seed": -(2**63) - 1},
        {"max_tokens": 2**64},
    ],
)
def test_invalid_request_is_400_not_422(facade: Facade, body: dict[str, Any]) -> None:
    r = raw_chat(facade, **body)
    assert r.status_code == 400
    validate("ErrorResponse", r.json())
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_malformed_json_is_400(facade: Facade) -> None:
    r = httpx.post(
        facade.base + "/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_busy_is_503_with_retry_after(facade: Facade, fake: FakeOllama, stream: bool) -> None:
    fake.fail_status = 503
    r = raw_chat(facade, stream=stream)
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.json()["error"]["code"] == "upstream_unavailable"
    with pytest.raises(openai.InternalServerError) as err:
        facade.client().chat.completions.create(model=MODEL, messages=USER, stream=stream)
    assert err.value.status_code == 503


def test_mid_stream_error_is_an_sse_error_event(facade: Facade, fake: FakeOllama) -> None:
    fake.error_after = 2
    events = sse_events(raw_chat(facade, stream=True))
    assert "[DONE]" not in events
    assert events[-1]["error"]["type"] == "api_error"
    validate("ErrorResponse", events[-1])
    with pytest.raises(openai.APIError):
        for _ in facade.client().chat.completions.create(model=MODEL, messages=USER, stream=True):
            pass


@pytest.mark.anyio
async def test_async_client_stream(facade: Facade) -> None:
    client = facade.async_client()
    stream = await client.chat.completions.create(
        model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == "Hello there!" and usage is not None and usage.total_tokens == 11
    await client.close()


def test_upstream_connection_is_reused(facade: Facade, fake: FakeOllama) -> None:
    """The stream is read to its end after ``done``, so the next request needs no new connection."""
    fake.delay_end = 0.05  # the body's end arrives after the final line, as over a real network
    for stream in (True, True, False, True, False, True):
        assert raw_chat(facade, stream=stream).status_code == 200
    assert len(fake.peer_ports) == 6
    assert len(set(fake.peer_ports)) == 1, fake.peer_ports


def _fastapi_reference() -> Any:
    """A FastAPI route over the same request models, rendering its validation errors the way the old
    FastAPI routes of the facade did: the reference for what the wing's own body reading answers."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient
    from starlette.exceptions import HTTPException

    app = FastAPI()

    def error(message: str, param: str | None) -> JSONResponse:
        body = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
        return JSONResponse({"error": body}, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if problems and problems[0]["type"] == "json_invalid":
            return error("We could not parse the JSON body of your request.", None)
        locs = [".".join(str(p) for p in e["loc"] if p != "body") for e in problems]
        parts = [
            f"{where}: {e['msg']}" if where else e["msg"] for where, e in zip(locs, problems, strict=True)
        ]
        return error("Invalid request: " + "; ".join(parts[:5]), locs[0] or None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Any, exc: HTTPException) -> JSONResponse:
        return error(str(exc.detail), None)

    @app.post("/chat/completions")
    async def chat(body: ChatCompletionRequest) -> dict[str, bool]:
        return {"valid": True}

    @app.post("/completions")
    async def completions(body: CompletionRequest) -> dict[str, bool]:
        return {"valid": True}

    @app.post("/embeddings")
    async def embeddings(body: EmbeddingRequest) -> dict[str, bool]:
        return {"valid": True}

    return TestClient(app)


JSON_CT = {"content-type": "application/json"}
CHAT = orjson.dumps({"model": MODEL, "messages": USER})
N0 = json.dumps({"model": MODEL, "messages": USER, "n": 0})
BODY_CASES: list[tuple[str, dict[str, str], bytes]] = [
    ("/chat/completions", JSON_CT, CHAT),
    ("/chat/completions", JSON_CT, b"{nope"),
    ("/chat/completions", JSON_CT, b""),
    ("/chat/completions", JSON_CT, b"[1]"),
    ("/chat/completions", JSON_CT, b"null"),
    ("/chat/completions", JSON_CT, orjson.dumps({"model": MODEL, "messages": []})),
    ("/chat/completions", JSON_CT, b'{"model": "smollm2:135m", "messages": [], "seed": NaN}'),
    ("/chat/completions", JSON_CT, b'{"model": 1, "temperature": Infinity}'),
    ("/chat/completions", JSON_CT, N0.encode("utf-16")),
    ("/chat/completions", JSON_CT, b"\xff\xfe{"),
    (
        "/chat/completions",
        JSON_CT,
        json.dumps({"model": MODEL, "messages": USER, "max_tokens": 2**64}).encode(),
    ),
    ("/chat/completions", {"content-type": "application/json; charset=utf-8"}, N0.encode()),
    ("/chat/completions", {"content-type": "application/vnd.api+json"}, CHAT),
    ("/chat/completions", {"content-type": "APPLICATION/JSON"}, CHAT),
    ("/chat/completions", {"content-type": "text/plain"}, CHAT),
    ("/chat/completions", {"content-type": "json"}, CHAT),
    ("/chat/completions", {"content-type": "application/x-www-form-urlencoded"}, b"model=x"),
    ("/completions", JSON_CT, orjson.dumps({"model": MODEL, "prompt": [[1, "a"]]})),
    ("/completions", JSON_CT, orjson.dumps({"model": MODEL, "prompt": "Hi"})),
    ("/embeddings", JSON_CT, orjson.dumps({"model": "embed:1"})),
    ("/embeddings", JSON_CT, orjson.dumps({"model": "embed:1", "input": [1.5]})),
]


def test_bodies_are_read_as_the_fastapi_route_read_them(facade: Facade) -> None:
    """The facade reads and validates bodies itself (no framework on the request path); it must
    answer what a FastAPI route over the same models answered: same status, same error object."""
    reference = _fastapi_reference()
    for path, headers, content in BODY_CASES:
        got = httpx.post(facade.base + path, content=content, headers=headers, timeout=10)
        want = reference.post(path, content=content, headers=headers)
        assert got.status_code == want.status_code, (path, headers, content, got.text, want.text)
        if want.status_code != 200:
            assert got.json() == want.json(), (path, headers, content)
            validate("ErrorResponse", got.json())


def test_a_body_without_content_type_is_json(facade: Facade) -> None:
    """The one deliberate difference from FastAPI (which refused it): as the old chat fast path did."""
    for path, body in (("/chat/completions", CHAT), ("/embeddings", b'{"model": "embed:1", "input": "a"}')):
        assert httpx.post(facade.base + path, content=body, timeout=10).status_code == 200
    r = httpx.post(facade.base + "/chat/completions", content=b'{"model": "x"}', timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


def test_both_prefixes_count_one_series(fake: FakeOllama, facade_factory: Callable[..., Facade]) -> None:
    """``kcr_openai_requests_total`` is labelled by the route as declared: one series for both mounts;
    401s (the key is checked by the dispatcher) are counted too, a wrong method is not."""
    keyed = facade_factory("--ollama-host", fake.url, "--model", MODEL, environ={"KCR_API_KEYS": "k1"})
    auth = {"authorization": "Bearer k1"}
    before = _counted(keyed)
    for prefix in ("/v1", "/openai/v1"):
        assert raw_chat_at(keyed, prefix, auth).status_code == 200
        assert raw_chat_at(keyed, prefix, {}).status_code == 401
        assert httpx.get(keyed.url + prefix + "/chat/completions", headers=auth).status_code == 405
    after = _counted(keyed)
    grown = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert grown == {
        '{code="200",model="smollm2:135m",route="/chat/completions"}': 2.0,
        '{code="401",model="",route="/chat/completions"}': 2.0,
    }, grown


def raw_chat_at(facade: Facade, prefix: str, headers: dict[str, str]) -> httpx.Response:
    body = {"model": MODEL, "messages": USER}
    return httpx.post(facade.url + prefix + "/chat/completions", json=body, headers=headers, timeout=10)


def _counted(facade: Facade) -> dict[str, float]:
    """``kcr_openai_requests_total`` samples by labels."""
    text = httpx.get(facade.url + "/metrics", timeout=10).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("kcr_openai_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            samples[labels[len("kcr_openai_requests_total") :]] = float(value)
    return samples
