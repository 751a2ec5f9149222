"""The OpenAI wing's translations: requests → neutral requests, neutral events → OpenAI JSON.

The responses are written from plain dicts; each test also builds the same response with the
pydantic wire models of ``server.openai.types`` (what the facade used to serialize, chunk by chunk)
and holds the two byte-for-byte equal.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest

from server import generation as g
from server.errors import InvalidInput
from server.openai import serving, translate
from server.openai import types as t
from server.openai.errors import error_object

USER = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> t.ChatCompletionRequest:
    return t.ChatCompletionRequest.model_validate({"model": "m", "messages": USER, **fields})


def completion(**fields: Any) -> t.CompletionRequest:
    return t.CompletionRequest.model_validate({"model": "m", **fields})


def refused(call: Any, *args: Any) -> dict[str, Any]:
    """The error object a call raises (its status must be 400)."""
    with pytest.raises(InvalidInput) as err:
        call(*args)
    status, body, _ = error_object(err.value)
    assert status == 400
    return body


async def _aiter(events: Iterable[g.Event]) -> AsyncIterator[g.Event]:
    for event in events:
        yield event


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- requests ----------------------------------------------------------------------------------------


def test_chat_request_defaults() -> None:
    req = translate.chat_request(chat())
    assert req == g.GenerationRequest(model="m", messages=(g.Message("user", "hi"),))


def test_roles_parts_and_images() -> None:
    req = translate.chat_request(
        chat(
            messages=[
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "one"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {"type": "text", "text": "two"},
                    ],
                },
                {"role": "assistant", "content": None},
            ]
        )
    )
    assert req.messages == (
        g.Message("system", "be brief"),
        g.Message("user", "one\ntwo", images=("AAAA",)),
        g.Message("assistant", ""),
    )


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "input_audio"},
    ],
)
def test_unsupported_content_parts_name_the_message(part: dict[str, Any]) -> None:
    body = refused(translate.chat_request, chat(messages=[*USER, {"role": "user", "content": [part]}]))
    assert body["param"] == "messages[1].content"


def test_tool_history_is_checked_and_results_are_named() -> None:
    assistant = {
        "role": "assistant",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}],
    }
    req = translate.chat_request(
        chat(
            messages=[
                *USER,
                assistant,
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "function", "name": "g", "content": "rainy"},
            ]
        )
    )
    assert req.messages[1].tool_calls == (g.ToolCall("call_1", "f", "{}"),)
    assert req.messages[2] == g.Message("tool", "sunny", tool_call_id="call_1", tool_name="f")
    assert req.messages[3] == g.Message("tool", "rainy", tool_name="g")
    assistant["tool_calls"][0]["function"]["arguments"] = "{nope"  # type: ignore[index]
    body = refused(translate.chat_request, chat(messages=[*USER, assistant]))
    assert body["param"] == "messages[1].tool_calls[0].function.arguments"


def test_sampling_limits_and_format() -> None:
    req = translate.chat_request(
        chat(
            temperature=0.1,
            top_p=0.5,
            seed=3,
            stop="\n",
            presence_penalty=0.2,
            frequency_penalty=0.3,
            max_tokens=9,
            max_completion_tokens=5,
            response_format={"type": "json_object"},
        )
    )
    assert req.sampling == g.Sampling(0.1, 0.5, 3, 0.2, 0.3, ("\n",))
    assert req.max_tokens == 5 and req.output_format == "json"
    assert translate.chat_request(chat(max_tokens=9, stop=["a", "b"])).max_tokens == 9
    assert translate.chat_request(chat(stop=["a", "b"])).sampling.stop == ("a", "b")
    schema = {"type": "object"}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert translate.chat_request(chat(response_format=fmt)).output_format == schema
    assert translate.chat_request(chat(response_format={"type": "text"})).output_format is None
    body = refused(translate.chat_request, chat(response_format={"type": "json_schema", "json_schema": {}}))
    assert body["param"] == "response_format"


TOOL = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, g.ToolChoice()),
        ("auto", g.ToolChoice()),
        ("none", g.ToolChoice("none")),
        ("required", g.ToolChoice("required")),
        ({"type": "function", "function": {"name": "f"}}, g.ToolChoice("named", "f")),
    ],
)
def test_tool_choice(choice: Any, expected: g.ToolChoice) -> None:
    req = translate.chat_request(chat(tools=[TOOL], tool_choice=choice))
    assert req.tools == (g.Tool("f", "d", {"type": "object"}),)
    assert req.tool_choice == expected


def test_tool_choice_must_name_a_tool_that_was_sent() -> None:
    named = {"type": "function", "function": {"name": "nope"}}
    assert refused(translate.chat_request, chat(tools=[TOOL], tool_choice=named))["param"] == "tool_choice"
    assert refused(translate.chat_request, chat(tool_choice=named))["param"] == "tool_choice"  # none to force
    assert refused(translate.chat_request, chat(tool_choice="required"))["param"] == "tool_choice"


def test_legacy_functions_are_tools() -> None:
    fn = TOOL["function"]
    req = translate.chat_request(chat(functions=[fn], function_call={"name": "f"}))
    assert req.tools == (g.Tool("f", "d", {"type": "object"}),) and req.tool_choice == g.ToolChoice(
        "named", "f"
    )
    assert translate.chat_request(chat(functions=[fn], function_call="none")).tool_choice == g.ToolChoice(
        "none"
    )
    assert refused(translate.chat_request, chat(functions=[fn], tools=[TOOL]))["param"] == "functions"
    assert refused(translate.chat_request, chat(function_call="auto"))["param"] == "function_call"
    history = [*USER, {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
               {"role": "function", "name": "f", "content": "ok"}]  # fmt: skip
    messages = translate.chat_request(chat(functions=[fn], messages=history)).messages
    assert messages[1].tool_calls == (g.ToolCall("", "f", "{}"),) and messages[2].tool_name == "f"


def test_logprobs_and_reasoning_effort() -> None:
    assert translate.chat_request(chat()).logprobs is None
    assert translate.chat_request(chat(logprobs=True)).logprobs == 0
    assert translate.chat_request(chat(logprobs=True, top_logprobs=3)).logprobs == 3
    assert refused(translate.chat_request, chat(top_logprobs=3))["param"] == "top_logprobs"
    assert translate.chat_request(chat(reasoning_effort="none")).reasoning == "off"
    assert translate.chat_request(chat(reasoning_effort="minimal")).reasoning == "low"
    assert translate.chat_request(chat(reasoning_effort="xhigh")).reasoning == "max"
    trace = [*USER, {"role": "assistant", "content": "x", "reasoning_content": "hmm"}]
    assert translate.chat_request(chat(messages=trace)).messages[1].reasoning == "hmm"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logit_bias": {"1": 2.0}}, "logit_bias"),
    ],
)
def test_chat_refuses_what_it_cannot_do(fields: dict[str, Any], param: str) -> None:
    body = refused(translate.chat_request, chat(**fields))
    assert body["param"] == param and body["code"] == "unsupported_parameter"


def test_completion_request() -> None:
    req = translate.completion_request(completion(prompt=["a", "b"], suffix="z", n=2, stop="x"))
    assert req.prompts == ("a", "b") and req.suffix == "z" and req.n == 2
    assert req.max_tokens == 16  # OpenAI's default for legacy completions
    assert req.sampling.stop == ("x",)
    assert translate.completion_request(completion(prompt="", max_tokens=0, echo=True)).max_tokens is None
    assert translate.completion_request(completion(logprobs=0, best_of=1)).prompts == ("<|endoftext|>",)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": [1, 2]}, "prompt"),
        ({"prompt": [[1], [2]]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"logprobs": 2, "echo": True}, "logprobs"),  # no prompt logprobs
        ({"best_of": 3, "n": 2}, "best_of"),
        ({"logit_bias": {"1": 1.0}}, "logit_bias"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"prompt": [1], "logprobs": 2}, "prompt"),
    ],
)
def test_completion_refuses_what_it_cannot_do(fields: dict[str, Any], param: str) -> None:
    body = refused(translate.completion_request, completion(**fields))
    assert body["param"] == param and body["code"] == "unsupported_parameter"


def test_embedding_request() -> None:
    def req(**fields: Any) -> t.EmbeddingRequest:
        return t.EmbeddingRequest.model_validate({"model": "e", **fields})

    assert translate.embedding_request(req(input="a", dimensions=8)) == g.EmbeddingRequest("e", ("a",), 8)
    assert translate.embedding_request(req(input=["a", "b"])).inputs == ("a", "b")
    assert refused(translate.embedding_request, req(input=[1, 2]))["code"] == "unsupported_parameter"
    for empty in ("", []):
        assert refused(translate.embedding_request, req(input=empty))["param"] == "input"


# --- responses ---------------------------------------------------------------------------------------

CALL = g.ToolCall("", "get_weather", '{"city": "Tokyo"}')
EVENTS: list[g.Event] = [
    g.Start(0),
    g.ReasoningDelta(0, "hmm"),
    g.TextDelta(0, "Hel"),
    g.TextDelta(0, "lo"),
    g.Finish(0, "length"),
    g.Start(1),
    g.ToolCallDelta(1, CALL),
    g.ToolCallDelta(1, g.ToolCall("call_upstream", "f", "{}")),
    g.Finish(1, "tool_calls"),
    g.Usage(7, 12),
]


def test_chat_response_matches_the_wire_models() -> None:
    body, usage = run(serving.chat_response(_aiter(EVENTS), "m", "fp_kcr_x"))
    assert usage == g.Usage(7, 12)
    calls = body["choices"][1]["message"]["tool_calls"]
    assert calls[0]["id"].startswith("call_") and len(calls[0]["id"]) == 29
    assert calls[1]["id"] == "call_upstream"  # a backend's own id is kept
    expected = t.ChatCompletionResponse(
        id=body["id"],
        created=body["created"],
        model="m",
        system_fingerprint="fp_kcr_x",
        choices=[
            t.ChatChoice(
                index=0,
                message=t.ResponseMessage(content="Hello", reasoning_content="hmm"),
                finish_reason="length",
            ),
            t.ChatChoice(
                index=1,
                message=t.ResponseMessage(
                    content=None,
                    tool_calls=[
                        t.ResponseToolCall(id=c["id"], function=t.ResponseFunctionCall(**c["function"]))
                        for c in calls
                    ],
                ),
                finish_reason="tool_calls",
            ),
        ],
        usage=t.Usage(prompt_tokens=7, completion_tokens=12, total_tokens=19),
    )
    assert orjson.dumps(body) == orjson.dumps(expected.model_dump(mode="json"))


def test_text_and_tool_calls_in_one_choice_keep_the_text() -> None:
    events = [g.Start(0), g.TextDelta(0, "let me see"), g.ToolCallDelta(0, CALL), g.Finish(0, "tool_calls")]
    body, _ = run(serving.chat_response(_aiter([*events, g.Usage()]), "m", "fp"))
    message = body["choices"][0]["message"]
    assert message["content"] == "let me see" and len(message["tool_calls"]) == 1


def _chunk_model(head: dict[str, Any], include_usage: bool, **fields: Any) -> t.ChatCompletionChunk:
    return t.ChatCompletionChunk(**head, include_usage=include_usage, **fields)


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_chunks_match_the_wire_models(include_usage: bool) -> None:
    encode = serving.ChatChunks("m", "fp_kcr_x", include_usage)
    frames = [encode(ev) for ev in EVENTS]
    head = encode.head
    sent = [f for f in frames if f is not None]
    assert all(f.startswith(b"data: ") and f.endswith(b"\n\n") for f in sent)
    chunks = [orjson.loads(f[6:]) for f in sent]
    assert encode.usage == g.Usage(7, 12)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert [c["index"] for c in calls] == [0, 1]

    def choice(index: int, reason: str | None = None, **delta: Any) -> t.ChunkChoice:
        return t.ChunkChoice(index=index, delta=t.Delta(**delta), finish_reason=reason)

    def tool(c: dict[str, Any]) -> t.ToolCallDelta:
        return t.ToolCallDelta(
            index=c["index"], id=c["id"], type="function", function=t.ToolCallDeltaFunction(**c["function"])
        )

    expected = [
        [choice(0, role="assistant", content="")],
        [choice(0, reasoning_content="hmm")],
        [choice(0, content="Hel")],
        [choice(0, content="lo")],
        [choice(0, "length")],
        [choice(1, role="assistant", content="")],
        [choice(1, tool_calls=[tool(calls[0])])],
        [choice(1, tool_calls=[tool(calls[1])])],
        [choice(1, "tool_calls")],
    ]
    models = [_chunk_model(head, include_usage, choices=c) for c in expected]
    if include_usage:
        usage = t.Usage(prompt_tokens=7, completion_tokens=12, total_tokens=19)
        models.append(_chunk_model(head, include_usage, choices=[], usage=usage))
    assert sent == [b"data: " + orjson.dumps(m.model_dump(mode="json")) + b"\n\n" for m in models]


@pytest.mark.parametrize("include_usage", [False, True])
def test_completion_chunks_and_response_with_echo(include_usage: bool) -> None:
    events: list[g.Event] = []
    for i in range(4):  # two prompts, n=2
        events += [g.Start(i), g.TextDelta(i, f"t{i}"), g.Finish(i, "tool_calls" if i == 3 else "stop")]
    events.append(g.Usage(3, 4))
    encode = serving.CompletionChunks("m", "fp", include_usage, echo=("p0", "p1"), n=2)
    sent = [f for f in (encode(ev) for ev in events) if f is not None]
    head = encode.head

    def model(**fields: Any) -> bytes:
        return (
            b"data: " + orjson.dumps(t.CompletionResponse(**head, **fields).model_dump(mode="json")) + b"\n\n"
        )

    expected = []
    for i in range(4):
        expected += [
            model(choices=[t.CompletionChoice(index=i, text=f"p{i // 2}")]),
            model(choices=[t.CompletionChoice(index=i, text=f"t{i}")]),
            model(choices=[t.CompletionChoice(index=i, text="", finish_reason="stop")]),
        ]
    if include_usage:
        expected.append(
            model(choices=[], usage=t.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7))
        )
    assert sent == expected

    body, _ = run(serving.completion_response(_aiter(events), "m", "fp", ("p0", "p1"), 2))
    assert [c["text"] for c in body["choices"]] == ["p0t0", "p0t1", "p1t2", "p1t3"]
    reference = t.CompletionResponse(
        id=body["id"],
        created=body["created"],
        model="m",
        system_fingerprint="fp",
        choices=[
            t.CompletionChoice(index=i, text=c["text"], finish_reason="stop")
            for i, c in enumerate(body["choices"])
        ],
        usage=t.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7),
    )
    assert orjson.dumps(body) == orjson.dumps(reference.model_dump(mode="json"))


def test_one_id_per_stream_and_per_response() -> None:
    a, b = serving.ChatChunks("m", "fp", False), serving.ChatChunks("m", "fp", False)
    assert a.head["id"].startswith("chatcmpl-") and a.head["id"] != b.head["id"]
    frames = [a(g.Start(0)), a(g.TextDelta(0, "x")), a(g.Finish(0, "stop"))]
    assert len({orjson.loads(f[6:])["id"] for f in frames if f}) == 1
    assert serving.CompletionChunks("m", "fp", False).head["id"].startswith("cmpl-")


def test_a_fold_that_stops_early_closes_the_backend_stream() -> None:
    closed: list[bool] = []

    async def events() -> AsyncIterator[g.Event]:
        try:
            yield g.Start(0)
            raise RuntimeError("backend failed")
        finally:
            closed.append(True)

    with pytest.raises(RuntimeError):
        run(serving.chat_response(events(), "m", "fp"))
    assert closed == [True]


def test_embeddings_float_and_base64() -> None:
    result = g.EmbeddingResult(vectors=[[0.5, -1.0], [0.25, 2.0]], prompt_tokens=3)
    floats = serving.embedding_response(result, "e", "float")
    reference = t.EmbeddingResponse(
        data=[t.EmbeddingData(index=i, embedding=v) for i, v in enumerate(result.vectors)],
        model="e",
        usage=t.EmbeddingUsage(prompt_tokens=3, total_tokens=3),
    )
    assert floats == reference.model_dump(mode="json")
    encoded = serving.embedding_response(result, "e", "base64")["data"][1]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.25, 2.0)


def test_model_object() -> None:
    served = g.ServedModel("m", 5, "ollama")
    assert serving.model_object(served) == t.ModelCard(id="m", created=5, owned_by="ollama").model_dump()
    assert json.loads(orjson.dumps(serving.model_object(served)))["object"] == "model"
