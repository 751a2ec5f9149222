"""The Responses API's translations, in process: request items → neutral messages, the echoed fields,
and the writer's event sequence (validated against OpenAI's OpenAPI document)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest

from server import generation as g
from server.errors import InvalidInput, UpstreamError
from server.openai import responses
from server.openai import responses_types as rt
from server.openai.responses_stream import ResponseWriter, response_object
from tests.openai.schema import validate, validate_response_events


def req(**fields: Any) -> rt.ResponsesRequest:
    return rt.ResponsesRequest.model_validate({"model": "m", "input": "hi", **fields})


def test_items_become_messages() -> None:
    plan = responses.plan(
        req(
            instructions="be brief",
            input=[
                {"role": "developer", "content": "rules"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
                },
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "hmm"}],
                },
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1}'},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": [{"type": "input_text", "text": "ok"}],
                },
            ],
        )
    )
    m = plan.request.messages
    assert [x.role for x in m] == ["system", "system", "user", "assistant", "tool"]
    assert m[2].text == "a\nb" and m[3].reasoning == "hmm"
    assert m[3].tool_calls == (g.ToolCall("c1", "f", '{"x": 1}'), g.ToolCall("c2", "g", "{}"))
    assert m[4] == g.Message("tool", "ok", tool_call_id="c1", tool_name="f")


def test_parameters_and_echo() -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    plan = responses.plan(
        req(
            tools=[tool],
            tool_choice={"type": "function", "name": "f"},
            max_output_tokens=9,
            temperature=0.5,
            top_logprobs=2,
            parallel_tool_calls=False,
            text={"format": {"type": "json_object"}},
            reasoning={"effort": "minimal"},
            metadata={"k": "v"},
            user="u",
        )
    )
    r = plan.request
    assert r.tool_choice == g.ToolChoice("named", "f") and r.max_tokens == 9 and r.logprobs == 2
    assert r.output_format == "json" and r.reasoning == "low" and r.sampling.temperature == 0.5
    assert plan.one_call and plan.logprobs and not plan.encrypted_reasoning
    echo = plan.echo
    assert echo["tool_choice"] == {"type": "function", "name": "f"} and echo["metadata"] == {"k": "v"}
    assert echo["tools"] == [
        {
            "type": "function",
            "name": "f",
            "description": None,
            "parameters": {"type": "object"},
            "strict": None,
        }
    ]
    assert echo["user"] == "u" and echo["store"] is False and echo["parallel_tool_calls"] is False
    assert "user" not in responses.plan(req()).echo and responses.plan(req()).request.logprobs is None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"store": True}, "store"),
        ({"text": {"verbosity": "low"}}, "text.verbosity"),
        ({"input": [{"type": "message"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0]"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]},
            "input[0].arguments",
        ),
        ({"input": [{"type": "computer_call"}]}, "input[0].type"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
    ],
)
def test_refusals(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as err:
        responses.plan(req(**fields))
    assert err.value.param == param


async def _aiter(events: Iterable[g.Event]) -> AsyncIterator[g.Event]:
    for event in events:
        yield event


EVENTS: list[g.Event] = [
    g.Start(0),
    g.ReasoningDelta(0, "hmm"),
    g.TextDelta(0, "Hel", (g.TokenLogprob("Hel", -0.5, (("Hel", -0.5),)),)),
    g.TextDelta(0, "lo"),
    g.ToolCallDelta(0, g.ToolCall("", "f", "{}")),
    g.ToolCallDelta(0, g.ToolCall("call_2", "f", '{"a": 1}')),
    g.Finish(0, "tool_calls"),
    g.Usage(3, 4),
]


def test_the_writer_streams_what_it_returns() -> None:
    plan = responses.plan(req(top_logprobs=1))
    writer = ResponseWriter("m", plan, stream=True)
    text = b"".join(f for f in (writer(ev) for ev in EVENTS) if f).decode()
    events = validate_response_events(text)
    final = events[-1]["response"]
    whole, usage = asyncio.run(response_object(_aiter(EVENTS), "m", plan))
    validate("Response", whole)
    assert usage == g.Usage(3, 4) and whole["usage"]["total_tokens"] == 7
    kinds = [item["type"] for item in whole["output"]]
    assert (
        kinds
        == [item["type"] for item in final["output"]]
        == ["reasoning", "message", "function_call", "function_call"]
    )
    assert whole["output"][1]["content"][0]["logprobs"][0]["token"] == "Hel"
    assert whole["output"][3]["call_id"] == "call_2" and whole["output"][2]["call_id"].startswith("call_")
    one = responses.plan(req(parallel_tool_calls=False))
    assert len(asyncio.run(response_object(_aiter(EVENTS), "m", one))[0]["output"]) == 3


def test_a_failure_is_an_error_then_response_failed() -> None:
    writer = ResponseWriter("m", responses.plan(req()), stream=True)
    head = writer(g.Start(0)) or b""
    tail = writer.fail(UpstreamError("Ollama failed"))
    events = validate_response_events((head + tail).decode())
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert (
        events[2]["message"] == "Ollama failed" and orjson.loads(orjson.dumps(events[3]))["response"]["error"]
    )
