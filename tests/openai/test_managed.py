"""Managed mode: the facade runs the stand-in as `ollama serve`, survives kill -9, stops it on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.ollama_standin.model_file import ensure_gguf
from tests.ollama_standin.process import BIN
from tests.procs import ServerProcess, free_port, start_kcr

pytestmark = pytest.mark.llm

MODEL = "smollm2:135m"


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


@pytest.fixture(scope="module")
def managed() -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",  # for bin/ollama's shebang
        "STANDIN_GGUF": str(ensure_gguf()),
    }
    server = start_kcr(
        "serve", "ollama", "--ollama-mode", "managed", "--ollama-bin", str(BIN),
        "--ollama-host", f"http://127.0.0.1:{port}", "--model", MODEL, env=env,
    )  # fmt: skip
    yield server, f"http://127.0.0.1:{port}"
    server.stop()


def test_kill_9_mid_stream_then_restart(managed: tuple[ServerProcess, str]) -> None:
    server, ollama_url = managed
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)
    [child] = children(server.proc.pid)
    httpx.post(ollama_url + "/_standin/faults", json={"delay_between": 0.2})
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Tell a story"}], max_tokens=16, stream=True
    )
    with pytest.raises(openai.APIError):
        for i, _ in enumerate(stream):
            if i == 1:
                os.kill(child, signal.SIGKILL)
    seen_unready = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(server.url + "/v2/health/ready").status_code
        seen_unready |= status == 503
        if status == 200 and seen_unready:
            break
        time.sleep(0.05)
    assert seen_unready and status == 200
    [new_child] = children(server.proc.pid)
    assert new_child != child
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert r.choices[0].message.content
    assert "restarting" in server.log()


def test_sigterm_stops_ollama(managed: tuple[ServerProcess, str]) -> None:
    server, _ = managed
    [child] = children(server.proc.pid)
    # A drained shutdown exits 0 (kcr does not re-raise the captured SIGTERM).
    assert server.stop(timeout=20) == 0
    assert "stopping ollama" in server.log()
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
