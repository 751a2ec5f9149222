"""uvicorn's httptools protocol with the limits a server facing untrusted clients needs.

uvicorn (0.54) buffers request headers without a limit (300 MB of headers took RSS from 86 to 444
MB before our 431), its parser binding joins a long header value piece by piece (80 MB: a 7 s stall),
and it has no header or body read timeout (silent or 1-byte-per-second clients keep their sockets
forever). On SIGTERM it closes every connection that has no response in progress, so a request whose
bytes have started arriving, or are on the wire to an idle keep-alive connection, gets a reset.
Here, per connection:

- header bytes are counted as they arrive and cut off at ``MAX_HEADER_BYTES`` with a 431, before
  the parser sees them;
- headers must be complete within ``header_timeout`` of the request's first byte (or of the
  connection's opening), and a body must keep arriving (``body_timeout`` between chunks), else 408;
- connections beyond ``max_connections`` get a 503 and are closed at once (the fd is freed);
- on shutdown, a request that has started arriving is read, served and answered with
  ``Connection: close``; an idle connection is closed after ``shutdown_grace`` seconds, and a request
  that arrives within the grace is served the same way.

The header and body timeouts are deadlines on the connection, checked by one sweep per server every
``Limits.tick()`` seconds, not a loop timer per request: arming and cancelling two ``call_later``
timers per request cost ~6 % of a small predict's throughput (``loadtests/results/refactor-check``).
So a timeout fires up to one tick late (a tenth of the shortest timeout, at most 1 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.web.dispatch import MAX_HEADER_BYTES

#: The request line and headers together: the dispatcher's 431 (in the protocol's own shape, the
#: connection kept) judges the headers alone; this cut-off, for what is far beyond it, closes.
_MAX_HEAD = MAX_HEADER_BYTES + 8192


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class Limits:
    """What ``KcrHttpProtocol`` enforces; set once by the CLI from the settings."""

    header_timeout = 10.0
    body_timeout = 30.0
    max_connections = 1000
    shutdown_grace = 1.0

    @classmethod
    def tick(cls) -> float:
        """How often deadlines are checked: a tenth of the shortest timeout, within 0.05..1 s."""
        timeouts = [t for t in (cls.header_timeout, cls.body_timeout) if t > 0]
        return min(1.0, max(0.05, min(timeouts, default=10.0) / 10))


class _Sweeper:
    """One per server: fires the deadlines that have passed, every tick while there are connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self.loop = loop
        self.connections = connections
        self.handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.handle is None:
            self.handle = self.loop.call_later(Limits.tick(), self._run)

    def _run(self) -> None:
        self.handle = None
        now = self.loop.time()
        for conn in list(self.connections):
            expire = getattr(conn, "_expire", None)
            if expire is not None and conn._deadline <= now:
                conn._expire = None
                expire()
        if self.connections:
            self.start()


class KcrHttpProtocol(HttpToolsProtocol):
    limits = Limits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receiving = False  # a request's bytes have started arriving, and it is not complete
        self._in_headers = False
        self._header_bytes = 0
        self._closing_after_response = False
        #: The pending timeout: ``_expire`` runs once the loop's clock passes ``_deadline``.
        self._deadline = 0.0
        self._expire: Callable[[], None] | None = None
        self._grace: asyncio.TimerHandle | None = None

    # --- connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(_raw_response(503, "Service Unavailable", "Too many open connections.\n"))
            transport.close()
            return
        self._start_request_timer()
        shared = vars(self.server_state)
        sweeper: _Sweeper = shared.get("kcr_sweeper") or shared.setdefault(
            "kcr_sweeper", _Sweeper(self.loop, self.connections)
        )
        sweeper.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    # The methods below run for every request: they call the parent class directly, not through
    # super(), which ``python -m loadtests.bench_protocol`` showed costs ~0.7 µs a request more.

    def data_received(self, data: bytes) -> None:
        if not self._receiving:
            self._receiving = self._in_headers = True
            self._header_bytes = 0
            if self._expire is None:
                self._start_request_timer()
        if self._in_headers:
            before = self._header_bytes
            self._header_bytes += len(data)
            if self._header_bytes > _MAX_HEAD:
                end = data.find(b"\r\n\r\n")  # the body may follow the headers in the same chunk
                if end == -1 or before + end > _MAX_HEAD:
                    self._refuse(431, "Request Header Fields Too Large", "Request headers are too large.\n")
                    return
        elif self.cycle is not None and not self.cycle.response_complete:
            self._arm(self.limits.body_timeout, self._body_timed_out)
        HttpToolsProtocol.data_received(self, data)

    # --- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._receiving = self._in_headers = True
        HttpToolsProtocol.on_message_begin(self)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        HttpToolsProtocol.on_headers_complete(self)
        if self._closing_after_response and self.cycle is not None:
            self.cycle.keep_alive = False
        self._arm(self.limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        # Only the deadline: a shutdown's grace timer checks for itself whether the connection is idle.
        self._receiving = False
        self._expire = None
        HttpToolsProtocol.on_message_complete(self)

    # --- shutdown ---------------------------------------------------------------------------------

    def shutdown(self) -> None:
        self._closing_after_response = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # in progress: answered, then closed
            return
        if self._receiving:
            return  # headers on their way: on_headers_complete turns keep-alive off
        # Idle: a request may already be on the wire; close once it had time to arrive.
        self._cancel_timer()
        self._grace = self.loop.call_later(self.limits.shutdown_grace, self._close_if_idle)

    def on_response_complete(self) -> None:
        HttpToolsProtocol.on_response_complete(self)
        if self._closing_after_response and not self.transport.is_closing():
            self.transport.close()

    def _close_if_idle(self) -> None:
        self._grace = None
        if not self._receiving and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    # --- timers -----------------------------------------------------------------------------------

    def _start_request_timer(self) -> None:
        self._arm(self.limits.header_timeout, self._headers_timed_out)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        if delay > 0:
            self._deadline = self.loop.time() + delay
            self._expire = callback
        else:
            self._expire = None

    def _cancel_timer(self) -> None:
        self._expire = None
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _headers_timed_out(self) -> None:
        if self._receiving and self._in_headers:
            self._refuse(408, "Request Timeout", "Request headers took too long.\n")
        elif not self._receiving and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # never sent a byte: nothing to answer

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not self._receiving:
            return
        if not cycle.response_started:
            self.transport.write(_raw_response(408, "Request Timeout", "Request body took too long.\n"))
            cycle.response_started = cycle.response_complete = True
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._cancel_timer()
        if not self.transport.is_closing():
            self.transport.write(_raw_response(status, reason, message))
            self.transport.close()
