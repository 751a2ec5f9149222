"""Overload at 4x the configured concurrency, on real processes.

Chat (``--max-concurrency 2 --max-queue 2``, 8 clients at once, each stream about 1 s upstream):
what fits (2 running + 2 queued) finishes with 200 and the full answer; the rest get 503 +
``Retry-After`` promptly (well before any accepted request could finish). sklearn has no admission
limit: 64 concurrent keep-alive clients (4x the 16 the load tests size for) get every answer right,
nothing shed, p99 within the latency budget.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.reliability.conftest import CHAT_MODEL

#: sklearn: p99 latency budget at 64 concurrent keep-alive clients on the 2-core CI machine (we
#: measure about 40 ms).
SKLEARN_P99_BUDGET_S = 0.25


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[FakeOllama]:
    fake = FakeOllama(models=(CHAT_MODEL,)).start()
    fake.delay_between = 0.25
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def chat_server(slow_fake: FakeOllama) -> Iterator[ServerProcess]:
    server = start_kcr("serve", "ollama", "--ollama-host", slow_fake.url, "--model", CHAT_MODEL,
                       "--max-concurrency", "2", "--max-queue", "2", "--no-access-log")  # fmt: skip
    yield server
    server.stop()


async def _chat(client: httpx.AsyncClient, url: str) -> tuple[int, float, httpx.Response]:
    start = time.monotonic()
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    r = await client.post(url + "/v1/chat/completions", json=body, timeout=30)
    return r.status_code, time.monotonic() - start, r


def test_chat_sheds_excess_with_503_and_finishes_the_rest(chat_server: ServerProcess) -> None:
    async def burst() -> list[tuple[int, float, httpx.Response]]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(limits=limits) as client:
            return await asyncio.gather(*(_chat(client, chat_server.url) for _ in range(8)))

    results = asyncio.run(burst())
    accepted = [r for r in results if r[0] == 200]
    shed = [r for r in results if r[0] == 503]
    assert len(accepted) == 4 and len(shed) == 4, [r[0] for r in results]
    for _, took, r in shed:
        assert took < 0.5, f"503 took {took:.2f}s"
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "server_is_overloaded"
    for _, _, r in accepted:
        assert r.json()["choices"][0]["message"]["content"] == "Hello there!"
    slowest = max(took for _, took, _ in accepted)
    print(f"chat 4x: 4 served (slowest {slowest:.2f}s), 4 shed in <= {max(t for _, t, _ in shed):.3f}s")


async def _keepalive_client(port: int, path: str, body: bytes, n: int) -> list[tuple[int, bytes, float]]:
    """n requests on one HTTP/1.1 connection (a raw client: httpx's pool, not the server, is the
    bottleneck at 64 connections on two cores)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    out = []
    try:
        for _ in range(n):
            start = time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(next(h.split(b":")[1] for h in head.lower().split(b"\r\n")
                              if h.startswith(b"content-length:")))  # fmt: skip
            content = await reader.readexactly(length)
            out.append((status, content, time.monotonic() - start))
    finally:
        writer.close()
    return out


def test_sklearn_sheds_nothing_under_4x_load(iris_server: ServerProcess) -> None:
    body = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]}).encode()

    async def load() -> list[list[tuple[int, bytes, float]]]:
        return await asyncio.gather(
            *(_keepalive_client(iris_server.port, "/v1/models/iris:predict", body, 30) for _ in range(64))
        )

    start = time.monotonic()
    results = [r for client in asyncio.run(load()) for r in client]
    took = time.monotonic() - start
    assert len(results) == 64 * 30
    assert all(
        status == 200 and json.loads(content) == {"predictions": [1, 0]} for status, content, _ in results
    )
    latencies = sorted(t for _, _, t in results)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert p99 < SKLEARN_P99_BUDGET_S, f"p99 {p99 * 1000:.0f} ms"
    print(f"sklearn 64 clients: {len(results)} requests in {took:.1f}s, p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, none shed")  # fmt: skip
