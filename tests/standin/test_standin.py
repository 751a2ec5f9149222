"""The llama-cpp Ollama stand-in, driven through the official ``ollama`` client over real HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time

import httpx
import ollama
import pytest

from tests.ollama_standin.app import create_app
from tests.ollama_standin.config import StandinConfig, parse_host, parse_keep_alive
from tests.ollama_standin.process import free_port, start_standin
from tests.ollama_standin.prompt import ToolCallParser, forced_output, render_chat

pytest.importorskip("llama_cpp")

pytestmark = [pytest.mark.llm, pytest.mark.timeout(120)]

MODEL = "smollm2:135m"
EMBED = "smollm2-embed:135m"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        },
    }
]
TIMEOUT = httpx.Timeout(60, connect=5)
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


@pytest.fixture
def client(standin):
    standin.reset_faults()
    return ollama.Client(host=standin.url, timeout=TIMEOUT)


@pytest.fixture
def aclient(standin):
    standin.reset_faults()
    return ollama.AsyncClient(host=standin.url, timeout=TIMEOUT)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ------------------------------------------------------------------------------------------ plain endpoints
def test_root_version_and_404(standin):
    r = httpx.get(standin.url + "/")
    assert r.status_code == 200 and r.text == "Ollama is running"
    assert r.headers["content-type"].startswith("text/plain")
    assert httpx.head(standin.url + "/").status_code == 200
    assert httpx.get(standin.url + "/api/version").json() == {"version": "0.33.0"}
    assert httpx.head(standin.url + "/api/version").status_code == 200
    r = httpx.get(standin.url + "/api/nope")
    assert r.status_code == 404 and r.text == "404 page not found"
    assert httpx.get(standin.url + "/api/chat").status_code == 405


def test_tags_show_ps(client):
    tags = client.list()
    names = [m.model for m in tags.models]
    assert MODEL in names and EMBED in names
    m = tags.models[names.index(MODEL)]
    assert m.size > 50_000_000 and len(m.digest) == 64 and m.details.format == "gguf"
    assert m.modified_at is not None
    show = client.show(MODEL)
    assert show.modelinfo["general.architecture"] == "llama"
    assert show.capabilities == ["completion", "tools"]
    assert "<|im_start|>" in show.template and "stop" in show.parameters
    assert client.show(EMBED).capabilities == ["embedding"]
    client.chat(MODEL, messages=[])  # loads the model
    assert MODEL in [p.model for p in client.ps().models]


def test_show_errors(client):
    with pytest.raises(ollama.ResponseError) as ei:
        client.show("nope:1b")
    assert ei.value.status_code == 404 and ei.value.error == "model 'nope:1b' not found"


def test_pull_progress_and_unknown(client):
    progress = list(client.pull(MODEL, stream=True))
    assert progress[0].status == "pulling manifest"
    assert progress[-1].status == "success"
    assert any(p.completed for p in progress)
    assert client.pull(MODEL).status == "success"
    with pytest.raises(ollama.ResponseError) as ei:
        client.pull("nope:1b")
    assert ei.value.status_code == 500
    assert ei.value.error == "pull model manifest: file does not exist"


# ------------------------------------------------------------------------------------------ generation
def test_chat_stream_real_text(client):
    chunks = list(
        client.chat(
            MODEL,
            messages=user("What is the capital of France?"),
            stream=True,
            options={"num_predict": 24, "temperature": 0},
        )
    )
    assert len(chunks) >= 2
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert all(CREATED_AT.match(c.created_at) for c in chunks)
    text = "".join(c.message.content or "" for c in chunks)
    assert text.strip()
    last = chunks[-1]
    assert last.done_reason in ("stop", "length")
    assert last.prompt_eval_count > 0 and last.eval_count > 0
    assert last.total_duration > 0 and last.eval_duration > 0 and last.prompt_eval_duration > 0
    assert last.load_duration > 0


def test_chat_non_stream_and_wire_format(standin, client):
    r = client.chat(MODEL, messages=user("Say hello."), options={"num_predict": 16, "temperature": 0})
    assert r.done and r.message.role == "assistant" and r.message.content.strip()
    assert r.eval_count > 0 and r.prompt_eval_count > 0
    raw = httpx.post(
        standin.url + "/api/chat",
        timeout=TIMEOUT,
        json={"model": MODEL, "messages": user("Hi"), "options": {"num_predict": 3}},
    )
    assert raw.headers["content-type"] == "application/x-ndjson"  # stream defaults to true
    lines = [json.loads(x) for x in raw.text.splitlines()]
    assert lines[-1]["done"] is True and all("message" in x for x in lines)


def test_num_predict_length(client):
    r = client.chat(MODEL, messages=user("Tell me a long story about a dragon."), options={"num_predict": 5})
    assert r.done_reason == "length"
    assert 0 < r.eval_count <= 5


def test_num_predict_holds_inside_a_multibyte_character(client):
    # Each 🎉 is several tokens. llama-cpp-python alone overshoots max_tokens when it falls inside
    # one (up to 3 tokens more); Ollama never generates more than num_predict.
    counts = {}
    for n in range(2, 10):
        r = client.chat(
            MODEL, messages=user("Repeat exactly: 🎉🎉🎉🎉"), options={"num_predict": n, "temperature": 0}
        )
        counts[n] = (r.eval_count, r.done_reason)
    assert counts == {n: (n, "length") for n in range(2, 10)}


def test_generate(client):
    g = client.generate(MODEL, prompt="Write one word.", options={"num_predict": 8, "temperature": 0})
    assert g.done and g.eval_count > 0 and g.context
    chunks = list(client.generate(MODEL, prompt="Count: 1, 2,", stream=True, options={"num_predict": 4}))
    assert chunks[-1].done and chunks[-1].done_reason == "length"
    assert "".join(c.response for c in chunks).strip()
    assert client.generate(MODEL, prompt="").done_reason == "load"


def test_format_json_schema(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    r = client.chat(
        MODEL,
        messages=user("Describe a cat as JSON with name and age."),
        format=schema,
        options={"num_predict": 60, "temperature": 0},
    )
    obj = json.loads(r.message.content)
    assert set(obj) == {"name", "age"} and isinstance(obj["age"], int)


def test_forced_tool_call(standin, client):
    msgs = user('What is the weather in Tokyo? [[call:get_weather {"city": "Tokyo"}]]')
    chunks = list(client.chat(MODEL, messages=msgs, tools=TOOLS, stream=True))
    tool_chunks = [c for c in chunks if c.message.tool_calls]
    assert len(tool_chunks) == 1 and not tool_chunks[0].done and tool_chunks[0].message.content == ""
    assert chunks[-1].done and not chunks[-1].message.tool_calls
    call = tool_chunks[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Tokyo"}
    # the python client drops ids; check the raw wire format
    raw = httpx.post(
        standin.url + "/api/chat",
        timeout=TIMEOUT,
        json={"model": MODEL, "messages": msgs, "tools": TOOLS, "stream": False},
    ).json()
    tc = raw["message"]["tool_calls"][0]
    assert re.fullmatch(r"call_[a-z0-9]{8}", tc["id"])
    assert tc["function"] == {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}
    assert raw["message"]["content"] == "" and raw["done_reason"] == "stop"


def test_real_generation_with_tools_is_well_formed(client):
    r = client.chat(
        MODEL,
        messages=user("What is the weather in Paris?"),
        tools=TOOLS,
        options={"num_predict": 40, "temperature": 0},
    )
    assert r.done and r.done_reason in ("stop", "length")
    assert (r.message.content or "").strip() or r.message.tool_calls
    for call in r.message.tool_calls or []:
        assert isinstance(call.function.arguments, dict)


def test_embed_unit_vectors(client):
    e = client.embed(EMBED, input=["hello world", "the cat sat on the mat"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 576
    for v in e.embeddings:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4)
    assert e.prompt_eval_count > 0
    assert len(client.embed(EMBED, input="one").embeddings) == 1


# ------------------------------------------------------------------------------------------ errors
def test_error_catalogue(standin, client):
    with pytest.raises(ollama.ResponseError) as ei:
        client.chat("nope:1b", messages=user("x"))
    assert ei.value.status_code == 404 and ei.value.error == "model 'nope:1b' not found"
    url = standin.url

    def post(path, body):
        return httpx.post(url + path, json=body, timeout=TIMEOUT)

    r = post("/api/chat", {"messages": user("x")})
    assert (r.status_code, r.json()) == (400, {"error": "model is required"})
    r = post("/api/chat", {"model": MODEL, "messages": user("x"), "think": True})
    assert r.status_code == 400 and "does not support thinking" in r.json()["error"]
    r = post("/api/chat", {"model": MODEL, "messages": user("x"), "top_logprobs": 21})
    assert (r.status_code, r.json()) == (400, {"error": "top_logprobs must be between 0 and 20"})
    r = post("/api/chat", {"model": MODEL, "messages": user("x"), "options": {"temperature": "hot"}})
    assert r.status_code == 500 and r.json()["error"] == 'option "temperature" must be of type float32'
    r = post(
        "/api/chat",
        {"model": MODEL, "messages": user("word " * 400), "truncate": False, "options": {"num_ctx": 256}},
    )
    assert r.status_code == 400 and r.json()["error"].startswith(
        "the prompt is longer than the context length"
    )
    r = post("/api/chat", {"model": MODEL, "messages": [], "keep_alive": 0})
    assert r.json()["done_reason"] == "unload"


def test_busy_503(standin, client):
    standin.set_faults(busy=1)
    with pytest.raises(ollama.ResponseError) as ei:
        client.chat(MODEL, messages=user("x"), options={"num_predict": 1})
    assert ei.value.status_code == 503
    assert ei.value.error == "server busy, please try again.  maximum pending requests exceeded"
    assert client.chat(MODEL, messages=user("x"), options={"num_predict": 1}).done  # count consumed


def test_mid_stream_error(standin, client):
    standin.set_faults(error_after=2)
    got = []
    with pytest.raises(ollama.ResponseError) as ei:
        for c in client.chat(MODEL, messages=user("[[say:one two three four five]]"), stream=True):
            got.append(c)
    assert ei.value.status_code == -1 and len(got) == 2
    # non-streamed: a 500
    with pytest.raises(ollama.ResponseError) as ei:
        client.chat(MODEL, messages=user("[[say:hi]]"))
    assert ei.value.status_code == 500


def test_garbage_and_slowness(standin, client):
    standin.set_faults(garbage_after=1)
    with pytest.raises(json.JSONDecodeError):
        list(client.chat(MODEL, messages=user("[[say:one two three]]"), stream=True))
    standin.set_faults(reset=True, delay_first=0.4, delay_between=0.05)
    t0 = time.monotonic()
    chunks = list(client.chat(MODEL, messages=user("[[say:a b c]]"), stream=True))
    assert time.monotonic() - t0 >= 0.4 + 0.05 * (len(chunks) - 1) - 0.01


def test_disconnect_is_recorded(standin, aclient):
    async def run() -> float:
        stream = await aclient.chat(
            MODEL,
            messages=user("Write a very long story about a dragon and a knight."),
            stream=True,
            options={"num_predict": 400, "temperature": 0},
        )
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break
        await stream.aclose()
        return time.time()

    standin.clear_events()
    closed_at = asyncio.run(run())
    ev = standin.wait_for_event("disconnect", timeout=2)
    assert ev["path"] == "/api/chat" and ev["lines_sent"] >= 3
    assert ev["time"] - closed_at < 1.0
    stopped = standin.wait_for_event("generation_stopped", timeout=2)
    assert stopped["tokens"] < 400


# ---------------------------------------------------------------------------------------- separate processes
def test_absent_until_pulled_with_url_form_ollama_host():
    port = free_port()
    with start_standin(port=port, absent=True, env={"OLLAMA_HOST": f"http://127.0.0.1:{port}"}) as s:
        c = ollama.Client(host=s.url, timeout=TIMEOUT)
        assert c.list().models == []
        with pytest.raises(ollama.ResponseError) as ei:
            c.chat(MODEL, messages=user("x"))
        assert ei.value.status_code == 404
        assert list(c.pull(MODEL, stream=True))[-1].status == "success"
        assert [m.model for m in c.list().models] == [MODEL]
        assert c.chat(MODEL, messages=user("[[say:ok]]")).message.content == "ok"


def test_die_mid_stream_is_like_kill_9():
    with start_standin(env={"STANDIN_DIE_AFTER": "2"}) as s:
        c = ollama.Client(host=s.url, timeout=TIMEOUT)
        got = []
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, ConnectionError)):
            for ch in c.chat(MODEL, messages=user("[[say:one two three four five six]]"), stream=True):
                got.append(ch)
        assert len(got) == 2
        assert s.wait_exit(5) == -9


# ---------------------------------------------------------------------------------------- units / in-process
def test_parse_host_like_ollama():
    assert parse_host(None) == ("127.0.0.1", 11434)
    assert parse_host("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_host(":5678") == ("127.0.0.1", 5678)
    assert parse_host("http://127.0.0.1:6000") == ("127.0.0.1", 6000)
    assert parse_host("http://example") == ("example", 80)
    assert parse_host("0.0.0.0") == ("0.0.0.0", 11434)
    assert parse_keep_alive("1h30m") == 5400 and parse_keep_alive("0") == 0 and parse_keep_alive(-1) == -1
    with pytest.raises(ValueError):
        parse_keep_alive("soon")


def test_tool_call_parser_streaming_split():
    text = 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n</tool_call>'
    p = ToolCallParser(enabled=True)
    events = []
    for i in range(0, len(text), 3):
        events += p.feed(text[i : i + 3])
    events += p.flush()
    content = "".join(v for k, v in events if k == "content")
    calls = [v for k, v in events if k == "tool"]
    assert content == "Sure."
    assert calls[0]["function"] == {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}
    assert re.fullmatch(r"call_[a-z0-9]{8}", calls[0]["id"])
    # string arguments are decoded into an object; text that is not a call stays content
    p = ToolCallParser(enabled=True)
    ev = p.feed('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>') + p.flush()
    assert ev[0][1]["function"]["arguments"] == {"a": 1}
    p = ToolCallParser(enabled=True)
    ev = p.feed("a < b <tool_call>not json</tool_call>") + p.flush()
    assert "".join(v for _, v in ev) == "a < b<tool_call>not json</tool_call>"
    assert forced_output('x [[call:f {"a": [1]}]] [[call:g]]').count("<tool_call>") == 2
    assert forced_output("plain") is None
    prompt = render_chat(
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": {}}}],
            },
            {"role": "tool", "content": "42"},
        ],
        TOOLS,
    )
    assert "<tools>" in prompt and "<tool_response>\n42\n</tool_response>" in prompt


def test_in_process_asgi_transport():
    app = create_app(StandinConfig())

    async def run():
        c = ollama.AsyncClient(host="http://standin", transport=httpx.ASGITransport(app=app))
        r = await c.chat(MODEL, messages=user("[[say:hello there]]"))
        assert r.message.content == "hello there" and r.eval_count > 0
        chunks = [
            x async for x in await c.generate(MODEL, prompt="Hi", stream=True, options={"num_predict": 3})
        ]
        assert chunks[-1].done_reason == "length"

    asyncio.run(run())
