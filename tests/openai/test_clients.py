"""Real clients, as a new user would drive them, against ``kcr serve ollama`` in front of the llama.cpp
stand-in (SmolLM2-135M: assertions are on protocol shape and constraint satisfaction, never on answer
quality). The official ``openai`` SDK (Responses create/stream/parse, enforced tool choice, legacy
functions, logprobs, reasoning), ``openai-agents`` (its default model speaks the Responses API),
langchain-openai (``use_responses_api=True``, ``with_structured_output(method="function_calling")``),
instructor's TOOLS mode, pydantic-ai's Responses model and the ``anthropic`` SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.ollama_standin.process import StandinHandle, start_standin
from tests.openai.schema import validate, validate_response_events
from tests.procs import ServerProcess, start_kcr

pytestmark = pytest.mark.llm

SMOL = "smol"
WEATHER_ARGS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}},
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather of a city", "parameters": WEATHER_ARGS},
}
TIME_ARGS = {
    "type": "object",
    "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
    "required": ["zone"],
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "description": "Current time", "parameters": TIME_ARGS},
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


class City(BaseModel):
    name: str
    country: str


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with start_standin(preload=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def kcr(standin: StandinHandle) -> Iterator[ServerProcess]:
    server = start_kcr(
        "serve",
        "ollama",
        "--ollama-host",
        standin.url,
        "--model",
        "smollm2:135m",
        "--served-model-name",
        SMOL,
        "--first-token-timeout",
        "30",
        "--request-timeout",
        "120",
    )
    yield server
    server.stop()


def sdk(kcr: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=kcr.url + "/v1", api_key="x", max_retries=0, timeout=120)


def dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump(exclude_unset=True, by_alias=True)


def valid_arguments(arguments: str, schema: dict[str, Any]) -> dict[str, Any]:
    value = json.loads(arguments)
    jsonschema.validate(value, schema)
    return value


# --- the openai SDK ------------------------------------------------------------------------------------


def test_sdk_responses_create_and_stream(kcr: ServerProcess) -> None:
    client = sdk(kcr)
    r = client.responses.create(
        model=SMOL, input="Say hi", instructions="Be brief", max_output_tokens=8, temperature=0
    )
    validate("Response", dump(r))
    assert r.status in ("completed", "incomplete") and r.output_text and r.usage.output_tokens <= 8
    with client.responses.stream(model=SMOL, input="Say hi", max_output_tokens=24) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert deltas
    raw = httpx.post(
        kcr.url + "/openai/v1/responses",
        json={"model": SMOL, "input": "Count", "stream": True, "max_output_tokens": 6},
        timeout=120,
    )
    events = validate_response_events(raw.text)
    assert events[0]["type"] == "response.created" and events[-1]["type"] in (
        "response.completed",
        "response.incomplete",
    )


def test_sdk_responses_parse_with_a_pydantic_model(kcr: ServerProcess) -> None:
    r = sdk(kcr).responses.parse(
        model=SMOL,
        input="Name a city and its country.",
        text_format=City,
        max_output_tokens=60,
        temperature=0,
    )
    validate("Response", dump(r))
    assert isinstance(r.output_parsed, City)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_time"}}])
def test_sdk_chat_tool_choice_is_enforced(kcr: ServerProcess, choice: Any) -> None:
    client = sdk(kcr)
    r = client.chat.completions.create(
        model=SMOL, messages=ASK, tools=[WEATHER, TIME], tool_choice=choice, max_tokens=60, temperature=0
    )
    validate("CreateChatCompletionResponse", dump(r))
    assert r.choices[0].finish_reason == "tool_calls"
    (call,) = r.choices[0].message.tool_calls
    schemas = {"get_weather": WEATHER_ARGS, "get_time": TIME_ARGS}
    valid_arguments(call.function.arguments, schemas[call.function.name])
    if isinstance(choice, dict):
        assert call.function.name == "get_time"
    streamed = list(
        client.chat.completions.create(
            model=SMOL, messages=ASK, tools=[WEATHER, TIME], tool_choice=choice, max_tokens=60, stream=True
        )
    )
    for chunk in streamed:
        validate("CreateChatCompletionStreamResponse", dump(chunk))
    assert streamed[-1].choices[0].finish_reason == "tool_calls"


def test_sdk_legacy_functions(kcr: ServerProcess) -> None:
    r = sdk(kcr).chat.completions.create(
        model=SMOL,
        messages=ASK,
        functions=[WEATHER["function"]],
        function_call={"name": "get_weather"},
        max_tokens=60,
    )
    validate("CreateChatCompletionResponse", dump(r))
    assert r.choices[0].finish_reason == "function_call"
    valid_arguments(r.choices[0].message.function_call.arguments, WEATHER_ARGS)


def test_sdk_logprobs(kcr: ServerProcess) -> None:
    client = sdk(kcr)
    r = client.chat.completions.create(model=SMOL, messages=ASK, logprobs=True, top_logprobs=3, max_tokens=5)
    validate("CreateChatCompletionResponse", dump(r))
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 5
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 3 for t in content)
    assert "".join(t.token for t in content) == r.choices[0].message.content
    c = client.completions.create(
        model=SMOL, prompt="Once upon a time", logprobs=2, max_tokens=4, temperature=0
    )
    validate("CreateCompletionResponse", dump(c))
    # Up to 2 per token: the legacy shape keys alternatives by their text, and byte-level pieces of
    # one character all read as U+FFFD (a sampled emoji once left one key of two).
    assert len(c.choices[0].logprobs.tokens) == 4 and all(
        1 <= len(t) <= 2 for t in c.choices[0].logprobs.top_logprobs
    )
    body = {
        "model": SMOL,
        "input": "Hi",
        "max_output_tokens": 4,
        "top_logprobs": 2,
        "include": ["message.output_text.logprobs"],
    }
    resp = httpx.post(kcr.url + "/v1/responses", json=body, timeout=120).json()
    validate("Response", resp)
    assert len(resp["output"][0]["content"][0]["logprobs"]) == 4


def test_sdk_reasoning_on_a_model_that_cannot_think(kcr: ServerProcess) -> None:
    client = sdk(kcr)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=SMOL, messages=ASK, reasoning_effort="low", max_tokens=4)
    assert err.value.body["param"] == "reasoning_effort" and "does not support thinking" in err.value.message  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=SMOL, input="x", reasoning={"effort": "high"}, max_output_tokens=4)
    assert err.value.body["param"] == "reasoning.effort"  # type: ignore[index]
    off = client.chat.completions.create(model=SMOL, messages=ASK, reasoning_effort="none", max_tokens=4)
    assert off.choices[0].message.content


# --- the agent frameworks ----------------------------------------------------------------------------


def test_openai_agents(kcr: ServerProcess) -> None:
    import agents

    agents.set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=kcr.url + "/v1", api_key="x", max_retries=0, timeout=120)
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        calls.append(city)
        return "sunny"

    model = agents.OpenAIResponsesModel(model=SMOL, openai_client=client)  # what Agent(model="...") builds
    settings = agents.ModelSettings(max_tokens=40, temperature=0)
    plain = agents.Agent(name="plain", instructions="Answer briefly.", model=model, model_settings=settings)
    result = agents.Runner.run_sync(plain, "Say hi")
    assert isinstance(result.final_output, str)
    forced = agents.Agent(
        name="tools",
        model=model,
        tools=[get_weather],
        tool_use_behavior="stop_on_first_tool",
        model_settings=agents.ModelSettings(max_tokens=60, temperature=0, tool_choice="required"),
    )
    result = agents.Runner.run_sync(forced, "What is the weather in Paris?")
    assert calls and result.final_output == "sunny"
    asyncio.run(client.close())


def test_langchain_openai(kcr: ServerProcess) -> None:
    import langchain_openai as lc

    llm = lc.ChatOpenAI(
        model=SMOL,
        base_url=kcr.url + "/v1",
        api_key="x",
        max_retries=0,
        timeout=120,
        use_responses_api=True,
        max_tokens=40,
        temperature=0,
    )
    message = llm.invoke("Say hi")
    assert message.content and message.response_metadata.get("status") in ("completed", "incomplete")
    assert "".join(chunk.text for chunk in llm.stream("Say hi"))
    for responses_api in (True, False):
        structured_llm = lc.ChatOpenAI(
            model=SMOL,
            base_url=kcr.url + "/v1",
            api_key="x",
            max_retries=0,
            use_responses_api=responses_api,
            max_tokens=60,
            temperature=0,
        )
        city = structured_llm.with_structured_output(City, method="function_calling").invoke("Name a city.")
        assert isinstance(city, City)  # None when tool_choice was not enforced


def test_instructor_tools_mode(kcr: ServerProcess) -> None:
    import instructor  # installed by bootstrap.sh from requirements/test-nodeps.lock

    client = instructor.from_openai(sdk(kcr), mode=instructor.Mode.TOOLS)
    city = client.chat.completions.create(
        model=SMOL,
        response_model=City,
        max_retries=0,
        max_tokens=120,
        temperature=0,
        messages=[{"role": "user", "content": "Name a city."}],
    )
    assert isinstance(city, City)


def test_pydantic_ai_responses_model(kcr: ServerProcess) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=kcr.url + "/v1", api_key="x")
    model = OpenAIResponsesModel(SMOL, provider=provider)
    settings = {"max_tokens": 60, "temperature": 0}
    text = Agent(model, model_settings=settings).run_sync("Say hi")  # type: ignore[arg-type]
    assert isinstance(text.output, str)
    city = Agent(model, output_type=City, model_settings=settings, retries=0).run_sync("Name a city.")  # type: ignore[arg-type]
    assert isinstance(city.output, City)  # a tool call the facade enforced (tool_choice required)


# --- the anthropic SDK ---------------------------------------------------------------------------------


def test_anthropic_sdk(kcr: ServerProcess) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=kcr.url, api_key="x", max_retries=0, timeout=120)
    m = client.messages.create(model=SMOL, max_tokens=8, messages=[{"role": "user", "content": "Say hi"}])
    assert m.type == "message" and m.content[0].type == "text" and m.usage.output_tokens <= 8
    with client.messages.stream(model=SMOL, max_tokens=8, messages=[{"role": "user", "content": "Hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert final.content[0].text == text and final.stop_reason in ("end_turn", "max_tokens")
    tool = {"name": "get_weather", "description": "Weather of a city", "input_schema": WEATHER_ARGS}
    m = client.messages.create(
        model=SMOL,
        max_tokens=60,
        messages=ASK,
        tools=[tool],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    (use,) = [b for b in m.content if b.type == "tool_use"]
    assert m.stop_reason == "tool_use" and use.name == "get_weather"
    jsonschema.validate(use.input, WEATHER_ARGS)
