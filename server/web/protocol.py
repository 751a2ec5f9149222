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
"""

from __future__ import annotations

import asyncio
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


class KcrHttpProtocol(HttpToolsProtocol):
    limits = Limits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receiving = False  # a request's bytes have started arriving, and it is not complete
        self._in_headers = False
        self._header_bytes = 0
        self._closing_after_response = False
        self._timer: asyncio.TimerHandle | None = None

    # --- connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(_raw_response(503, "Service Unavailable", "Too many open connections.\n"))
            transport.close()
            return
        self._start_request_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._receiving:
            self._receiving = True
            self._in_headers = True
            self._header_bytes = 0
            if self._timer is None:
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
        super().data_received(data)

    # --- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._receiving = self._in_headers = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()
        if self._closing_after_response and self.cycle is not None:
            self.cycle.keep_alive = False
        self._arm(self.limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._receiving = False
        self._cancel_timer()
        super().on_message_complete()

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
        self._timer = self.loop.call_later(self.limits.shutdown_grace, self._close_if_idle)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._closing_after_response and not self.transport.is_closing():
            self.transport.close()

    def _close_if_idle(self) -> None:
        self._timer = None
        if not self._receiving and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    # --- timers -----------------------------------------------------------------------------------

    def _start_request_timer(self) -> None:
        self._arm(self.limits.header_timeout, self._headers_timed_out)

    def _arm(self, delay: float, callback: Any) -> None:
        self._cancel_timer()
        if delay > 0:
            self._timer = self.loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_timed_out(self) -> None:
        self._timer = None
        if self._receiving and self._in_headers:
            self._refuse(408, "Request Timeout", "Request headers took too long.\n")
        elif not self._receiving and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # never sent a byte: nothing to answer

    def _body_timed_out(self) -> None:
        self._timer = None
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
