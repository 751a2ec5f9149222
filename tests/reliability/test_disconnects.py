"""Clients that go away mid-stream: the upstream slot is freed within 1 s, and 100 of them in a row
leave no tasks, file descriptors (connections), in-flight requests or memory behind."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.web.http import Response
from server.web.routing import Route, Router, Table
from tests.openai.conftest import start_facade
from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.reliability.conftest import CHAT_MODEL

BODY = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[FakeOllama]:
    fake = FakeOllama(models=(CHAT_MODEL,)).start()
    fake.delay_between = 0.5  # a stream lasts about 2.5 s unless the client leaves
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def one_slot(slow_fake: FakeOllama) -> Iterator[ServerProcess]:
    """One upstream slot and no queue: a slot still held shows up as a 503 for the next request."""
    server = start_kcr("serve", "ollama", "--ollama-host", slow_fake.url, "--model", CHAT_MODEL,
                       "--max-concurrency", "1", "--max-queue", "0", "--no-access-log")  # fmt: skip
    yield server
    server.stop()


def drop(url: str) -> None:
    """Start a stream, read its first event, hang up."""
    with httpx.stream("POST", url + "/v1/chat/completions", json=BODY, timeout=10) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                break


def wait_for(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - start


def test_dropped_stream_frees_the_slot_within_1s(one_slot: ServerProcess, slow_fake: FakeOllama) -> None:
    before = slow_fake.disconnects
    drop(one_slot.url)
    freed = wait_for(lambda: slow_fake.disconnects == before + 1, 2)
    assert freed < 1.0, f"upstream stream closed {freed:.2f}s after the client left"
    # The one slot is free again: the next request is served, not refused with 503.
    with httpx.stream("POST", one_slot.url + "/v1/chat/completions", json=BODY, timeout=10) as r:
        assert r.status_code == 200
    print(f"upstream closed {freed * 1000:.0f} ms after the client left")


def _proc_stats(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as fh:
        status = fh.read()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return fds, rss_kb


def _gauge(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_100_dropped_clients_leak_nothing_in_the_process(
    one_slot: ServerProcess, slow_fake: FakeOllama
) -> None:
    pid = one_slot.proc.pid

    def settled() -> bool:
        return _gauge(one_slot.url, "kcr_openai_in_flight") == 0

    for _ in range(10):  # warm-up: imports, pools, first allocations
        drop(one_slot.url)
        wait_for(settled, 2)
    fds0, rss0 = _proc_stats(pid)
    before = slow_fake.disconnects
    start = time.monotonic()
    for _ in range(100):
        drop(one_slot.url)
        wait_for(settled, 2)  # max-queue 0: the next drop needs the slot back
    took = time.monotonic() - start
    wait_for(lambda: slow_fake.disconnects == before + 100, 5)
    time.sleep(0.3)
    fds1, rss1 = _proc_stats(pid)
    assert _gauge(one_slot.url, "kcr_requests_in_flight") == 1  # the /metrics request itself
    assert _gauge(one_slot.url, "kcr_openai_queued") == 0
    assert fds1 <= fds0 + 2, f"file descriptors {fds0} -> {fds1}"
    assert rss1 - rss0 < 8 * 1024, f"RSS {rss0} kB -> {rss1} kB"
    print(f"100 drops in {took:.1f}s; fds {fds0} -> {fds1}; RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB")


def test_100_dropped_clients_leave_no_tasks(slow_fake: FakeOllama) -> None:
    """In process, to count the server loop's asyncio tasks through a test-only route."""
    holder: dict[str, Any] = {}

    facade = start_facade(["--ollama-host", slow_fake.url, "--model", CHAT_MODEL, "--max-concurrency", "1",
                           "--max-queue", "0"])  # fmt: skip
    try:

        async def tasks(request: Any) -> Response:
            return Response.json({"tasks": len(asyncio.all_tasks())})

        route = Route("GET", "/_test/tasks", tasks, auth=False)
        test_only = Table("test", [route], render=None)  # type: ignore[arg-type]
        facade.app.router = Router([*facade.app.router.tables, test_only])
        holder["n"] = lambda: httpx.get(facade.url + "/_test/tasks").json()["tasks"]
        for _ in range(5):
            drop(facade.url)
        time.sleep(0.5)
        tasks0 = holder["n"]()
        for _ in range(100):
            drop(facade.url)
            wait_for(lambda: facade.app.state.registry.get(CHAT_MODEL).queue_stats() == (0, 0), 2)
        time.sleep(0.5)
        tasks1 = holder["n"]()
    finally:
        facade.stop()
    assert tasks1 <= tasks0, f"asyncio tasks {tasks0} -> {tasks1}"
    print(f"asyncio tasks on the server loop: {tasks0} before, {tasks1} after 100 dropped streams")
