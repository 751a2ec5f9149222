"""Server-sent events for OpenAI streams: framing, the closing ``[DONE]``, and cleanup that always runs.

The stream's first chunk is awaited by the caller before this response exists, so upstream failures
at the start are still real status codes; failures after that become one ``data: {"error": ...}``
event (the ``openai`` SDK raises ``APIError`` on it) and the stream ends without ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson
from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def frame(data: BaseModel | dict[str, Any]) -> bytes:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def close_quietly(iterator: Any) -> None:
    """``aclose()`` shielded from the cancellation that a client disconnect delivers."""
    close = getattr(iterator, "aclose", None)
    if close is None:
        return
    with contextlib.suppress(BaseException):
        await asyncio.shield(asyncio.ensure_future(close()))


class EventStreamResponse(StreamingResponse):
    """SSE on plain asyncio, closing its body iterator even if it was never drained.

    Starlette's StreamingResponse runs every stream in an anyio task group (a second task watching
    for the disconnect, a cancel scope); here the watcher is one plain task that cancels the stream's
    scope when the client goes away, which ends the upstream request through the iterators'
    ``finally``.
    """

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        finished = False
        # An anyio cancel scope rather than ``Task.cancel()``: when the app runs inside someone
        # else's cancel scope (a test client, middleware) that cancels it as the client goes away,
        # a native cancel landing in the same loop iteration is folded into theirs, and neither
        # side could tell whose CancelledError it was (anyio#1214). Nested scopes keep them apart.
        with anyio.CancelScope() as stream_scope:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not finished:
                    stream_scope.cancel()  # the client left: nothing more to send, nobody to tell

            watcher = asyncio.ensure_future(watch())
            try:
                headers = self.raw_headers
                await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
                async for chunk in self.body_iterator:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                finished = True
                watcher.cancel()
                await close_quietly(self.body_iterator)


async def sse_stream(
    first: Any,
    rest: AsyncIterator[Any],
    *,
    keep: Callable[[Any], bool],
    on_error: Callable[[BaseException], dict[str, Any]],
    on_end: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """Frame ``first`` then ``rest``; drop chunks ``keep`` rejects; an exception becomes an error event."""
    try:
        if keep(first):
            yield frame(first)
        async for chunk in rest:
            if keep(chunk):
                yield frame(chunk)
        yield DONE
    except Exception as exc:
        yield frame({"error": on_error(exc)})
    finally:
        await close_quietly(rest)
        if on_end is not None:
            on_end()
