"""Fixtures: a scripted fake Ollama and facade servers running in threads (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from server.app import create_app
from server.cli import parse
from tests.openai.fake_ollama import FakeOllama
from tests.procs import free_port

MODEL = "smollm2:135m"
EMBED = "embed:1"


@dataclass
class Facade:
    url: str
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base(self) -> str:
        return self.url + "/v1"

    def client(self, **kw: Any) -> openai.OpenAI:
        kw.setdefault("api_key", "none")
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base, **kw)

    def async_client(self, **kw: Any) -> openai.AsyncOpenAI:
        kw.setdefault("api_key", "none")
        kw.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.base, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_facade(args: list[str], environ: dict[str, str] | None = None, wait_ready: bool = True) -> Facade:
    port = free_port()
    argv = ["serve", "ollama", *args, "--host", "127.0.0.1", "--http-port", str(port), "--no-access-log"]
    settings, options, runtime = parse(argv, environ or {})
    app = create_app(settings, runtime.build(settings, options))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    facade = Facade(f"http://127.0.0.1:{port}", app, server, thread)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            status = httpx.get(facade.url + "/v2/health/ready", timeout=1).status_code
            if status == 200 or (not wait_ready and server.started):
                return facade
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    facade.stop()
    raise TimeoutError("facade did not become ready")


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama(models=(MODEL, EMBED)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def facade_factory() -> Iterator[Callable[..., Facade]]:
    started: list[Facade] = []

    def factory(*args: str, environ: dict[str, str] | None = None, wait_ready: bool = True) -> Facade:
        f = start_facade(list(args), environ, wait_ready)
        started.append(f)
        return f

    yield factory
    for f in started:
        f.stop()


@pytest.fixture(scope="session")
def facade(fake: FakeOllama, facade_factory: Callable[..., Facade]) -> Facade:
    return facade_factory("--ollama-host", fake.url, "--model", MODEL, "--embedding-model", EMBED)


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
