"""The Responses API over the scripted fake Ollama: the official SDK's ``responses.create``/``stream``,
every body and stream event validated against OpenAI's OpenAPI document, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.openai.conftest import MODEL, Facade
from tests.openai.fake_ollama import FakeOllama
from tests.openai.schema import validate, validate_response_events

TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def post(facade: Facade, **body: Any) -> httpx.Response:
    return httpx.post(facade.base + "/responses", json={"model": MODEL, **body}, timeout=10)


def test_create_text(facade: Facade, fake: FakeOllama) -> None:
    r = facade.client().responses.create(
        model=MODEL, input="Hi", instructions="Be brief", max_output_tokens=50
    )
    raw = r.model_dump(exclude_unset=True)
    validate("Response", raw)
    assert r.status == "completed" and r.output_text == "Hello there!" and r.usage.total_tokens == 11
    sent = fake.bodies("/api/chat")[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
    assert sent["options"] == {"num_predict": 50}


def test_stream_event_sequence(facade: Facade) -> None:
    r = post(facade, input="Hi", stream=True)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = validate_response_events(r.text)
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Hello there!"
    with facade.client().responses.stream(model=MODEL, input="Hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Hello there!"


def test_a_cut_answer_is_incomplete(facade: Facade) -> None:
    events = validate_response_events(post(facade, input="Hi", stream=True, max_output_tokens=2).text)
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    whole = post(facade, input="Hi", max_output_tokens=2).json()
    validate("Response", whole)
    assert whole["status"] == "incomplete" and whole["output"][0]["status"] == "incomplete"


def test_function_calls_and_their_outputs(facade: Facade, fake: FakeOllama) -> None:
    client = facade.client()
    r = client.responses.create(model=MODEL, input="Weather?", tools=[TOOL], tool_choice="required")  # type: ignore[list-item]
    validate("Response", r.model_dump(exclude_unset=True))
    (call,) = r.output
    assert (
        call.type == "function_call"
        and call.name == "get_weather"
        and json.loads(call.arguments) == {"city": "x"}
    )
    assert call.call_id.startswith("call_")
    events = validate_response_events(
        post(
            facade,
            input="Weather?",
            tools=[TOOL],
            stream=True,
            tool_choice={"type": "function", "name": "get_weather"},
        ).text
    )
    types = [e["type"] for e in events]
    assert (
        "response.function_call_arguments.delta" in types and "response.function_call_arguments.done" in types
    )
    follow = client.responses.create(
        model=MODEL,
        tools=[TOOL],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "Weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": "get_weather",
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert follow.output_text == "Hello there!"
    sent = fake.bodies("/api/chat")[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "index": 0,
        "name": "get_weather",
        "arguments": {"city": "x"},
    }
    assert sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_name": "get_weather",
        "tool_call_id": call.call_id,
    }


def test_text_format_and_logprobs(facade: Facade, fake: FakeOllama) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    whole = post(
        facade, input="x", text={"format": fmt}, include=["message.output_text.logprobs"], top_logprobs=1
    )
    body = whole.json()
    validate("Response", body)
    assert fake.bodies("/api/chat")[-1]["format"] == schema and body["text"]["format"]["name"] == "thing"
    part = body["output"][0]["content"][0]
    assert (
        json.loads(part["text"]) == {"a": 1}
        and "".join(lp["token"] for lp in part["logprobs"]) == part["text"]
    )
    events = validate_response_events(post(facade, input="x", top_logprobs=0, stream=True).text)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert all(len(e["logprobs"]) == 1 for e in deltas)


def test_reasoning_items(facade: Facade, fake: FakeOllama) -> None:
    refused = post(facade, input="x", reasoning={"effort": "high"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "reasoning.effort"
    fake.thinking = True
    body = post(
        facade, input="x", reasoning={"effort": "low"}, include=["reasoning.encrypted_content"]
    ).json()
    validate("Response", body)
    reasoning, message = body["output"]
    assert reasoning["type"] == "reasoning" and reasoning["content"] == [
        {"type": "reasoning_text", "text": "Let me think."}
    ]
    assert reasoning["encrypted_content"] == "Let me think." and message["type"] == "message"
    events = validate_response_events(post(facade, input="x", reasoning={"effort": "low"}, stream=True).text)
    assert "response.reasoning_text.delta" in [e["type"] for e in events]
    again = post(
        facade, input=[{"role": "user", "content": "x"}, reasoning, message, {"role": "user", "content": "y"}]
    )
    assert again.status_code == 200
    assert fake.bodies("/api/chat")[-1]["messages"][1] == {
        "role": "assistant",
        "content": "Hello there!",
        "thinking": "Let me think.",
    }


def test_mid_stream_failure_is_an_error_then_response_failed(facade: Facade, fake: FakeOllama) -> None:
    fake.error_after = 2
    events = validate_response_events(post(facade, input="Hi", stream=True).text)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["error"]["code"] == "server_error"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"include": ["file_search_call.results"]}, "include"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "web_search_preview"}, "tools": [TOOL]}, "tool_choice"),
        ({"input": None}, "input"),
    ],
)
def test_refusals_name_the_field(facade: Facade, fields: dict[str, Any], param: str) -> None:
    r = post(facade, **{"input": "x", **fields})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error


def test_unknown_model_and_sdk_errors(facade: Facade) -> None:
    with pytest.raises(openai.NotFoundError):
        facade.client().responses.create(model="nope", input="x")
