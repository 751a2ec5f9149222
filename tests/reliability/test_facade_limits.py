"""The facade's side of "no single request can stall, bloat or drop the server": the key checked
before the body, bounded metric labels, bounded upstream output, bounded fan-out and list sizes,
and a stream cut at the end of the graceful shutdown that tells the client so. Each test measures
its figure on a real process over the scripted fake Ollama."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.reliability.conftest import CHAT_MODEL
from tests.reliability.probe import Prober, peak_mb, reset_peak, rss_mb

FIGURES: dict[str, str] = {}
KEY = "k-facade"
AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"
NDJSON = "application/x-ndjson"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama(models=(CHAT_MODEL,)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def facade(fake: FakeOllama) -> Iterator[ServerProcess]:
    proc = start_kcr("serve", "ollama", "--ollama-host", fake.url, "--model", CHAT_MODEL, "--no-access-log",
                     env={"KCR_API_KEYS": KEY})  # fmt: skip
    yield proc
    proc.stop()


def _chat(**extra: object) -> dict[str, object]:
    return {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_a_keyless_body_is_never_read(facade: ServerProcess) -> None:
    body = json.dumps(_chat(messages=[{"role": "user", "content": "x" * (30 << 20)}])).encode()
    pid = facade.proc.pid
    before = rss_mb(pid)
    reset_peak(pid)
    start = time.perf_counter()
    r = httpx.post(facade.url + CHAT, content=body, headers={"content-type": "application/json"}, timeout=30)
    seconds = time.perf_counter() - start
    growth = peak_mb(pid) - before
    FIGURES["keyless 30 MB chat body"] = (
        f"{r.status_code} in {seconds * 1000:.0f} ms, peak RSS +{growth:.1f} MB"
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert growth < 4, FIGURES["keyless 30 MB chat body"]


def test_unknown_paths_answer_openai_errors_after_the_key(facade: ServerProcess) -> None:
    anon = httpx.get(facade.url + "/v1/nope", timeout=5)
    keyed = httpx.get(facade.url + "/openai/v1/nope", headers=AUTH, timeout=5)
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "invalid_api_key"
    assert (
        keyed.status_code == 404 and keyed.json()["error"]["message"] == "Invalid URL (GET /openai/v1/nope)"
    )


def test_client_sent_model_names_do_not_grow_the_metrics(facade: ServerProcess) -> None:
    def size() -> int:
        return len(httpx.get(facade.url + "/metrics", timeout=5).content)

    httpx.post(facade.url + CHAT, json=_chat(model="warm"), headers=AUTH, timeout=5)
    before = size()
    with httpx.Client(base_url=facade.url, headers=AUTH, timeout=5) as client:
        for _ in range(500):
            client.post(CHAT, json=_chat(model=uuid.uuid4().hex * 20))
    after = size()
    FIGURES["500 chats naming random 640-char models"] = f"/metrics {before} -> {after} bytes"
    assert after - before < 2048


@pytest.mark.parametrize(
    ("name", "raw", "status"),
    [
        ("100 MB HTML error page", (500, "text/html", [b"<html>" + b"x" * (1 << 20)] * 100), 502),
        ("a 16 MiB stream line", (200, NDJSON, [b'{"message":{"content":"' + b"a" * (1 << 20)] * 16), 502),
        ("a line of the wrong shape", (200, NDJSON, [b'{"message":"not an object","done":true}\n']), 502),
    ],
)  # fmt: skip
def test_upstream_output_is_bounded(facade: ServerProcess, fake: FakeOllama, name: str, raw: tuple,
                                    status: int) -> None:  # fmt: skip
    fake.raw = raw
    pid = facade.proc.pid
    try:
        for stream in (False, True):
            before = rss_mb(pid)
            reset_peak(pid)
            r = httpx.post(facade.url + CHAT, json=_chat(stream=stream), headers=AUTH, timeout=60)
            growth = peak_mb(pid) - before
            FIGURES[f"upstream: {name} (stream={stream})"] = (
                f"{r.status_code}, {len(r.content)} bytes relayed, peak RSS +{growth:.0f} MB"
            )
            assert r.status_code == status, r.text[:300]
            assert r.json()["error"]["type"] == "api_error" and len(r.content) < 4096
            assert growth < 24, FIGURES[f"upstream: {name} (stream={stream})"]
    finally:
        fake.raw = None


def test_fan_out_and_list_sizes_are_refused_before_they_cost(facade: ServerProcess) -> None:
    pid = facade.proc.pid
    parts = [{"type": "text", "text": "a"}] * 1_000_000
    cases = {
        "completions: 2000 prompts x n=128": (
            "/v1/completions", {"model": CHAT_MODEL, "prompt": [""] * 2000, "n": 128}, "n"),
        "chat: 1M content parts (~30 MB)": (CHAT, _chat(messages=[{"role": "user", "content": parts}]), None),
        "chat: 20,000 content parts": (CHAT, _chat(messages=[{"role": "user", "content": parts[:20_000]}]),
                                       "messages"),
    }  # fmt: skip
    for name, (path, body, param) in cases.items():
        data = json.dumps(body).encode()
        before = rss_mb(pid)
        reset_peak(pid)
        with Prober(facade.port) as probe:
            headers = {**AUTH, "content-type": "application/json"}
            r = httpx.post(facade.url + path, content=data, headers=headers, timeout=60)
        growth = peak_mb(pid) - before
        budget = 10 * len(data) / 2**20 + 16
        error = r.json()["error"]
        FIGURES[name] = (f"{r.status_code} (param {error['param']}), loop stall {probe.max_ms:.0f} ms, "
                         f"peak RSS +{growth:.0f} MB (budget {budget:.0f})")  # fmt: skip
        assert r.status_code == 400 and r.json()["error"]["param"] == param
        assert growth < budget and probe.max_ms < 50, FIGURES[name]


def test_a_stream_cut_at_the_graceful_timeout_ends_with_an_error_and_done(fake: FakeOllama) -> None:
    proc = start_kcr(
        "serve", "ollama", "--ollama-host", fake.url, "--model", CHAT_MODEL, "--graceful-timeout", "1"
    )
    fake.delay_between = 1.0  # 4 tokens: longer than the grace
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        with httpx.stream("POST", proc.url + CHAT, json=_chat(stream=True), timeout=30) as r:
            for line in r.iter_lines():
                if line:
                    lines.append(line)
                    started.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert started.wait(10)
        proc.proc.send_signal(signal.SIGTERM)
        reader.join(20)
        code = proc.proc.wait(20)
    finally:
        fake.delay_between = 0.0
        proc.stop()
    FIGURES["stream cut at --graceful-timeout 1"] = f"last events {lines[-2:]}, exit {code}"
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["error"]["code"] == "server_not_ready"
    assert "cut-at-shutdown" in proc.log()


def teardown_module() -> None:
    for name, figure in FIGURES.items():
        print(f"  {name}: {figure}")
