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
    """A StreamingResponse that closes its body iterator even if it was never drained."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
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
