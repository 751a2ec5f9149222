"""Neutral events → an Anthropic ``message`` and its stream events.

One writer for both, as in the OpenAI wing's Responses writer: streamed, each event becomes
``event: NAME`` + data frames in the order the ``anthropic`` SDK's ``MessageStream`` accumulates
them (``message_start``, ``ping``, per block ``content_block_start`` → ``content_block_delta``… →
``content_block_stop``, then ``message_delta`` with ``stop_reason`` and usage, ``message_stop``);
whole, the blocks are only collected. ``stop_reason`` is ``tool_use`` when a call was made,
``max_tokens`` at the limit, else ``end_turn`` (Ollama's ``done_reason`` does not tell a stop
sequence from the end of the turn, so ``stop_sequence`` is never reported). Thinking blocks carry an
empty ``signature``: there is nothing to sign.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from server import generation as g
from server.anthropic.errors import error_object
from server.errors import KcrError
from server.prefetch import aclose

logger = logging.getLogger("kcr.server")


def mint_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def frame(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_frame(exc: Exception) -> bytes:
    return frame("error", error_object(exc)[1])


def _usage(usage: g.Usage) -> dict[str, int]:
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def _input(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:  # a call cut short by max_tokens: its text, so nothing is lost
        return {"_raw": arguments}


class MessageWriter:
    def __init__(self, model: str, one_call: bool, stream: bool) -> None:
        self.id = mint_id("msg")
        self.model = model
        self.one_call = one_call
        self.stream = stream
        self.content: list[dict[str, Any]] = []
        self.usage: g.Usage | None = None
        self.reason: g.FinishReason = "stop"
        self._open: str | None = None  # "text" or "thinking": the block being written
        self._calls = 0
        self._frames: list[bytes] = []

    def message(self, stop_reason: str | None, usage: g.Usage) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content if stop_reason is not None else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _usage(usage),
        }

    def stop_reason(self) -> str:
        if self._calls:
            return "tool_use"
        return "max_tokens" if self.reason == "length" else "end_turn"

    def _emit(self, event: str, **payload: Any) -> None:
        if self.stream:
            self._frames.append(frame(event, {"type": event, **payload}))

    def __call__(self, ev: g.Event) -> bytes | None:
        self._frames = []
        if isinstance(ev, g.TextDelta):
            if ev.text:
                self._block("text", ev.text, "text_delta")
        elif isinstance(ev, g.ReasoningDelta):
            self._block("thinking", ev.text, "thinking_delta")
        elif isinstance(ev, g.ToolCallDelta):
            self._call(ev.call)
        elif isinstance(ev, g.Start):
            self._emit("message_start", message=self.message(None, g.Usage()))
            self._emit("ping")
        elif isinstance(ev, g.Finish):
            self.reason = ev.reason
            self._close()
        elif isinstance(ev, g.Usage):
            self.usage = ev
            if not self.content:  # Anthropic always answers at least one block
                self._block("text", "", "text_delta")
                self._close()
            self._emit("message_delta", delta={"stop_reason": self.stop_reason(), "stop_sequence": None},
                       usage=_usage(ev))  # fmt: skip
            self._emit("message_stop")
        return b"".join(self._frames) if self._frames else None

    def _block(self, kind: str, text: str, delta: str) -> None:
        if self._open != kind:
            self._close()
            self._open = kind
            block: dict[str, Any] = {"type": "text", "text": ""}
            if kind == "thinking":
                block = {"type": "thinking", "thinking": "", "signature": ""}
            self.content.append(block)
            self._emit("content_block_start", index=len(self.content) - 1, content_block=dict(block))
        self.content[-1][kind] += text
        if text:
            self._emit("content_block_delta", index=len(self.content) - 1, delta={"type": delta, kind: text})

    def _close(self) -> None:
        if self._open is not None:
            self._emit("content_block_stop", index=len(self.content) - 1)
            self._open = None

    def _call(self, call: g.ToolCall) -> None:
        if self.one_call and self._calls:
            return
        self._close()
        self._calls += 1
        block = {"type": "tool_use", "id": call.id or mint_id("toolu"), "name": call.name,
                 "input": _input(call.arguments)}  # fmt: skip
        self.content.append(block)
        index = len(self.content) - 1
        self._emit("content_block_start", index=index, content_block={**block, "input": {}})
        self._emit("content_block_delta", index=index,
                   delta={"type": "input_json_delta", "partial_json": call.arguments})  # fmt: skip
        self._emit("content_block_stop", index=index)


async def message_object(events: AsyncIterator[g.Event], writer: MessageWriter) -> dict[str, Any]:
    try:
        async for ev in events:
            writer(ev)
    finally:
        await aclose(events)
    return writer.message(writer.stop_reason(), writer.usage or g.Usage())


async def stream(
    first: g.Event,
    rest: AsyncIterator[g.Event],
    encode: Callable[[g.Event], bytes | None],
    on_end: Callable[[], None],
    request_id: str,
) -> AsyncIterator[bytes]:
    """The SSE bytes; a failure after the first event is one ``event: error`` (Anthropic's shape)."""
    try:
        data = encode(first)
        if data:
            yield data
        async for event in rest:
            data = encode(event)
            if data:
                yield data
    except Exception as exc:
        if not isinstance(exc, KcrError):
            logger.exception("unhandled error in an event stream (request id %s)", request_id)
        yield error_frame(exc)
    finally:
        await aclose(rest)
        on_end()
