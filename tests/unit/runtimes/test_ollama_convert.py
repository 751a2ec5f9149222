"""Neutral requests → Ollama native payloads, and native chunks → a normalised form; no server."""

from __future__ import annotations

from typing import Any

import pytest

from runtimes.ollama_convert import (
    ForcedCall,
    NativeChunk,
    NativeToolCall,
    arguments_text,
    chat_payload,
    finish_reason,
    generate_payloads,
    native_messages,
    native_tools,
    options,
)
from server import generation as g
from server.errors import InvalidInput

HI = (g.Message("user", "hi"),)


def chat(**fields: Any) -> dict[str, Any]:
    request = g.GenerationRequest(model="alias", **{"messages": HI, **fields})
    return chat_payload(request, "tag:1", keep_alive=-1, num_ctx=None)[0]


def test_minimal_chat_payload() -> None:
    assert chat() == {
        "model": "tag:1",
        "options": {},
        "keep_alive": -1,
        "messages": [{"role": "user", "content": "hi"}],
    }
    request = g.GenerationRequest(model="alias", messages=HI)
    assert "keep_alive" not in chat_payload(request, "t", keep_alive=None, num_ctx=None)[0]


def test_options_only_what_was_given() -> None:
    assert options(g.Sampling(), None, None) == {}
    sampling = g.Sampling(
        temperature=0.0, top_p=0.5, seed=0, presence_penalty=0.2, frequency_penalty=-1, stop=("\n",), top_k=7
    )
    assert options(sampling, 5, 4096) == {
        "temperature": 0.0,
        "top_p": 0.5,
        "top_k": 7,
        "seed": 0,
        "presence_penalty": 0.2,
        "frequency_penalty": -1,
        "stop": ["\n"],
        "num_ctx": 4096,
        "num_predict": 5,
    }
    assert chat(max_tokens=3)["options"] == {"num_predict": 3}


def test_messages_with_images_tool_calls_and_results() -> None:
    messages = (
        g.Message("system", "be brief"),
        g.Message("user", "look", images=("AAAA",)),
        g.Message(
            "assistant",
            "",
            tool_calls=(g.ToolCall("call_1", "f", '{"where": {"city": "Tokyo"}}'), g.ToolCall("", "g", "")),
        ),
        g.Message("tool", "sunny", tool_call_id="call_1", tool_name="f"),
    )
    assert native_messages(messages) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "look", "images": ["AAAA"]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "function": {"index": 0, "name": "f", "arguments": {"where": {"city": "Tokyo"}}},
                    "id": "call_1",
                },
                {"function": {"index": 1, "name": "g", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "sunny", "tool_name": "f", "tool_call_id": "call_1"},
    ]


SCHEMA = {"type": "object", "properties": {"where": {"type": "object", "default": None}}}
TOOLS = (g.Tool("f", "weather", SCHEMA), g.Tool("g"))


@pytest.mark.parametrize(
    ("choice", "names"),
    [
        (g.ToolChoice(), ["f", "g"]),
        (g.ToolChoice("required"), ["f", "g"]),  # forced by ``format``, see below
        (g.ToolChoice("none"), []),
        (g.ToolChoice("named", "g"), ["g"]),
    ],
)
def test_tools_follow_the_choice(choice: g.ToolChoice, names: list[str]) -> None:
    assert [x["function"]["name"] for x in native_tools(TOOLS, choice)] == names
    payload = chat(tools=TOOLS, tool_choice=choice)
    assert ("tools" in payload) == bool(names)


def test_tool_schemas_reach_ollama_untouched() -> None:
    assert native_tools(TOOLS, g.ToolChoice()) == [
        {"type": "function", "function": {"name": "f", "description": "weather", "parameters": SCHEMA}},
        {"type": "function", "function": {"name": "g"}},
    ]


def test_output_format_and_reasoning() -> None:
    assert chat(output_format="json")["format"] == "json"
    assert chat(output_format=SCHEMA)["format"] == SCHEMA
    assert "format" not in chat() and "think" not in chat()
    assert chat(reasoning="high")["think"] == "high"
    assert chat(reasoning="off")["think"] is False and chat(reasoning="on")["think"] is True
    reasoning = g.Message("assistant", "it is", reasoning="hmm")
    assert native_messages((reasoning,)) == [{"role": "assistant", "content": "it is", "thinking": "hmm"}]


