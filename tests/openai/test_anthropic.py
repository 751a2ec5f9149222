"""Anthropic Messages (``/v1/messages``) over the scripted fake Ollama, with the ``anthropic`` SDK:
whole and streamed answers, enforced tools, thinking, keys sent as ``x-api-key``, errors in
Anthropic's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from tests.openai.conftest import EMBED, MODEL, Facade
from tests.openai.fake_ollama import FakeOllama

TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def client(facade: Facade, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("api_key", "none")
    return anthropic.Anthropic(base_url=facade.url, max_retries=0, **kw)


def test_create(facade: Facade, fake: FakeOllama) -> None:
    m = client(facade).messages.create(model=MODEL, max_tokens=50, system="Be brief", messages=ASK)  # type: ignore[arg-type]
    assert m.type == "message" and m.role == "assistant" and m.stop_reason == "end_turn"
    assert m.content[0].type == "text" and m.content[0].text == "Hello there!"
    assert m.usage.input_tokens == 7 and m.usage.output_tokens == 4 and m.id.startswith("msg_")
    sent = fake.bodies("/api/chat")[-1]
    assert (
        sent["messages"][0] == {"role": "system", "content": "Be brief"}
        and sent["options"]["num_predict"] == 50
    )
    short = client(facade).messages.create(model=MODEL, max_tokens=2, messages=ASK)  # type: ignore[arg-type]
    assert short.stop_reason == "max_tokens"


def test_stream(facade: Facade) -> None:
    with client(facade).messages.stream(model=MODEL, max_tokens=50, messages=ASK) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello there!" and final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    raw = httpx.post(
        facade.url + "/v1/messages", json={"model": MODEL, "max_tokens": 9, "messages": ASK, "stream": True}
    )
    names = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("choice", [{"type": "tool", "name": "get_weather"}, {"type": "any"}])
def test_tools_are_enforced(facade: Facade, fake: FakeOllama, choice: dict[str, Any]) -> None:
    c = client(facade)
    m = c.messages.create(model=MODEL, max_tokens=99, messages=ASK, tools=[TOOL], tool_choice=choice)  # type: ignore[arg-type]
    (use,) = m.content
    assert m.stop_reason == "tool_use" and use.type == "tool_use" and use.name == "get_weather"
    assert use.input == {"city": "x"} and use.id.startswith("toolu_")
    assert "format" in fake.bodies("/api/chat")[-1]
    with c.messages.stream(model=MODEL, max_tokens=99, messages=ASK, tools=[TOOL], tool_choice=choice) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert final.content[0].input == {"city": "x"} and final.stop_reason == "tool_use"  # type: ignore[union-attr]
    follow = c.messages.create(
        model=MODEL,
        max_tokens=9,
        tools=[TOOL],
        messages=[  # type: ignore[arg-type, list-item]
            *ASK,
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ],
    )
    assert follow.stop_reason == "end_turn"
    sent = fake.bodies("/api/chat")[-1]["messages"]
    assert sent[-1] == {
        "role": "tool",
        "content": "sunny",
        "tool_name": "get_weather",
        "tool_call_id": use.id,
    }


def test_thinking(facade: Facade, fake: FakeOllama) -> None:
    c = client(facade)
    thinking = {"type": "enabled", "budget_tokens": 2048}
    with pytest.raises(anthropic.BadRequestError) as err:
        c.messages.create(model=MODEL, max_tokens=9, messages=ASK, thinking=thinking)  # type: ignore[arg-type]
    assert err.value.body["type"] == "error" and "cannot think" in err.value.message  # type: ignore[index]
    fake.thinking = True
    m = c.messages.create(model=MODEL, max_tokens=9, messages=ASK, thinking=thinking)  # type: ignore[arg-type]
    assert fake.bodies("/api/chat")[-1]["think"] == "low"
    assert [b.type for b in m.content] == ["thinking", "text"] and m.content[0].thinking == "Let me think."  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("call", "status", "kind"),
    [
        (lambda c: c.messages.create(model="nope", max_tokens=9, messages=ASK), 404, "not_found_error"),
        (
            lambda c: c.messages.create(
                model=MODEL,
                max_tokens=9,
                messages=ASK,
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
            ),
            400,
            "invalid_request_error",
        ),
        (lambda c: c.messages.create(model=MODEL, max_tokens=0, messages=ASK), 400, "invalid_request_error"),
    ],
)
def test_errors_in_anthropic_shape(
    facade: Facade, call: Callable[[Any], Any], status: int, kind: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as err:
        call(client(facade))
    assert err.value.status_code == status
    assert err.value.body == {
        "type": "error",
        "error": {"type": kind, "message": err.value.body["error"]["message"]},
    }  # type: ignore[index]


def test_unknown_sub_paths_and_methods(facade: Facade) -> None:
    r = httpx.post(facade.url + "/v1/messages/count_tokens", json={})
    assert r.status_code == 404 and r.json()["type"] == "error"
    r = httpx.get(facade.url + "/v1/messages")
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(facade.url + "/v1/nope").json()["error"]["code"] is None  # still OpenAI's prefix
    assert EMBED


def test_keys_as_x_api_key_or_bearer(facade_factory: Callable[..., Facade], fake: FakeOllama) -> None:
    keyed = facade_factory("--ollama-host", fake.url, "--model", MODEL, environ={"KCR_API_KEYS": "k1"})
    with pytest.raises(anthropic.AuthenticationError):
        client(keyed, api_key="wrong").messages.create(model=MODEL, max_tokens=9, messages=ASK)  # type: ignore[arg-type]
    assert client(keyed, api_key="k1").messages.create(model=MODEL, max_tokens=9, messages=ASK).content  # type: ignore[arg-type]
    bearer = anthropic.Anthropic(base_url=keyed.url, auth_token="k1", max_retries=0)
    assert bearer.messages.create(model=MODEL, max_tokens=9, messages=ASK).content  # type: ignore[arg-type]
    r = httpx.post(keyed.url + "/v1/messages", json={"model": MODEL, "max_tokens": 9, "messages": ASK})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
