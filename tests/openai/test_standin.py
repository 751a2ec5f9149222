"""End to end: ``python -m server serve ollama`` as a real process in front of the llama.cpp stand-in,
driven by the official ``openai`` SDK (sync and async) and the KServe client. Small outputs only."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.ollama_standin.process import StandinHandle, start_standin
from tests.openai.schema import validate
from tests.procs import ServerProcess, start_kcr

pytestmark = pytest.mark.llm

MODEL = "smollm2:135m"
EMBED = "smollm2-embed:135m"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with start_standin(preload=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def kcr(standin: StandinHandle) -> Iterator[ServerProcess]:
    server = start_kcr(
        "serve", "ollama", "--ollama-host", standin.url, "--model", MODEL, "--embedding-model", EMBED,
        "--served-model-name", "smol", "--first-token-timeout", "20", "--request-timeout", "60",
    )  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(standin: StandinHandle) -> None:
    standin.reset_faults()


def sdk(kcr: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=kcr.url + "/v1", api_key="x", max_retries=0, timeout=60)


def body_of(obj: openai.BaseModel) -> dict:
    return obj.model_dump(exclude_unset=True)


def test_chat_non_stream_and_alias(kcr: ServerProcess, standin: StandinHandle) -> None:
    r = sdk(kcr).chat.completions.create(
        model="smol", messages=[{"role": "user", "content": "Say hi"}], max_completion_tokens=5, temperature=0
    )
    validate("CreateChatCompletionResponse", body_of(r))
    assert r.model == "smol" and r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5 and r.usage.prompt_tokens > 0
    sent = standin.events("request")[-1]["body"]
    assert sent["model"] == MODEL and sent["options"]["num_predict"] == 5 and "top_p" not in sent["options"]


def test_tools_round_trip(kcr: ServerProcess, standin: StandinHandle) -> None:
    client = sdk(kcr)
    ask = [{"role": "user", "content": 'Weather? [[call:get_weather {"city": "Tokyo"}]]'}]
    first = client.chat.completions.create(model="smol", messages=ask, tools=[WEATHER], max_tokens=64)
    validate("CreateChatCompletionResponse", body_of(first))
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.id.startswith("call_") and json.loads(call.function.arguments) == {"city": "Tokyo"}
    streamed = list(
        client.chat.completions.create(
            model="smol", messages=ask, tools=[WEATHER], max_tokens=64, stream=True
        )
    )
    for chunk in streamed:
        validate("CreateChatCompletionStreamResponse", body_of(chunk))
    assert streamed[-1].choices[0].finish_reason == "tool_calls"
    second = client.chat.completions.create(
        model="smol",
        tools=[WEATHER],
        max_tokens=4,
        messages=[
            *ask,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].finish_reason in ("stop", "length")
    tool_msg = standin.events("request")[-1]["body"]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_name"] == "get_weather"


def test_json_mode(kcr: ServerProcess, standin: StandinHandle) -> None:
    r = sdk(kcr).chat.completions.create(
        model="smol",
        messages=[{"role": "user", "content": 'JSON please [[say:{"ok": true}]]'}],
        response_format={"type": "json_object"},
        max_tokens=16,
    )
    assert json.loads(r.choices[0].message.content) == {"ok": True}
    assert standin.events("request")[-1]["body"]["format"] == "json"


@pytest.mark.anyio
async def test_async_stream_include_usage(kcr: ServerProcess) -> None:
    client = openai.AsyncOpenAI(base_url=kcr.url + "/openai/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="smol", messages=[{"role": "user", "content": "Count"}], max_tokens=6, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = [c async for c in stream]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", body_of(c))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    await client.close()


def test_completions_embeddings_models(kcr: ServerProcess) -> None:
    client = sdk(kcr)
    c = client.completions.create(model="smol", prompt="Once upon a time", max_tokens=4)
    validate("CreateCompletionResponse", body_of(c))
    assert c.usage is not None and c.usage.completion_tokens <= 4
    e = client.embeddings.create(model=EMBED, input=["hello", "world"])  # base64 on the wire (SDK default)
    assert len(e.data) == 2 and len(e.data[0].embedding) == 576
    assert sorted(m.id for m in client.models.list()) == sorted(["smol", EMBED])


@pytest.mark.anyio
async def test_kserve_client(kcr: ServerProcess) -> None:
    from kserve import InferenceRESTClient, RESTConfig

    async with InferenceRESTClient(RESTConfig(protocol="v1")) as client:
        assert await client.is_model_ready(kcr.url, "smol") is True
    async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
        assert await client.is_server_ready(kcr.url) is True
        assert await client.is_model_ready(kcr.url, "smol") is True
    assert httpx.get(kcr.url + "/v1/models").json()["models"] == ["smol", EMBED]


def test_errors(kcr: ServerProcess, standin: StandinHandle) -> None:
    client = sdk(kcr)
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=MODEL, messages=msgs)  # only the alias is served
    standin.set_faults(busy=1)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="smol", messages=msgs, max_tokens=4, stream=True)
    assert err.value.status_code == 503 and err.value.response.headers["retry-after"]
    standin.set_faults(error_after=2)
    with pytest.raises(openai.APIError, match="error was encountered"):
        for _ in client.chat.completions.create(model="smol", messages=msgs, max_tokens=8, stream=True):
            pass


def test_disconnect_stops_generation_upstream(kcr: ServerProcess, standin: StandinHandle) -> None:
    standin.set_faults(delay_between=0.2)
    since = standin.events()[-1]["seq"]
    body = {
        "model": "smol",
        "messages": [{"role": "user", "content": "Tell a story"}],
        "max_tokens": 16,
        "stream": True,
    }
    with httpx.stream("POST", kcr.url + "/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        next(r.iter_lines())
    event = standin.wait_for_event("disconnect", timeout=1.0, since=since)
    assert event["lines_sent"] < 16