def test_logprobs_are_asked_of_ollama() -> None:
    assert chat(logprobs=0)["logprobs"] is True and "top_logprobs" not in chat(logprobs=0)
    assert chat(logprobs=3)["top_logprobs"] == 3
    assert "logprobs" not in chat()
    chunk = NativeChunk.from_mapping(
        {"message": {"content": "Hi"}, "done": False,
         "logprobs": [{"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5},
                                                                       {"token": "Yo", "logprob": -1.5}]}]}
    )  # fmt: skip
    assert chunk.logprobs == (g.TokenLogprob("Hi", -0.5, (("Hi", -0.5), ("Yo", -1.5))),)


def test_a_named_choice_constrains_the_output_to_the_arguments() -> None:
    request = g.GenerationRequest(
        model="a", messages=HI, tools=TOOLS, tool_choice=g.ToolChoice("named", "f"), output_format="json"
    )
    payload, forced = chat_payload(request, "t", keep_alive=None, num_ctx=None)
    assert payload["format"] == SCHEMA and forced == ForcedCall(SCHEMA, "f")  # the call wins over the format
    assert forced.parse('{"where": {}}') == ("f", '{"where": {}}')
    assert forced.parse('{"where": ') is None  # cut short
    with pytest.raises(InvalidInput):
        chat(tools=TOOLS, tool_choice=g.ToolChoice("named", "nope"))


def test_required_constrains_the_output_to_one_of_the_calls() -> None:
    request = g.GenerationRequest(model="a", messages=HI, tools=TOOLS, tool_choice=g.ToolChoice("required"))
    payload, forced = chat_payload(request, "t", keep_alive=None, num_ctx=None)
    alternatives = payload["format"]["anyOf"]
    assert [a["properties"]["name"] for a in alternatives] == [{"const": "f"}, {"const": "g"}]
    assert alternatives[0]["properties"]["arguments"] == SCHEMA
    assert alternatives[1]["properties"]["arguments"] == {"type": "object"}
    assert forced is not None and forced.parse('{"name": "g", "arguments": {"x": 1}}') == ("g", '{"x": 1}')
    assert forced.parse('{"name": "g"}') is None
    with pytest.raises(InvalidInput):
        chat(tool_choice=g.ToolChoice("required"))
    one = chat(tools=TOOLS[:1], tool_choice=g.ToolChoice("required"))["format"]
    assert one["properties"]["name"] == {"const": "f"}  # one tool: no anyOf


def test_generate_payloads() -> None:
    request = g.GenerationRequest(model="alias", prompts=("a", "b"), suffix="z", max_tokens=16)
    assert generate_payloads(request, "tag:1", keep_alive="5m", num_ctx=2048) == [
        {"model": "tag:1", "options": {"num_ctx": 2048, "num_predict": 16}, "keep_alive": "5m", "prompt": p,
         "suffix": "z"}
        for p in ("a", "b")
    ]  # fmt: skip
    request = g.GenerationRequest(model="alias", prompts=("a",))
    assert "suffix" not in generate_payloads(request, "t", keep_alive=None, num_ctx=None)[0]


def test_chat_chunks() -> None:
    chunk = NativeChunk.from_mapping(
        {
            "message": {
                "role": "assistant",
                "content": "",
                "thinking": "hmm",
                "tool_calls": [{"function": {"index": 0, "name": "f", "arguments": {"city": "Tokyo"}}}],
            },
            "done": False,
        }
    )
    assert chunk == NativeChunk(thinking="hmm", tool_calls=[NativeToolCall("f", {"city": "Tokyo"})])
    final = NativeChunk.from_mapping(
        {"message": {"content": "!"}, "done": True, "done_reason": "length", "prompt_eval_count": 7,
         "eval_count": 4, "eval_duration": 80_000_000}
    )  # fmt: skip
    assert (final.text, final.done, final.done_reason) == ("!", True, "length")
    assert (final.prompt_tokens, final.completion_tokens, final.eval_seconds) == (7, 4, 0.08)


def test_generate_chunks() -> None:
    assert NativeChunk.from_mapping({"response": "Hel", "done": False}).text == "Hel"
    assert NativeChunk.from_mapping({"response": None, "done": True}) == NativeChunk(done=True)


def test_arguments_and_finish_reason() -> None:
    assert arguments_text({"city": "Tōkyō"}) == '{"city": "Tōkyō"}'
    assert arguments_text('{"raw": 1}') == '{"raw": 1}'
    assert finish_reason("length", True) == "length"
    assert finish_reason("stop", True) == "tool_calls"
    assert finish_reason("stop", False) == "stop"
    assert finish_reason(None, False) == "stop"
