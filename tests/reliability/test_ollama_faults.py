"""Ollama misbehaving, against the real llama-cpp stand-in and a real ``kcr serve ollama`` process.

Killed mid-stream → the client gets an SSE error event and the stream ends (no hang); slow → 504 on
the first-token and total timeouts; busy or refusing connections → 503 + Retry-After; garbage → 502
(or an error event once streaming); restarted → readiness false, then true, and requests sent while
it was down get a 503 with Retry-After (none hangs, none is lost silently).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.ollama_standin.process import StandinHandle, start_standin
from tests.procs import ServerProcess, start_kcr

pytestmark = pytest.mark.llm

MODEL = "smollm2:135m"
SAY = "[[say:one two three four five six seven eight nine ten eleven twelve]]"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinHandle]:
    with start_standin(preload=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def kcr(standin: StandinHandle) -> Iterator[ServerProcess]:
    server = start_kcr("serve", "ollama", "--ollama-host", standin.url, "--model", MODEL,
                       "--first-token-timeout", "2", "--request-timeout", "4")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(standin: StandinHandle) -> None:
    if standin.alive():
        standin.reset_faults()


def chat(kcr: ServerProcess, stream: bool = False, content: str = SAY, timeout: float = 30) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": stream,
            "max_tokens": 40}  # fmt: skip
    return httpx.post(kcr.url + "/v1/chat/completions", json=body, timeout=timeout)


def events(response: httpx.Response) -> list[object]:
    out: list[object] = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def wait_ready(kcr: ServerProcess, want: bool, timeout: float = 20) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if (httpx.get(kcr.url + "/v2/health/ready", timeout=2).status_code == 200) == want:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"readiness did not become {want} within {timeout}s")


def test_healthy_baseline(kcr: ServerProcess) -> None:
    r = chat(kcr)
    assert r.status_code == 200 and "one two" in r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("stream", [False, True])
def test_slow_first_token_is_504(kcr: ServerProcess, standin: StandinHandle, stream: bool) -> None:
    standin.set_faults(delay_first=3)
    start = time.monotonic()
    r = chat(kcr, stream=stream)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout", r.text
    assert "first-token" in r.json()["error"]["message"]
    assert 1.9 < time.monotonic() - start < 3.5


def test_slow_generation_hits_total_timeout(kcr: ServerProcess, standin: StandinHandle) -> None:
    standin.set_faults(delay_between=0.6)  # 12 words + done at 0.6 s each > 4 s
    start = time.monotonic()
    r = chat(kcr)
    assert r.status_code == 504 and "total timeout" in r.json()["error"]["message"], r.text
    assert time.monotonic() - start < 5.5
    # streaming: the 200 is already sent, so the timeout is the stream's last event
    r = chat(kcr, stream=True)
    assert r.status_code == 200
    last = events(r)[-1]
    assert isinstance(last, dict) and last["error"]["code"] == "upstream_timeout"


def test_busy_is_503_with_retry_after(kcr: ServerProcess, standin: StandinHandle) -> None:
    standin.set_faults(busy=1)
    r = chat(kcr)
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert r.json()["error"]["type"] == "service_unavailable_error"
    assert chat(kcr).status_code == 200


@pytest.mark.parametrize("after", [0, 2])
def test_garbage_is_502(kcr: ServerProcess, standin: StandinHandle, after: int) -> None:
    standin.set_faults(garbage_after=after, garbage_count=1)
    r = chat(kcr)
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error", r.text
    standin.set_faults(garbage_after=after, garbage_count=1)
    r = chat(kcr, stream=True)
    if after == 0:
        assert r.status_code == 502
    else:
        last = events(r)[-1]
        assert r.status_code == 200 and isinstance(last, dict) and "error" in last, r.text
    assert chat(kcr).status_code == 200


def test_killed_mid_stream_then_restarted(kcr: ServerProcess, standin: StandinHandle) -> None:
    """Last: it kills the module's stand-in and starts a new one on the same port."""
    standin.set_faults(die_after=3)
    start = time.monotonic()
    r = chat(kcr, stream=True, timeout=15)
    took = time.monotonic() - start
    got = events(r)
    assert r.status_code == 200 and "[DONE]" not in got
    assert isinstance(got[-1], dict) and got[-1]["error"]["type"] == "api_error", got
    assert "lost" in got[-1]["error"]["message"]
    assert took < 5, f"the error event took {took:.1f}s"
    standin.wait_exit(5)

    # Ollama down: readiness false; requests are refused at once with 503 + Retry-After, not hung.
    went_down = wait_ready(kcr, False)
    down = chat(kcr, timeout=10)
    assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1, down.text

    # Ollama back on the same port: readiness true again, and requests succeed.
    with start_standin(port=standin.port, preload=True):
        came_back = wait_ready(kcr, True, timeout=30)
        assert chat(kcr).status_code == 200
    print(f"error event {took:.2f}s after the request; not ready {went_down:.2f}s after it; "
          f"ready {came_back:.2f}s after the restart")  # fmt: skip
