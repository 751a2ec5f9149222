"""SIGTERM with requests in flight (Knative/Kubernetes scale-down), on real processes.

At SIGTERM: readiness turns false in the signal handler itself, the listening socket closes (new
connections are refused at once), requests already in flight complete (a sklearn predict whose body
is still arriving, a streaming chat), and the process exits 0 as soon as they are done, or when
``--graceful-timeout`` runs out if a client never finishes.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings
from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.reliability.conftest import CHAT_MODEL

BODY = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()


def _partial_predict(port: int) -> socket.socket:
    """A predict request whose headers and first half of the body are sent: in flight."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    head = f"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n"
    sock.sendall(head.encode() + BODY[:10])
    return sock


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _wait_refused(port: int, timeout: float = 2) -> float:
    start = time.monotonic()
    while not _refused(port):
        assert time.monotonic() - start < timeout, "still accepting connections after SIGTERM"
        time.sleep(0.005)
    return time.monotonic() - start


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_default_grace_period_is_30s() -> None:
    assert Settings().graceful_timeout == 30.0
    assert Settings.from_env({"KCR_GRACEFUL_TIMEOUT": "5"}).graceful_timeout == 5.0


def test_sklearn_drains_in_flight_requests(model_root: Path) -> None:
    server = start_kcr("serve", "sklearn", "--model-dir", str(model_root), "--graceful-timeout", "10")
    try:
        in_flight = [_partial_predict(server.port) for _ in range(3)]
        time.sleep(0.2)
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        refused_after = _wait_refused(server.port)
        time.sleep(0.5)  # the clients take their time
        for sock in in_flight:
            sock.sendall(BODY[10:])
        for sock in in_flight:
            response = _read_response(sock)
            sock.close()
            assert response.startswith(b"HTTP/1.1 200"), response
            assert response.endswith(b'{"predictions":[1]}')
        assert server.proc.wait(10) == 0
        exited_after = time.monotonic() - t0
    finally:
        server.stop()
    log = server.log()
    assert "received SIGTERM: draining in-flight requests" in log
    assert exited_after < 3, f"exit took {exited_after:.2f}s after the last request finished"
    print(f"refused new connections {refused_after * 1000:.0f} ms after SIGTERM; exit {exited_after:.2f}s")


def test_stalled_client_cannot_delay_exit_past_grace_period(model_root: Path) -> None:
    server = start_kcr("serve", "sklearn", "--model-dir", str(model_root), "--graceful-timeout", "2")
    try:
        stalled = _partial_predict(server.port)
        time.sleep(0.2)
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(10)
        took = time.monotonic() - t0
        stalled.close()
    finally:
        server.stop()
    assert 1.8 < took < 4, f"exit after {took:.2f}s with a 2 s grace period"


@pytest.fixture
def slow_fake() -> FakeOllama:
    fake = FakeOllama(models=(CHAT_MODEL,)).start()
    yield fake
    fake.stop()


def test_streaming_chat_completes_during_drain(slow_fake: FakeOllama) -> None:
    server: ServerProcess = start_kcr(
        "serve", "ollama", "--ollama-host", slow_fake.url, "--model", CHAT_MODEL, "--graceful-timeout", "10"
    )
    slow_fake.delay_between = 0.4  # 4 tokens + done: about 2 s
    lines: list[str] = []
    first = threading.Event()

    def stream() -> None:
        body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=20) as r:
            for line in r.iter_lines():
                if line:
                    lines.append(line)
                    first.set()

    try:
        client = threading.Thread(target=stream)
        client.start()
        assert first.wait(10)
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        _wait_refused(server.port)
        client.join(15)
        assert server.proc.wait(10) == 0
        took = time.monotonic() - t0
    finally:
        server.stop()
    assert lines[-1] == "data: [DONE]", lines
    assert sum('"content":"' in line for line in lines) >= 4
    assert took < 5
    print(f"stream finished and process exited {took:.2f}s after SIGTERM")


@asynccontextmanager
async def asgi_lifespan(app: Any) -> AsyncIterator[None]:
    """Startup and shutdown as uvicorn drives them, through ASGI lifespan messages: the serving front
    runs the lifespan itself, so there is no FastAPI router to ask."""
    import asyncio

    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
        await task


def test_readiness_flips_in_the_signal_handler(model_root: Path) -> None:
    """Over HTTP readiness cannot be asked once the listener is closed (it closes at once), so this
    checks the ordering in process: the SIGTERM handler itself makes /v2/health/ready answer 503."""
    import asyncio

    import uvicorn

    from server.cli import _DrainingServer
    from tests.reliability.conftest import sklearn_app

    app = sklearn_app(model_root)
    server = _DrainingServer(uvicorn.Config(app, port=0, log_config=None), app)

    async def ready() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/v2/health/ready")).status_code

    async def scenario() -> tuple[int, int]:
        async with asgi_lifespan(app):
            before = await ready()
            server.handle_exit(signal.SIGTERM, None)
            return before, await ready()

    assert asyncio.run(scenario()) == (200, 503)
    assert server.should_exit
