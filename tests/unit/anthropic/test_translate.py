"""The Anthropic wing's translations, in process: messages and blocks → neutral messages, tool choice,
thinking budgets, and the writer's blocks and stop reasons."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from server import generation as g
from server.anthropic import serving, translate
from server.anthropic import types as at
from server.anthropic.errors import error_object
from server.errors import InvalidInput, ModelNotFound, Overloaded

TOOL = {"name": "f", "input_schema": {"type": "object"}}


def req(**fields: Any) -> at.MessagesRequest:
    return at.MessagesRequest.model_validate(
        {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_blocks_become_messages() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": ""},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                {"type": "text", "text": "and?"},
            ],
        },
    ]
    plan = translate.plan(
        req(
            system=[{"type": "text", "text": "be brief"}],
            messages=messages,
            stop_sequences=["\n"],
            top_k=5,
            temperature=0.2,
        )
    )
    m = plan.request.messages
    assert [x.role for x in m] == ["system", "user", "assistant", "tool", "user"]
    assert m[1].images == ("AAAA",) and m[2].reasoning == "hmm"
    assert m[2].tool_calls == (g.ToolCall("t1", "f", '{"a": 1}'),)
    assert m[3] == g.Message("tool", "ok", tool_call_id="t1", tool_name="f") and m[4].text == "and?"
    s = plan.request.sampling
    assert s.stop == ("\n",) and s.top_k == 5 and s.temperature == 0.2 and plan.request.max_tokens == 9


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, g.ToolChoice()),
        ({"type": "any"}, g.ToolChoice("required")),
        ({"type": "tool", "name": "f"}, g.ToolChoice("named", "f")),
        ({"type": "none"}, g.ToolChoice("none")),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: g.ToolChoice) -> None:
    assert translate.plan(req(tools=[TOOL], tool_choice=choice)).request.tool_choice == expected


@pytest.mark.parametrize(
    ("thinking", "level"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, "high"),
        ({"type": "disabled"}, "off"),
        ({"type": "adaptive"}, "on"),
    ],
)
def test_thinking_budgets_pick_a_level(thinking: dict[str, Any], level: str) -> None:
    assert translate.plan(req(thinking=thinking)).request.reasoning == level


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": {"type": "tool", "name": "g"}}, "tool_choice.name"),
        ({"messages": [{"role": "user", "content": [{"type": "document"}]}]}, "messages[0].content[0].type"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
    ],
)
def test_refusals(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as err:
        translate.plan(req(**fields))
    assert err.value.param == param


def test_writer_blocks_and_stop_reasons() -> None:
    writer = serving.MessageWriter("m", one_call=True, stream=True)
    events: list[g.Event] = [
        g.Start(0),
        g.ReasoningDelta(0, "hmm"),
        g.TextDelta(0, "a"),
        g.ToolCallDelta(0, g.ToolCall("", "f", '{"x": 1}')),
        g.ToolCallDelta(0, g.ToolCall("", "f", "{}")),
        g.Finish(0, "tool_calls"),
        g.Usage(3, 4),
    ]
    frames = b"".join(f for f in (writer(ev) for ev in events) if f).decode()
    names = [line[7:] for line in frames.splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = writer.message(writer.stop_reason(), g.Usage(3, 4))
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["stop_reason"] == "tool_use" and message["content"][2]["input"] == {"x": 1}
    empty = serving.MessageWriter("m", one_call=False, stream=False)
    for ev in (g.Start(0), g.Finish(0, "length"), g.Usage(1, 0)):
        empty(ev)
    assert empty.message(empty.stop_reason(), g.Usage())["content"] == [{"type": "text", "text": ""}]
    assert empty.stop_reason() == "max_tokens"


def test_errors_in_anthropic_shape() -> None:
    status, body, _ = error_object(ModelNotFound("x"))
    assert status == 404 and body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Model with name x does not exist."},
    }
    status, _, headers = error_object(Overloaded("busy", retry_after=2))
    assert status == 503 and headers == [(b"retry-after", b"2")]
    status, body, _ = error_object(InvalidInput("bad", param="tools"))
    assert body["error"]["message"] == "tools: bad" and orjson.dumps(body)
    assert error_object(RuntimeError("boom"))[0] == 500
