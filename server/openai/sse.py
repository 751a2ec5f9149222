"""Server-sent events for OpenAI streams: framing, the closing ``[DONE]``, and an error as the last event.

The stream's first event is awaited by the route before this stream exists, so backend failures at
the start are still real status codes; a failure after that becomes one ``data: {"error": ...}``
event (the ``openai`` SDK raises ``APIError`` on it) and the stream ends without ``[DONE]``. The
Responses API frames differently (named events, no ``[DONE]``, an ``error`` event then
``response.failed``): its encoder passes its own ``done`` and ``fail``. The response itself
(headers, client disconnects) is ``server.web.http.EventStream``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson

from server.errors import KcrError, ServerNotReady
from server.openai.errors import error_object
from server.web.http import close_quietly

logger = logging.getLogger("kcr.server")

DONE = b"data: [DONE]\n\n"

T = TypeVar("T")


def frame(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def named_frame(event: str, payload: Any) -> bytes:
    """``event: NAME`` + data, as the Responses API (and Anthropic) send every event."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_frame(exc: Exception) -> bytes:
    return frame({"error": error_object(exc)[1]})


#: The end of a stream the server cuts at the end of its graceful shutdown (``--graceful-timeout``).
SHUTDOWN = error_frame(ServerNotReady("The server is shutting down; the answer was cut short.")) + DONE


async def stream(
    first: T,
    rest: AsyncIterator[T],
    encode: Callable[[T], bytes | None],
    *,
    on_error: Callable[[Exception], None],
    on_end: Callable[[], None],
    request_id: str = "-",
    done: bytes = DONE,
    fail: Callable[[Exception], bytes] = error_frame,
) -> AsyncIterator[bytes]:
    """``encode`` each event (``first``, then ``rest``) into SSE bytes (None: nothing to send), then
    ``done``; an exception becomes ``fail(exc)``. ``rest`` is closed and ``on_end`` called whatever
    happens, the client leaving included."""
    try:
        data = encode(first)
        if data:
            yield data
        async for event in rest:
            data = encode(event)
            if data:
                yield data
        if done:
            yield done
    except Exception as exc:
        if not isinstance(exc, KcrError):
            logger.exception("unhandled error in an event stream (request id %s)", request_id)
        on_error(exc)
        yield fail(exc)
    finally:
        await close_quietly(rest)
        on_end()
