"""Timeouts, back-pressure, client disconnects and readiness against the scripted fake Ollama."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.openai.conftest import MODEL, Facade
from tests.openai.fake_ollama import FakeOllama
from tests.procs import ROOT, free_port

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def tight(fake: FakeOllama, facade_factory: Callable[..., Facade]) -> Facade:
    return facade_factory(
        "--ollama-host", fake.url, "--model", MODEL, "--first-token-timeout", "0.5", "--request-timeout", "2",
        "--max-concurrency", "1", "--max-queue", "1", "--queue-timeout", "5",
    )  # fmt: skip


def chat(facade: Facade, **kw: object) -> httpx.Response:
    return httpx.post(
        facade.base + "/chat/completions", json={"model": MODEL, "messages": USER, **kw}, timeout=10
    )


@pytest.mark.parametrize("stream", [False, True])
def test_first_token_timeout_is_504(tight: Facade, fake: FakeOllama, stream: bool) -> None:
    fake.delay_first = 1.5
    r = chat(tight, stream=stream)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


def test_total_timeout_mid_stream_is_error_event(tight: Facade, fake: FakeOllama) -> None:
    fake.delay_between = 0.8  # 4 tokens + done: > 2 s in total, each gap < first-token timeout
    with pytest.raises(openai.APIError, match="total timeout"):
        for _ in tight.client().chat.completions.create(model=MODEL, messages=USER, stream=True):
            pass


def test_queue_full_is_503_with_retry_after(tight: Facade, fake: FakeOllama) -> None:
    fake.delay_between = 0.3
    results: list[int] = []

    def call() -> None:
        results.append(chat(tight).status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]  # one runs, one waits
    for t in threads:
        t.start()
    time.sleep(0.3)
    r = chat(tight)  # queue (1) is full
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "server_is_overloaded"
    for t in threads:
        t.join()
    assert results == [200, 200]
    metrics = httpx.get(tight.url + "/metrics").text
    assert 'kcr_openai_upstream_errors_total{kind="overloaded",model="smollm2:135m"} 1.0' in metrics


def test_client_disconnect_stops_upstream(tight: Facade, fake: FakeOllama) -> None:
    fake.delay_between = 0.3
    before = fake.disconnects
    with httpx.stream("POST", tight.base + "/chat/completions",
                      json={"model": MODEL, "messages": USER, "stream": True}) as r:  # fmt: skip
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
    left = time.monotonic()
    while fake.disconnects == before and time.monotonic() - left < 2:
        time.sleep(0.02)
    assert fake.disconnects == before + 1
    assert time.monotonic() - left < 1.0
    # The slot was released: the next request runs.
    fake.delay_between = 0
    assert chat(tight).status_code == 200


def test_unreachable_ollama_means_not_ready(facade_factory: Callable[..., Facade]) -> None:
    dead = facade_factory(
        "--ollama-host", f"http://127.0.0.1:{free_port()}", "--model", MODEL, wait_ready=False
    )
    assert httpx.get(dead.url + "/v2/health/ready").status_code == 503
    r = httpx.get(dead.base + "/models/" + MODEL)
    assert r.status_code == 503 and r.headers["retry-after"]
    assert chat(dead).status_code == 503
    assert [m["id"] for m in httpx.get(dead.base + "/models").json()["data"]] == [MODEL]


def test_pull_when_absent_and_no_pull(fake: FakeOllama, facade_factory: Callable[..., Facade]) -> None:
    facade_factory("--ollama-host", fake.url, "--model", "fresh:1b")
    assert fake.bodies("/api/pull")[-1]["model"] == "fresh:1b"
    assert "fresh:1b" in fake.models
    stuck = facade_factory("--ollama-host", fake.url, "--model", "absent:1b", "--no-pull", wait_ready=False)
    time.sleep(0.3)
    assert httpx.get(stuck.url + "/v2/health/ready").status_code == 503
    assert "absent:1b" in stuck.app.state.fatal


def test_unloadable_model_ends_the_process(fake: FakeOllama) -> None:
    """A model that can never load must not leave a live-but-never-ready pod: exit 1, one clear line."""
    argv = [sys.executable, "-m", "server", "serve", "ollama", "--ollama-host", fake.url,
            "--model", "absent:1b", "--no-pull", "--host", "127.0.0.1",
            "--http-port", str(free_port())]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "absent:1b" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
