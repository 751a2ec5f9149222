"""The request and reply objects every route handler sees, in raw ASGI.

Handlers take a ``Request`` and return a ``Response`` or an ``EventStream``; the dispatcher sends it.
No web framework is imported: the hot routes and the probes are answered from here in a process
that never imports FastAPI (cold start; see ``server.web.dispatch``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson
from starlette.types import Message, Receive, Scope, Send

from server.errors import InvalidInput, PayloadTooLarge

Headers = list[tuple[bytes, bytes]]
JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The whole body, refused with 413 before it is buffered: at once from Content-Length, else as
    soon as a chunked body passes ``limit``."""
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("Invalid Content-Length header")
        if int(declared) > limit:
            raise PayloadTooLarge(f"Request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Request:
    """One HTTP request: its scope, its path parameters, and its body read once under the limit."""

    __slots__ = ("_body", "_headers", "body_limit", "params", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str], body_limit: int) -> None:
        self.scope = scope
        self.receive = receive
        self.params = params
        self.body_limit = body_limit
        self._headers: dict[bytes, bytes] | None = None
        self._body: bytes | None = None

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Lower-case names (as ASGI servers give them); the first value of a repeated header."""
        if self._headers is None:
            self._headers = dict(reversed(self.scope["headers"]))  # reversed: the first value wins
        return self._headers

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    @property
    def state(self) -> dict[str, Any]:
        """Per-request values the dispatcher reads back: ``request_id``, ``model_name``."""
        state: dict[str, Any] = self.scope["state"]
        return state

    @property
    def request_id(self) -> str:
        return str(self.state.get("request_id", "-"))

    def name_model(self, name: str) -> None:
        """The model this request is for, for the metrics and the access log."""
        self.state["model_name"] = name

    async def body(self) -> bytes:
        if self._body is None:
            if (encoding := self.headers.get(b"content-encoding")) not in (None, b"identity"):
                from server.web.encoding import read_decoded_body

                length = self.headers.get(b"content-length")
                self._body = await read_decoded_body(self._chunks(), encoding, length, self.body_limit)
                return self._body
            self._body = await read_body(self.receive, self.headers.get(b"content-length"), self.body_limit)
        return self._body

    async def _chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (for ``server.web.encoding``)."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return


class Response:
    """A whole response: status, body and headers, sent in two ASGI messages."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: bytes, status: int = 200, content_type: bytes = JSON, headers: Headers | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers: Headers = [(b"content-type", content_type), *(headers or ())]

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: Headers | None = None) -> Response:
        return cls(orjson.dumps(payload), status, JSON, headers)

    async def __call__(self, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [*self.headers, (b"content-length", str(len(self.body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": self.body})


def encode_headers(headers: dict[str, str] | None) -> Headers:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]


SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def close_quietly(iterator: Any) -> None:
    """``aclose()`` shielded from the cancellation that a client disconnect delivers."""
    close = getattr(iterator, "aclose", None)
    if close is None:
        return
    with contextlib.suppress(BaseException):
        await asyncio.shield(asyncio.ensure_future(close()))


class EventStream:
    """A streamed response (server-sent events) that ends its source when the client goes away.

    One plain task watches for the disconnect and cancels the stream's anyio cancel scope, which ends
    the upstream request through the source's ``finally``. A cancel scope, not ``Task.cancel()``: when
    the app runs inside someone else's cancel scope (a test client) that cancels it as the client goes
    away, a native cancel landing in the same loop iteration is folded into theirs, and neither side
    could tell whose CancelledError it was (anyio#1214). Nested scopes keep them apart.
    """

    __slots__ = ("content", "cut", "headers", "on_cut", "status")

    def __init__(
        self, content: AsyncIterator[bytes], headers: Headers | None = None, on_cut: bytes = b""
    ) -> None:
        self.content = content
        self.status = 200
        self.headers: Headers = [*SSE_HEADERS, *(headers or ())]
        #: Sent when the server cuts the stream (the graceful shutdown timed out): the protocol's
        #: last words, so the client sees an error rather than a silently truncated answer.
        self.on_cut = on_cut
        #: Set when the stream was cut by the server, for the access log.
        self.cut = False

    async def __call__(self, receive: Receive, send: Send) -> None:
        import anyio

        finished = False
        with anyio.CancelScope() as scope:

            async def watch() -> None:
                message: Message = await receive()
                while message["type"] != "http.disconnect":
                    message = await receive()
                if not finished:
                    scope.cancel()  # the client left: nothing more to send, nobody to tell

            watcher = asyncio.ensure_future(watch())
            try:
                await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
                try:
                    async for chunk in self.content:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except asyncio.CancelledError:
                    # Not the client leaving (that cancels our own scope, above): the server is
                    # cancelling what is still running at the end of its graceful shutdown.
                    self.cut = True
                    with contextlib.suppress(BaseException):
                        await send({"type": "http.response.body", "body": self.on_cut, "more_body": False})
                    raise
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                finished = True
                watcher.cancel()
                await close_quietly(self.content)


class Reply(Protocol):
    """What a handler returns: something that sends itself (``Response``, ``EventStream``...)."""

    status: int
    headers: Headers

    async def __call__(self, receive: Receive, send: Send) -> None: ...
