"""What kcr's HTTP protocol (``server.web.protocol``: header budget, read timeouts, SIGTERM
handling) costs per request over uvicorn's own httptools protocol, with nothing else measured.

Both serve the same one-chunk POST from 64 connections over a fake transport (no sockets, no
syscalls) to an ASGI app that reads the body and answers at once, on one event loop; the figure is
microseconds per request, medians of interleaved runs. Sockets and the real app only add noise to
a difference of a few microseconds, which is why ``make bench`` could not show where it came from.

    taskset -c 0 python -m loadtests.bench_protocol
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvicorn.config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from server.web.protocol import KcrHttpProtocol

BODY = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
REQUEST = (
    b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
ANSWER = b'{"predictions":[1]}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.answered: asyncio.Event | None = None
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.answered is not None and bytes(data).endswith(ANSWER):
            self.answered.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def per_request_us(protocol_class: type[HttpToolsProtocol], requests: int, connections: int) -> float:
    config = uvicorn.config.Config(app, http=protocol_class, log_config=None, access_log=False)
    config.load()
    state = ServerState()
    pairs = []
    for _ in range(connections):
        protocol = protocol_class(config=config, server_state=state, app_state={})
        transport = Transport()
        protocol.connection_made(transport)
        pairs.append((protocol, transport))

    async def client(protocol: HttpToolsProtocol, transport: Transport) -> None:
        for _ in range(requests):
            transport.answered = asyncio.Event()
            protocol.data_received(REQUEST)
            await transport.answered.wait()

    start = time.perf_counter()
    await asyncio.gather(*(client(p, t) for p, t in pairs))
    elapsed = time.perf_counter() - start
    for protocol, _ in pairs:
        protocol.connection_lost(None)
    return elapsed / (requests * connections) * 1e6


async def main(reps: int, requests: int, connections: int) -> None:
    kinds: dict[str, type[HttpToolsProtocol]] = {"uvicorn": HttpToolsProtocol, "kcr": KcrHttpProtocol}
    runs: dict[str, list[float]] = {name: [] for name in kinds}
    for rep in range(reps):
        for name in kinds if rep % 2 == 0 else list(kinds)[::-1]:
            runs[name].append(await per_request_us(kinds[name], requests, connections))
    mid = {name: statistics.median(values) for name, values in runs.items()}
    for name, values in runs.items():
        print(f"{name:8} {mid[name]:6.2f} µs/request  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"kcr's protocol adds {mid['kcr'] - mid['uvicorn']:+.2f} µs a request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300, help="per connection and run")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.reps, args.requests, args.connections))
