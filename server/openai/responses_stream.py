"""The Responses API, answer side: neutral events → the ``response`` object and its stream events.

One writer serves both: streamed, every event becomes its SSE events (named, with
``sequence_number``s); whole, the same items are only collected. The sequence is what the
``openai`` SDK's ``responses.stream`` accumulator and OpenAI itself produce: ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added`` →
(``content_part.added`` → ``output_text.delta``… → ``output_text.done`` → ``content_part.done``) or
(``function_call_arguments.delta`` → ``.done``) → ``response.output_item.done``, and last
``response.completed``, or ``response.incomplete`` when ``max_output_tokens`` cut the answer. A
failure after the first event is an ``error`` event then ``response.failed`` (no ``[DONE]``: the
Responses API does not send one).

The trace is a ``reasoning`` item whose ``content`` is ``reasoning_text`` (the raw chain of thought,
as vLLM returns it for open models, with ``response.reasoning_text.*`` events), not a ``summary``:
nothing here summarises it. Ollama's own layer puts the trace in ``summary`` instead.
"""

from __future__ import annotations

import time
from typing import Any

from server import generation as g
from server.errors import Overloaded, UpstreamUnavailable
from server.openai.errors import error_object
from server.openai.responses import Plan
from server.openai.serving import close, mint_call_id, mint_id, token_logprobs
from server.openai.sse import named_frame


def usage_object(usage: g.Usage) -> dict[str, Any]:
    p, c = usage.prompt_tokens, usage.completion_tokens
    return {
        "input_tokens": p,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": c,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": p + c,
    }


