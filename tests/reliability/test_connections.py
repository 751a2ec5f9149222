"""What a client can do to a connection before any route runs (``server.web.protocol``): huge or
slow headers, silent sockets, stalled bodies, too many connections, and requests caught by SIGTERM.

Each test measures its figure (RSS growth, loop stall, seconds to the answer, fds, status codes) on
a real process and asserts the rule of the "No single request can stall, bloat or drop the server"
issue; docs/operations.md lists the figures.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import ServerProcess, start_kcr
from tests.reliability.probe import Prober, open_fds, peak_mb, reset_peak, rss_mb

BODY = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()
FIGURES: dict[str, object] = {}


def _serve(model_root: Path, *flags: str, env: dict[str, str] | None = None) -> ServerProcess:
    return start_kcr("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris",
                     "--no-access-log", *flags, env=env)  # fmt: skip


@pytest.fixture(scope="module")
def server(model_root: Path) -> Iterator[ServerProcess]:
    proc = _serve(model_root, "--header-timeout", "1", "--body-timeout", "1", "--max-connections", "40",
                  env={"KCR_API_KEYS": "k-1"})  # fmt: skip
    yield proc
    proc.stop()


def _head(path: str = "/v1/models/iris:predict", extra: str = "", length: int = len(BODY)) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-1\r\n{extra}"
            f"Content-Length: {length}\r\n\r\n").encode()  # fmt: skip


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def _recv_all(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)  # the server may answer and close before we are done: what we want


def test_huge_headers_cost_neither_memory_nor_loop_time(server: ServerProcess) -> None:
    """32 MB of headers, then one 32 MB header value: each answered 431 once the budget is passed,
    connection closed; RSS grows by less than 2 MB and probes are never late by 50 ms."""
    pid = server.proc.pid
    for name, junk in (("many headers", b"X-A: " + b"a" * 1000 + b"\r\n"), ("one value", b"a" * 65536)):
        reset_peak(pid)
        before = rss_mb(pid)
        with Prober(server.port) as probe, socket.create_connection(("127.0.0.1", server.port)) as sock:
            start = time.perf_counter()
            sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n")
            if name == "one value":
                sock.sendall(b"X-Long: ")
            for _ in range((32 << 20) // len(junk)):
                _send_quietly(sock, junk)
            answer = _recv_all(sock)
            seconds = time.perf_counter() - start
        growth = peak_mb(pid) - before
        FIGURES[f"headers, {name}: 32 MB sent"] = (
            f"{_status(answer)}, peak RSS +{growth:.1f} MB, probe max {probe.max_ms:.1f} ms"
        )
        assert _status(answer) == 431 and b"connection: close" in answer
        assert growth < 2, growth
        assert probe.max_ms < 50 and probe.failures == 0
        assert seconds < 10


def test_silent_and_slow_clients_are_timed_out(server: ServerProcess) -> None:
    silent = socket.create_connection(("127.0.0.1", server.port))
    slow = socket.create_connection(("127.0.0.1", server.port))
    stalled = socket.create_connection(("127.0.0.1", server.port))
    start = time.monotonic()
    stalled.sendall(_head(length=len(BODY)) + BODY[:5])
    for byte in b"GET /v2/health/live HTTP/1.1\r\nHost:":  # 1 byte every 0.1 s: never done in time
        _send_quietly(slow, bytes([byte]))
        time.sleep(0.1)
        if time.monotonic() - start > 3:
            break
    results = {
        name: _recv_all(s, 5) for name, s in (("silent", silent), ("slow", slow), ("stalled", stalled))
    }
    elapsed = time.monotonic() - start
    for s in (silent, slow, stalled):
        s.close()
    FIGURES["silent / 1-byte-per-0.1s headers / stalled body (timeouts 1 s)"] = (
        f"closed / {_status(results['slow'])} / {_status(results['stalled'])} within {elapsed:.1f} s"
    )
    assert results["silent"] == b""
    assert _status(results["slow"]) == 408
    assert _status(results["stalled"]) == 408
    assert elapsed < 8


def test_connections_beyond_the_cap_are_refused_politely(server: ServerProcess) -> None:
    pid = server.proc.pid
    base_fds = open_fds(pid)
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
    time.sleep(0.3)
    refused = 0
    for s in socks[40:]:
        s.settimeout(2)
        answer = _recv_all(s, 2)
        refused += _status(answer) == 503
    held = open_fds(pid) - base_fds
    for s in socks:
        s.close()
    FIGURES["60 idle connections, cap 40"] = f"{refused} refused with 503, {held} fds held"
    assert refused >= 19  # the cap counts the server's own connections too: the 41st on is refused
    assert held <= 42
    # and the server still answers once they are gone
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head() + BODY)
        assert _status(_recv_all(sock, 5)) == 200


def test_sigterm_answers_every_request_that_has_started_arriving(model_root: Path) -> None:
    """8 predictions with 1 MB bodies, each partly sent when SIGTERM arrives, and a request sent on
    an idle keep-alive connection just after it: every one answered 200 with ``Connection: close``."""
    proc = _serve(model_root)
    big = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]] * 40_000}).encode()
    head = f"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(big)}\r\n\r\n".encode()
    whole = head + big
    socks = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", proc.port), timeout=20)
        sent = 20 if i == 0 else len(head) + 1000 * i  # the first one: headers not even complete
        s.sendall(whole[:sent])
        socks.append((s, sent))
    idle = socket.create_connection(("127.0.0.1", proc.port), timeout=20)
    idle.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while not first.endswith(b'{"live":true}'):
        first += idle.recv(4096)
    assert _status(first) == 200
    time.sleep(0.2)
    proc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    idle.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    for s, sent in socks:
        s.sendall(whole[sent:])
    answers = []
    for s, _ in socks:
        answers.append(_recv_all(s, 20))
        s.close()
    idle_answer = _recv_all(idle, 5)
    idle.close()
    code = proc.proc.wait(30)
    statuses = [_status(a) for a in answers]
    FIGURES["SIGTERM with 8 predictions arriving + 1 on an idle connection"] = (
        f"{statuses.count(200)}/8 answered, idle: {_status(idle_answer)}, exit {code}"
    )
    assert statuses == [200] * 8, answers[0][:300]
    assert all(b"connection: close" in a.lower() for a in answers)
    assert _status(idle_answer) == 200
    assert code == 0


def teardown_module() -> None:
    for name, figure in FIGURES.items():
        print(f"  {name}: {figure}")
