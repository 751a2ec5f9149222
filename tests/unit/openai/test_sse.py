"""Event-stream framing: ``[DONE]`` at the end, an error as the last event, cleanup in every case."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from server.errors import UpstreamTimeout
from server.openai import sse


class Source:
    """Events, then optionally a failure; records whether the stream closed it."""

    def __init__(self, events: list[Any], fail: Exception | None = None) -> None:
        self.events = events
        self.fail = fail
        self.closed = False

    async def run(self) -> AsyncIterator[Any]:
        try:
            for event in self.events:
                yield event
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


def collect(first: Any, source: Source, encode: Any = None) -> tuple[list[bytes], list[Any], list[str]]:
    errors: list[Any] = []
    ended: list[str] = []

    async def go() -> list[bytes]:
        frames = sse.stream(
            first,
            source.run(),
            encode or (lambda e: sse.frame({"e": e})),
            on_error=errors.append,
            on_end=lambda: ended.append("end"),
            request_id="rid-1",
        )
        return [f async for f in frames]

    return asyncio.run(go()), errors, ended


def test_frames_then_done() -> None:
    frames, errors, ended = collect(1, Source([2, 3]))
    assert frames == [b'data: {"e":1}\n\n', b'data: {"e":2}\n\n', b'data: {"e":3}\n\n', sse.DONE]
    assert errors == [] and ended == ["end"]


def test_events_encoded_as_none_are_not_sent() -> None:
    frames, _, _ = collect(1, Source([2, 3]), encode=lambda e: None if e == 2 else sse.frame(e))
    assert frames == [b"data: 1\n\n", b"data: 3\n\n", sse.DONE]


def test_a_failure_is_the_last_event_and_there_is_no_done() -> None:
    exc = UpstreamTimeout("Ollama did not answer within the total timeout.")
    source = Source([2], fail=exc)
    frames, errors, ended = collect(1, source)
    assert frames[-1] != sse.DONE and len(frames) == 3
    assert orjson.loads(frames[-1][6:]) == {
        "error": {"message": exc.message, "type": "timeout_error", "param": None, "code": "upstream_timeout"}
    }
    assert errors == [exc] and ended == ["end"] and source.closed


def test_an_unexpected_failure_is_logged_once_and_told_as_a_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="kcr.server"):
        frames, _, _ = collect(1, Source([], fail=RuntimeError("a bug")))
    assert orjson.loads(frames[-1][6:])["error"]["type"] == "server_error"
    [record] = caplog.records
    assert "rid-1" in record.getMessage() and record.exc_info is not None


def test_a_client_that_leaves_closes_the_source() -> None:
    source = Source([2, 3, 4])
    ended: list[str] = []

    async def go() -> None:
        frames = sse.stream(1, source.run(), sse.frame, on_error=print, on_end=lambda: ended.append("end"))
        assert await anext(frames) == b"data: 1\n\n"
        assert await anext(frames) == b"data: 2\n\n"
        await frames.aclose()  # what the response does when the client goes away

    asyncio.run(go())
    assert source.closed and ended == ["end"]
