"""``KcrHttpProtocol`` in process, over a fake transport: the timeouts are deadlines checked by one
sweep per server, so serving a request schedules no loop timer of its own (they cost ~3 µs a
request), and a silent client is still cut off within its timeout plus one tick.

The end-to-end behaviour (408s, 431s, SIGTERM) is tested on a real process in
``tests/reliability/test_connections.py``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvicorn.config
from uvicorn.server import ServerState

from loadtests import bench_protocol
from loadtests.bench_protocol import ANSWER, REQUEST, app
from server.web.protocol import KcrHttpProtocol, Limits


class Transport(bench_protocol.Transport):
    """The benchmark's fake transport, keeping what was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.answered: asyncio.Event = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)
        if self.written.endswith(ANSWER) or b"408" in self.written:
            self.answered.set()


@pytest.fixture
def short_timeouts() -> Iterator[None]:
    saved = Limits.header_timeout, Limits.body_timeout
    Limits.header_timeout, Limits.body_timeout = 0.5, 0.5
    yield
    Limits.header_timeout, Limits.body_timeout = saved


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """The test on a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def connect(state: ServerState) -> tuple[KcrHttpProtocol, Transport]:
    config = uvicorn.config.Config(app, http=KcrHttpProtocol, log_config=None, access_log=False)
    config.load()
    protocol = KcrHttpProtocol(config=config, server_state=state, app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def test_tick_follows_the_shortest_timeout(short_timeouts: None) -> None:
    assert Limits.tick() == 0.05
    Limits.header_timeout, Limits.body_timeout = 0, 0
    assert Limits.tick() == 1.0  # no timeout: the sweep still runs, rarely
    Limits.header_timeout, Limits.body_timeout = 10, 30
    assert Limits.tick() == 1.0


@run
async def test_requests_schedule_no_timers_of_their_own(short_timeouts: None) -> None:
    loop = asyncio.get_running_loop()
    scheduled: list[str] = []
    call_later = loop.call_later

    def counting(delay: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        if isinstance(getattr(callback, "__self__", None), KcrHttpProtocol):
            scheduled.append(callback.__name__)
        return call_later(delay, callback, *args, **kwargs)

    loop.call_later = counting  # type: ignore[method-assign,assignment]
    protocol, transport = connect(ServerState())
    for _ in range(50):
        transport.answered.clear()
        protocol.data_received(REQUEST)
        await asyncio.wait_for(transport.answered.wait(), 2)
    assert transport.written.count(b"HTTP/1.1 200") == 50 and not transport.closed
    # uvicorn's keep-alive timer is re-armed per request; ours are deadlines the sweep checks.
    assert set(scheduled) <= {"timeout_keep_alive_handler"}, scheduled
    protocol.connection_lost(None)


@run
async def test_a_stalled_body_gets_408_within_a_tick_of_its_timeout(short_timeouts: None) -> None:
    protocol, transport = connect(ServerState())
    start = asyncio.get_running_loop().time()
    protocol.data_received(REQUEST[:-5])  # the body's last bytes never come
    await asyncio.wait_for(transport.answered.wait(), 3)
    elapsed = asyncio.get_running_loop().time() - start
    assert transport.written.startswith(b"HTTP/1.1 408") and transport.closed
    assert 0.5 <= elapsed < 0.5 + Limits.tick() + 0.1, elapsed
    protocol.connection_lost(None)


@run
async def test_a_silent_connection_is_closed_and_the_sweep_stops_with_the_last_one(
    short_timeouts: None,
) -> None:
    state = ServerState()
    protocol, transport = connect(state)
    sweeper = vars(state)["kcr_sweeper"]
    await asyncio.sleep(0.5 + Limits.tick() + 0.1)
    assert transport.closed and transport.written == b""  # nothing was asked: nothing to answer
    protocol.connection_lost(None)
    await asyncio.sleep(Limits.tick() * 2)
    assert sweeper.handle is None