class ResponseWriter:
    """Folds one generation's events into output items; with ``stream``, also into SSE events."""

    def __init__(self, model: str, plan: Plan, stream: bool) -> None:
        self.id = mint_id("resp", "_")
        self.created = int(time.time())
        self.model = model
        self.plan = plan
        self.stream = stream
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.usage: g.Usage | None = None
        self.reason: g.FinishReason = "stop"
        self._item: dict[str, Any] | None = None  # the message or reasoning item being written
        self._parts: list[str] = []
        self._logprobs: list[dict[str, Any]] = []
        self._calls = 0
        self._frames: list[bytes] = []

    # --- the response object --------------------------------------------------------------------------

    def response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        done = status in ("completed", "incomplete", "failed")
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        body = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": list(self.output) if done else [],
            **self.plan.echo,
        }
        if self.usage is not None and done:  # absent until known (the schema does not allow null)
            body["usage"] = usage_object(self.usage)
        return body

    def final_status(self) -> str:
        return "incomplete" if self.reason == "length" else "completed"

    # --- events ---------------------------------------------------------------------------------------

    def _emit(self, kind: str, **payload: Any) -> None:
        if self.stream:
            self._frames.append(named_frame(kind, {"type": kind, "sequence_number": self.seq, **payload}))
            self.seq += 1

    def __call__(self, ev: g.Event) -> bytes | None:
        self._frames = []
        if isinstance(ev, g.TextDelta):
            self._open("message")
            self._parts.append(ev.text)
            lps = token_logprobs(ev.logprobs) if self.plan.logprobs else []
            self._logprobs.extend(lps)
            self._emit("response.output_text.delta", item_id=self._id, output_index=self._index,
                       content_index=0, delta=ev.text, logprobs=lps)  # fmt: skip
        elif isinstance(ev, g.ReasoningDelta):
            self._open("reasoning")
            self._parts.append(ev.text)
            self._emit("response.reasoning_text.delta", item_id=self._id, output_index=self._index,
                       content_index=0, delta=ev.text)  # fmt: skip
        elif isinstance(ev, g.ToolCallDelta):
            self._call(ev.call)
        elif isinstance(ev, g.Start):
            self._emit("response.created", response=self.response("in_progress"))
            self._emit("response.in_progress", response=self.response("in_progress"))
        elif isinstance(ev, g.Finish):
            self.reason = ev.reason
            self._close()
        elif isinstance(ev, g.Usage):
            self.usage = ev
            status = self.final_status()
            self._emit(f"response.{status}", response=self.response(status))
        return b"".join(self._frames) if self._frames else None

    def fail(self, exc: Exception) -> bytes:
        """An ``error`` event, then ``response.failed`` (the stream's last words)."""
        self._frames = []
        _, body, _ = error_object(exc)
        self._emit("error", code=body["code"] or body["type"], message=body["message"], param=body["param"])
        code = "rate_limit_exceeded" if isinstance(exc, Overloaded | UpstreamUnavailable) else "server_error"
        self._emit(
            "response.failed", response=self.response("failed", {"code": code, "message": body["message"]})
        )
        return b"".join(self._frames)

    # --- items ----------------------------------------------------------------------------------------

    @property
    def _id(self) -> str:
        assert self._item is not None
        return str(self._item["id"])

    @property
    def _index(self) -> int:
        return len(self.output)

    def _open(self, kind: str) -> None:
        if self._item is not None and self._item["type"] == kind:
            return
        self._close()
        if kind == "message":
            item = {"id": mint_id("msg", "_"), "type": "message", "role": "assistant",
                    "status": "in_progress", "content": []}  # fmt: skip
            part: dict[str, Any] = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        else:
            item = {"id": mint_id("rs", "_"), "type": "reasoning", "summary": [], "content": [],
                    "status": "in_progress"}  # fmt: skip
            part = {"type": "reasoning_text", "text": ""}
        self._item = item
        self._emit("response.output_item.added", output_index=self._index, item=item)
        self._emit("response.content_part.added", item_id=item["id"], output_index=self._index,
                   content_index=0, part=part)  # fmt: skip

    def _close(self) -> None:
        item = self._item
        if item is None:
            return
        text = "".join(self._parts)
        where = {"item_id": item["id"], "output_index": self._index, "content_index": 0}
        if item["type"] == "message":
            part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": [],
                                    "logprobs": self._logprobs}  # fmt: skip
            self._emit("response.output_text.done", **where, text=text, logprobs=self._logprobs)
            status = "incomplete" if self.reason == "length" else "completed"
        else:
            part = {"type": "reasoning_text", "text": text}
            self._emit("response.reasoning_text.done", **where, text=text)
            status = "completed"
        self._emit("response.content_part.done", **where, part=part)
        done = {**item, "status": status, "content": [part]}
        if item["type"] == "reasoning" and self.plan.encrypted_reasoning:
            done["encrypted_content"] = text  # the plain trace, as Ollama returns it
        self._emit("response.output_item.done", output_index=self._index, item=done)
        self.output.append(done)
        self._item, self._parts, self._logprobs = None, [], []

    def _call(self, call: g.ToolCall) -> None:
        if self.plan.one_call and self._calls:
            return
        self._close()
        self._calls += 1
        item = {"id": mint_id("fc", "_"), "type": "function_call", "call_id": call.id or mint_call_id(),
                "name": call.name, "arguments": "", "status": "in_progress"}  # fmt: skip
        index = self._index
        self._emit("response.output_item.added", output_index=index, item=item)
        self._emit("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                   delta=call.arguments)  # fmt: skip
        self._emit("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                   name=call.name, arguments=call.arguments)  # fmt: skip
        done = {**item, "arguments": call.arguments, "status": "completed"}
        self._emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)


async def response_object(events: Any, model: str, plan: Plan) -> tuple[dict[str, Any], g.Usage]:
    """The whole ``response`` object from the events, and the usage (for the metrics)."""
    writer = ResponseWriter(model, plan, stream=False)
    try:
        async for ev in events:
            writer(ev)
    finally:
        await close(events)
    usage = writer.usage or g.Usage()
    return writer.response(writer.final_status()), usage
