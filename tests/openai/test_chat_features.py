"""Chat and completions over the scripted fake Ollama, with the official SDK: enforced tool choice,
legacy functions, logprobs, reasoning, the embeddings fix hint and vLLM's metric names. Every body
and chunk is validated against OpenAI's OpenAPI document."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.openai.conftest import MODEL, Facade
from tests.openai.fake_ollama import FakeOllama
from tests.openai.schema import validate

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def body(obj: openai.BaseModel) -> dict:
    return obj.model_dump(exclude_unset=True)


def test_a_named_tool_is_enforced(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    choice = {"type": "function", "function": {"name": "get_weather"}}
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice=choice)
    validate("CreateChatCompletionResponse", body(r))
    sent = fake.bodies("/api/chat")[-1]
    assert sent["format"] == WEATHER["function"]["parameters"]  # constrained to the arguments
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "x"}
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER], tool_choice=choice, stream=True
        )
    )
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", body(c))
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(calls) == 1 and chunks[-1].choices[0].finish_reason == "tool_calls"


def test_required_is_a_call_of_one_of_the_tools(facade: Facade, fake: FakeOllama) -> None:
    r = facade.client().chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice="required"
    )
    sent = fake.bodies("/api/chat")[-1]
    names = [alt["properties"]["name"]["const"] for alt in sent["format"]["anyOf"]]
    assert names == ["get_weather", "get_time"]
    (call,) = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "x"}


def test_none_sends_no_tools_and_errors_name_the_choice(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none")
    assert "tools" not in fake.bodies("/api/chat")[-1] and r.choices[0].message.content == "Hello there!"
    for kwargs in (
        {"tool_choice": "required"},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "f"}}},
    ):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model=MODEL, messages=ASK, **kwargs)  # type: ignore[arg-type]
        assert err.value.body["param"] == "tool_choice"  # type: ignore[index]


def test_legacy_functions_answer_in_the_legacy_shape(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    fn = WEATHER["function"]
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, functions=[fn], function_call={"name": "get_weather"}
    )
    validate("CreateChatCompletionResponse", body(r))
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "function_call" and message.tool_calls is None
    assert message.function_call.name == "get_weather" and json.loads(message.function_call.arguments)
    assert fake.bodies("/api/chat")[-1]["tools"][0]["function"]["name"] == "get_weather"
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=ASK, functions=[fn], function_call={"name": "get_weather"}, stream=True
        )
    )
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", body(c))
    deltas = [c.choices[0].delta.function_call for c in chunks if c.choices[0].delta.function_call]
    assert deltas[0].name == "get_weather" and chunks[-1].choices[0].finish_reason == "function_call"
    auto = client.chat.completions.create(model=MODEL, messages=ASK, functions=[fn])
    assert auto.choices[0].finish_reason == "stop" and auto.choices[0].message.content == "Hello there!"


def test_chat_logprobs(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    r = client.chat.completions.create(model=MODEL, messages=ASK, logprobs=True, top_logprobs=2)
    validate("CreateChatCompletionResponse", body(r))
    sent = fake.bodies("/api/chat")[-1]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    content = r.choices[0].logprobs.content
    assert "".join(t.token for t in content) == r.choices[0].message.content
    assert content[0].bytes == list(content[0].token.encode()) and len(content[0].top_logprobs) == 2
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, logprobs=True, stream=True))
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", body(c))
    tokens = [t.token for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert "".join(tokens) == "Hello there!"
    assert client.chat.completions.create(model=MODEL, messages=ASK).choices[0].logprobs is None


def test_completion_logprobs_in_the_legacy_shape(facade: Facade) -> None:
    client = facade.client()
    c = client.completions.create(model=MODEL, prompt="Once", logprobs=1)
    validate("CreateCompletionResponse", body(c))
    lp = c.choices[0].logprobs
    assert "".join(lp.tokens) == c.choices[0].text and lp.text_offset[0] == 0 and len(lp.top_logprobs[0]) == 1
    streamed = list(client.completions.create(model=MODEL, prompt="Once", logprobs=0, stream=True))
    offsets = [o for s in streamed if s.choices[0].logprobs for o in s.choices[0].logprobs.text_offset]
    assert offsets == [0, 3, 5, 11]
    with pytest.raises(openai.BadRequestError, match="echo"):
        client.completions.create(model=MODEL, prompt="Once", logprobs=1, echo=True)


def test_reasoning_effort(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ASK, reasoning_effort="high")
    assert err.value.body["param"] == "reasoning_effort"  # type: ignore[index]
    assert "does not support thinking" in err.value.message and "cannot think" in err.value.message
    assert fake.bodies("/api/chat")[-1]["think"] == "high"
    r = client.chat.completions.create(model=MODEL, messages=ASK, reasoning_effort="none")
    assert fake.bodies("/api/chat")[-1]["think"] is False and r.choices[0].message.content
    fake.thinking = True
    r = client.chat.completions.create(model=MODEL, messages=ASK, reasoning_effort="low")
    validate("CreateChatCompletionResponse", body(r))
    assert r.choices[0].message.reasoning_content == "Let me think."  # type: ignore[attr-defined]
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=ASK, reasoning_effort="low", stream=True)
    )
    traces = [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks]
    assert "Let me think." in traces


def test_token_id_embeddings_name_the_client_fix(facade: Facade) -> None:
    with pytest.raises(openai.BadRequestError, match="check_embedding_ctx_length=False") as err:
        facade.client().embeddings.create(model="embed:1", input=[[1, 2, 3]])
    assert err.value.body["param"] == "input"  # type: ignore[index]


def test_vllm_metric_names(facade: Facade) -> None:
    facade.client().chat.completions.create(model=MODEL, messages=ASK)
    text = httpx.get(facade.url + "/metrics").text
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
    ):
        assert f'{name}{{model_name="{MODEL}"' in text or f"{name}{{le=" in text, name
    assert f'vllm:generation_tokens_total{{model_name="{MODEL}"}}' in text
